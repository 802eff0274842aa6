/**
 * JavaScript values a host function might hand back (or throw): every type, the edges of
 * each ABI type, sizes around the output buffer, and hostile objects whose getters,
 * conversions or proxy traps throw. Each is made fresh from its name (a revoked proxy,
 * a detached buffer), so an input prints and reproduces as a name and a number.
 */
import { Prng } from "./prng.js";

export interface ValueSpec {
  readonly name: string;
  /** A size or count the maker uses (string and byte lengths). */
  readonly n: number;
}

const thrower = (what: string) => (): never => {
  throw new Error(`${what} throws`);
};

/** An object whose every proxy trap throws. */
function trapEverything(): object {
  const trap = thrower("proxy trap");
  return new Proxy({}, { get: trap, has: trap, ownKeys: trap, getPrototypeOf: trap, getOwnPropertyDescriptor: trap, apply: trap });
}

function revoked(): object {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}

function detachedBytes(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  structuredClone(bytes.buffer, { transfer: [bytes.buffer] });
  return bytes;
}

const MAKERS: Record<string, (n: number) => unknown> = {
  undefined: () => undefined,
  null: () => null,
  true: () => true,
  false: () => false,
  int: (n) => n,
  negative: (n) => -n,
  "2^31": () => 2 ** 31,
  "-2^31-1": () => -(2 ** 31) - 1,
  "2^32": () => 2 ** 32,
  "2^53+2": () => 2 ** 53 + 2,
  "-0": () => -0,
  half: (n) => n + 0.5,
  NaN: () => NaN,
  Infinity: () => Infinity,
  "-Infinity": () => -Infinity,
  MAX_VALUE: () => Number.MAX_VALUE,
  MIN_VALUE: () => Number.MIN_VALUE,
  bigint: (n) => BigInt(n),
  "2^63": () => 2n ** 63n,
  "-2^63-1": () => -(2n ** 63n) - 1n,
  "2^64": () => 2n ** 64n,
  "2^64-1": () => 2n ** 64n - 1n,
  "-1n": () => -1n,
  "2^200": () => 2n ** 200n,
  ascii: (n) => "a".repeat(n),
  twoByte: (n) => "é".repeat(n),
  threeByte: (n) => "✓".repeat(n),
  astral: (n) => "😀".repeat(n),
  loneSurrogates: (n) => "\ud800x\udc00".repeat(n),
  withNul: (n) => `${"b".repeat(n)}\0tail`,
  controlChars: () => "\u001b]0;title\u0007\r\u0000",
  bytes: (n) => new Uint8Array(n).fill(0xab),
  buffer: (n) => Buffer.alloc(n, 1),
  bytesAtOffset: (n) => new Uint8Array(n + 16).subarray(16),
  sharedBytes: (n) => new Uint8Array(new SharedArrayBuffer(n)),
  detachedBytes,
  clamped: (n) => new Uint8ClampedArray(n),
  int8: (n) => new Int8Array(n),
  uint16: (n) => new Uint16Array(n),
  float64Array: (n) => new Float64Array(n),
  dataView: (n) => new DataView(new ArrayBuffer(n)),
  arrayBuffer: (n) => new ArrayBuffer(n),
  throwingLength: (n) => new (class extends Uint8Array { override get length(): number { throw new Error("length throws"); } })(n),
  lyingLength: (n) => new (class extends Uint8Array { override get length(): number { return 0x7fffffff; } })(n),
  array: (n) => Array.from({ length: Math.min(n, 1 << 16) }, (_, i) => i),
  object: () => ({ a: 1 }),
  nullPrototype: () => Object.create(null),
  throwingToString: () => ({ toString: thrower("toString"), valueOf: thrower("valueOf") }),
  throwingToPrimitive: () => ({ [Symbol.toPrimitive]: thrower("Symbol.toPrimitive") }),
  numberObject: (n) => new Number(n),
  stringObject: (n) => new String("s".repeat(n)),
  symbol: () => Symbol("fuzz"),
  function: () => () => 1,
  date: () => new Date(0),
  proxyTraps: trapEverything,
  revokedProxy: revoked,
  errorThrowingMessage: () => Object.defineProperty(new Error("x"), "message", { get: thrower("message getter") }),
  errorNullPrototypeMessage: () => Object.assign(new Error("x"), { message: Object.create(null) }),
  errorHugeMessage: (n) => new Error("m".repeat(Math.min(n, 1 << 20))),
  errorWithNul: () => new Error("before\0after"),
  thenGetterThrows: () => Object.defineProperty({}, "then", { get: thrower("then getter") }),
  thenThrows: () => ({ then: thrower("then") }),
  thenNeverSettles: () => ({ then: () => undefined }),
  thenSettlesTwice: (n) => ({ then: (ok: (v: unknown) => void, fail: (e: unknown) => void) => (ok(n), fail(n), ok(n)) }),
};

export const VALUE_NAMES = Object.keys(MAKERS);

/** Lengths around what fits the output buffer of `outputSize` bytes (header 24, value header 8, NUL 1). */
export function pickSpec(rng: Prng, outputSize: number): ValueSpec {
  const room = outputSize - 24 - 8;
  const n = rng.pick([0, 1, 2, 7, 8, 255, room - 1, room, room + 1, Math.floor(room / 2), Math.floor(room / 3), Math.floor(room / 4), rng.below(room * 2), rng.chance(0.05) ? 2 ** 31 - 1 : 2 ** 16]);
  return { name: rng.pick(VALUE_NAMES), n };
}

/** Makes the value; lengths past 4 MiB are cut there (a 2^31 string is not a useful input, only a slow one). */
export function makeValue(spec: ValueSpec): unknown {
  const maker = MAKERS[spec.name];
  if (!maker) throw new Error(`no value named ${spec.name}`);
  const n = spec.n > 4 << 20 && !["int", "negative", "half", "bigint", "numberObject"].includes(spec.name) ? 4 << 20 : spec.n;
  return maker(n);
}

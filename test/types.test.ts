/**
 * Every ABI type crosses the boundary and comes back unchanged (guests/types.c),
 * through both callSync() and call(): edge values, 16 mixed parameters, and the
 * caller's mistakes (wrong types or counts, unknown names, NUL in strings,
 * oversized arguments and results), which are rejected without poisoning.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  ArgumentMismatchError, BufferTooSmallError, SandboxBuilder, UnknownFunctionError,
  type CallOptions, type GuestValue, type Sandbox,
} from "../src/index.js";
import { guestPath } from "./helpers.js";

type Invoke = (sb: Sandbox, name: string, ...args: Array<GuestValue | CallOptions>) => Promise<GuestValue | undefined>;

/** Both ways of calling; the sync one is wrapped so tests can await either. */
const MODES: ReadonlyArray<readonly [string, Invoke]> = [
  ["callSync", async (sb, name, ...args) => sb.callSync(name, ...args)],
  ["call", (sb, name, ...args) => sb.call(name, ...args)],
];

const I32_MIN = -0x80000000;
const I32_MAX = 0x7fffffff;
const U32_MAX = 0xffffffff;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;
/** Default output buffer (64 KiB) minus the message header (24) and value header (8). */
const OUTPUT_PAYLOAD = (64 << 10) - 24 - 8;

function buildTypes(): Promise<Sandbox> {
  return new SandboxBuilder().guest(guestPath("types")).timeoutMs(10_000).build();
}

function f32Hex(x: number): string {
  const v = new DataView(new ArrayBuffer(4));
  v.setFloat32(0, x, true);
  return v.getUint32(0, true).toString(16).padStart(8, "0");
}

function f64Hex(x: number): string {
  const v = new DataView(new ArrayBuffer(8));
  v.setFloat64(0, x, true);
  return v.getBigUint64(0, true).toString(16).padStart(16, "0");
}

/** Deterministic pseudo-random bytes. */
function pattern(length: number, seed = 7): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

for (const [mode, invoke] of MODES) {
  describe(`${mode}: values round-trip unchanged`, () => {
    let sb: Sandbox;
    before(async () => {
      sb = await buildTypes();
    });
    after(() => sb.close());

    const echo = (type: string, value: GuestValue): Promise<GuestValue | undefined> => invoke(sb, `echo_${type}`, value);

    test("i32 keeps min, max, zero and negatives", async () => {
      for (const v of [I32_MIN, I32_MAX, 0, -1, 1, 123456789]) assert.equal(await echo("i32", v), v);
    });

    test("u32 keeps zero and max", async () => {
      for (const v of [0, 1, 0x80000000, U32_MAX]) assert.equal(await echo("u32", v), v);
    });

    test("i64 keeps its extremes as bigints and accepts safe-integer numbers", async () => {
      for (const v of [I64_MIN, I64_MAX, 0n, -1n, 2n ** 53n + 1n]) assert.equal(await echo("i64", v), v);
      assert.equal(await echo("i64", -5), -5n);
      assert.equal(await echo("i64", Number.MAX_SAFE_INTEGER), BigInt(Number.MAX_SAFE_INTEGER));
    });

    test("u64 keeps zero and max as bigints and accepts safe-integer numbers", async () => {
      for (const v of [0n, 1n, 2n ** 63n, U64_MAX]) assert.equal(await echo("u64", v), v);
      assert.equal(await echo("u64", 42), 42n);
    });

    test("f32 rounds like Math.fround and keeps NaN, infinities and -0", async () => {
      for (const v of [0.1, 1 / 3, 3.4028234663852886e38, 1.401298464324817e-45, -2.5]) {
        assert.equal(await echo("f32", v), Math.fround(v), `f32 ${v}`);
      }
      assert.ok(Number.isNaN(await echo("f32", NaN)));
      assert.equal(await echo("f32", Infinity), Infinity);
      assert.equal(await echo("f32", -Infinity), -Infinity);
      assert.equal(await echo("f32", 1e39), Infinity, "out of f32 range becomes Infinity");
      assert.ok(Object.is(await echo("f32", -0), -0), "-0 keeps its sign");
    });

    test("f64 keeps NaN, infinities, -0 and the extremes exactly", async () => {
      for (const v of [Math.PI, 0.1, Number.MAX_VALUE, Number.MIN_VALUE, -Number.EPSILON, Infinity, -Infinity]) {
        assert.equal(await echo("f64", v), v);
      }
      assert.ok(Number.isNaN(await echo("f64", NaN)));
      assert.ok(Object.is(await echo("f64", -0), -0), "-0 keeps its sign");
      assert.ok(Object.is(await echo("f64", 0), 0));
    });

    test("bool keeps true and false", async () => {
      assert.equal(await echo("bool", true), true);
      assert.equal(await echo("bool", false), false);
    });

    test("strings: empty, ASCII and multi-byte unicode come back equal", async () => {
      for (const s of ["", "hello", "héllo wörld", "日本語テキスト", "emoji 🌍🚀 and combining e\u0301", "\u{10FFFF}"]) {
        assert.equal(await echo("string", s), s);
      }
    });

    test("strings arrive in the guest as UTF-8 without their NUL", async () => {
      assert.equal(await invoke(sb, "string_length", ""), 0);
      assert.equal(await invoke(sb, "string_length", "abc"), 3);
      assert.equal(await invoke(sb, "string_length", "é🌍"), 2 + 4);
    });

    test("bytes: empty, small and ~64 KiB come back equal", async () => {
      const empty = await echo("bytes", new Uint8Array(0));
      assert.ok(empty instanceof Uint8Array);
      assert.equal(empty.length, 0);
      assert.deepEqual(await echo("bytes", Uint8Array.of(0, 1, 254, 255)), Uint8Array.of(0, 1, 254, 255));
      const big = pattern(60_000);
      assert.deepEqual(await echo("bytes", big), big);
    });

    test("bytes exactly filling both buffers come back; the result is a copy", async () => {
      const exact = pattern(OUTPUT_PAYLOAD, 3);
      const back = await echo("bytes", exact);
      assert.deepEqual(back, exact);
      assert.ok(back instanceof Uint8Array && back.buffer !== exact.buffer);
    });

    test("void function returns undefined and its effect persists to the next call", async () => {
      assert.equal(await invoke(sb, "set_value", -77), undefined);
      assert.equal(await invoke(sb, "get_value"), -77);
      await invoke(sb, "set_value", 5);
      assert.equal(await invoke(sb, "get_value"), 5);
    });

    test("16 parameters of mixed types arrive in order and intact", async () => {
      const args = [
        -123456, 4000000000, -(2n ** 62n) - 5n, U64_MAX, 1.5, Math.PI, true, "héllo", Uint8Array.of(1, 2, 3, 250),
        I32_MAX, 7, 9007199254740993n, 0n, -0.25, -1e300, false,
      ] as const;
      const expected = [
        "-123456", "4000000000", String(-(2n ** 62n) - 5n), String(U64_MAX), f32Hex(1.5), f64Hex(Math.PI), "1", "héllo", "4:256",
        String(I32_MAX), "7", "9007199254740993", "0", f32Hex(-0.25), f64Hex(-1e300), "0",
      ].join("|");
      assert.equal(await invoke(sb, "sixteen", ...args), expected);
    });

    test("a large result that exactly fills the output buffer comes back", async () => {
      const s = await invoke(sb, "big_string", OUTPUT_PAYLOAD - 1); // + NUL = the whole payload
      assert.equal(typeof s, "string");
      assert.equal((s as string).length, OUTPUT_PAYLOAD - 1);
      assert.ok((s as string).split("").every((c) => c === "x"));
    });

    test("random_u64 gives different bigints on each call", async () => {
      const values = new Set<GuestValue | undefined>();
      for (let i = 0; i < 8; i++) {
        const v = await invoke(sb, "random_u64");
        assert.equal(typeof v, "bigint");
        values.add(v);
      }
      assert.equal(values.size, 8);
    });
  });

  describe(`${mode}: the caller's mistakes are rejected without poisoning`, () => {
    let sb: Sandbox;
    before(async () => {
      sb = await buildTypes();
    });
    after(() => sb.close());

    /** Asserts the error, that the sandbox is not poisoned and still answers. */
    async function rejectedCleanly(promise: Promise<unknown>, errorClass: new (...a: never[]) => Error, code: string, message?: RegExp): Promise<void> {
      await assert.rejects(promise, (err: unknown) => {
        assert.ok(err instanceof errorClass, `expected ${errorClass.name}, got ${String(err)}`);
        assert.equal((err as { code?: string }).code, code);
        if (message) assert.match((err as Error).message, message);
        return true;
      });
      assert.equal(sb.poisoned, undefined, "the sandbox is not poisoned");
      assert.equal(await invoke(sb, "echo_i32", 9), 9, "the sandbox still works");
    }

    const bad = (v: unknown): GuestValue => v as GuestValue;

    test("wrong argument types are ArgumentMismatchError", async () => {
      const cases: Array<[string, unknown, RegExp]> = [
        ["echo_i32", "1", /argument 1 of echo_i32\(i32\) -> i32 must be an integer in the i32 range, got string/],
        ["echo_i32", 1.5, /i32 range/],
        ["echo_u32", 1n, /u32 range/],
        ["echo_i64", 1.5, /i64 range/],
        ["echo_f64", 1n, /must be a number/],
        ["echo_bool", 1, /must be a boolean/],
        ["echo_string", 5, /must be a string/],
        ["echo_bytes", [1, 2], /must be a Uint8Array/],
        ["echo_bytes", "bytes", /must be a Uint8Array/],
      ];
      for (const [fn, value, message] of cases) await rejectedCleanly(invoke(sb, fn, bad(value)), ArgumentMismatchError, "ARGUMENT_MISMATCH", message);
    });

    test("integers out of range are ArgumentMismatchError", async () => {
      const cases: Array<[string, unknown]> = [
        ["echo_i32", I32_MAX + 1], ["echo_i32", I32_MIN - 1], ["echo_u32", -1], ["echo_u32", U32_MAX + 1],
        ["echo_i64", I64_MAX + 1n], ["echo_i64", I64_MIN - 1n], ["echo_i64", 2 ** 53],
        ["echo_u64", -1n], ["echo_u64", U64_MAX + 1n], ["echo_u64", -1],
      ];
      for (const [fn, value] of cases) await rejectedCleanly(invoke(sb, fn, bad(value)), ArgumentMismatchError, "ARGUMENT_MISMATCH", /range/);
    });

    test("the wrong number of arguments is ArgumentMismatchError", async () => {
      await rejectedCleanly(invoke(sb, "echo_i32"), ArgumentMismatchError, "ARGUMENT_MISMATCH", /takes 1 arguments, got 0/);
      await rejectedCleanly(invoke(sb, "echo_i32", 1, 2), ArgumentMismatchError, "ARGUMENT_MISMATCH", /takes 1 arguments, got 2/);
      await rejectedCleanly(invoke(sb, "get_value", 1), ArgumentMismatchError, "ARGUMENT_MISMATCH", /takes 0 arguments, got 1/);
    });

    test("an unknown function is UnknownFunctionError naming it and the exports", async () => {
      await assert.rejects(invoke(sb, "no_such_function", 1), (err: unknown) => {
        assert.ok(err instanceof UnknownFunctionError);
        assert.equal(err.code, "UNKNOWN_FUNCTION");
        assert.equal(err.functionName, "no_such_function");
        assert.match(err.message, /echo_i32/);
        return true;
      });
      assert.equal(sb.poisoned, undefined);
    });

    test("a NUL inside a string argument is ArgumentMismatchError", async () => {
      await rejectedCleanly(invoke(sb, "echo_string", "a\0b"), ArgumentMismatchError, "ARGUMENT_MISMATCH", /NUL/);
    });

    test("arguments larger than the input buffer are BufferTooSmallError", async () => {
      await rejectedCleanly(invoke(sb, "echo_bytes", new Uint8Array(100_000)), BufferTooSmallError, "BUFFER_TOO_SMALL");
      await rejectedCleanly(invoke(sb, "echo_bytes", new Uint8Array(OUTPUT_PAYLOAD + 1)), BufferTooSmallError, "BUFFER_TOO_SMALL");
      await rejectedCleanly(invoke(sb, "echo_string", "x".repeat(100_000)), BufferTooSmallError, "BUFFER_TOO_SMALL");
      await rejectedCleanly(invoke(sb, "echo_string", "é".repeat(40_000)), BufferTooSmallError, "BUFFER_TOO_SMALL");
    });

    test("a result larger than the output buffer is BufferTooSmallError", async () => {
      await rejectedCleanly(invoke(sb, "big_string", 100_000), BufferTooSmallError, "BUFFER_TOO_SMALL", /outputSize/);
      await rejectedCleanly(invoke(sb, "big_string", OUTPUT_PAYLOAD), BufferTooSmallError, "BUFFER_TOO_SMALL", /outputSize/);
      assert.equal(await invoke(sb, "big_string", 3), "xxx");
    });

    test("a larger outputSize lets the same result through", async () => {
      const roomy = await new SandboxBuilder().guest(guestPath("types")).outputSize(256 << 10).build();
      try {
        const s = await invoke(roomy, "big_string", 100_000);
        assert.equal((s as string).length, 100_000);
      } finally {
        roomy.close();
      }
    });
  });
}

describe("sandboxes of the types guest", () => {
  test("functions lists every export with its signature", async () => {
    const sb = await buildTypes();
    try {
      const fns = sb.functions;
      for (const sig of [
        "echo_i32(i32) -> i32", "echo_u64(u64) -> u64", "echo_bytes(bytes) -> bytes", "set_value(i32) -> void",
        "sixteen(i32, u32, i64, u64, f32, f64, bool, string, bytes, i32, u32, i64, u64, f32, f64, bool) -> string",
        "random_u64() -> u64",
      ]) {
        assert.ok(fns.includes(sig), `missing ${sig} in ${fns.join("; ")}`);
      }
    } finally {
      sb.close();
    }
  });

  test("two sandboxes get different random seeds", async () => {
    const a = await buildTypes();
    const b = await buildTypes();
    try {
      assert.notEqual(a.callSync("random_u64"), b.callSync("random_u64"));
    } finally {
      a.close();
      b.close();
    }
  });

  test("static state is per sandbox", async () => {
    const a = await buildTypes();
    const b = await buildTypes();
    try {
      a.callSync("set_value", 1);
      b.callSync("set_value", 2);
      assert.equal(a.callSync("get_value"), 1);
      assert.equal(b.callSync("get_value"), 2);
    } finally {
      a.close();
      b.close();
    }
  });
});

/**
 * Fuzzer (a): guest→host exit records and the call ABI. The fuzz guest (guests/fuzz.c)
 * copies what each input says into the output buffer, where the host reads RETURN,
 * HOST_CALL, LOG and ABORT messages, and leaves through a port (any port, any I/O
 * instruction width, `in` as well as `out`). Inputs are valid messages broken field by
 * field (lengths near 2^31 and 2^32 and the buffer's end, counts, kinds, tags) or random
 * bytes the guest draws from a seed. Every call must end in a result or a VmletError; a
 * TIMEOUT is a hang (the guest never spins). Between inputs the sandbox is restored.
 */
import { LOG_LEVELS, MessageKind, PORT_ABORT, PORT_FAULT_BASE, PORT_HOST_CALL, PORT_LOG, PORT_READY, TAG } from "../src/abi/constants.js";
import type { GuestValue, ReturnType, ValueType } from "../src/abi/types.js";
import { SandboxBuilder } from "../src/sandbox/builder.js";
import type { Sandbox } from "../src/sandbox/sandbox.js";
import type { FuzzTarget } from "./harness.js";
import { edgeNumbers, Prng } from "./prng.js";
import { fuzzGuestPath, outcomeOf, Rig } from "./sandboxes.js";
import { bytesValue, encode, message, scalarValue, stringValue, type WireMessage, type WireValue } from "./wire.js";

const OUTPUT_SIZE = 4096;
const TIMEOUT_MS = 5000;
/** The guest's ways out (guests/fuzz.c): outb, outw, outl, inb, inl through DX. */
const FORMS = ["outb", "outw", "outl", "inb", "inl"] as const;
const RETURN_TYPES: readonly ReturnType[] = ["void", "i32", "u32", "i64", "u64", "f32", "f64", "bool", "string", "bytes"];
const PROTOCOL_PORTS = [PORT_READY, PORT_HOST_CALL, PORT_LOG, PORT_ABORT];

/** Host functions the guest's HOST_CALL records may name, each echoing something back. */
const HOST_FUNCTIONS: ReadonlyArray<{ name: string; params: ValueType[]; returns: ReturnType; impl: (...a: GuestValue[]) => unknown }> = [
  { name: "h_void", params: [], returns: "void", impl: () => undefined },
  { name: "h_i32", params: ["i32"], returns: "i32", impl: (x) => x },
  { name: "h_echo", params: ["string", "bytes"], returns: "string", impl: (s) => s },
  { name: "h_bytes", params: ["bytes"], returns: "bytes", impl: (b) => b },
  { name: "h_mix", params: ["u64", "f64", "bool", "f32", "i64", "u32"], returns: "u64", impl: (x) => x },
];

interface Step {
  port: number;
  form: number;
  offset: number;
  bytes: Uint8Array;
}

export type ExitInput =
  | { readonly kind: "random"; readonly seed: bigint; readonly length: number; readonly port: number; readonly async: boolean }
  | { readonly kind: "script"; readonly returns: ReturnType; readonly steps: readonly Step[]; readonly async: boolean };

export async function exitRecordsTarget(): Promise<FuzzTarget<ExitInput>> {
  let loggerBroke: string | undefined;
  let builder = new SandboxBuilder()
    .guest(fuzzGuestPath())
    .outputSize(OUTPUT_SIZE)
    .inputSize(32 << 10)
    .heapSize(256 << 10)
    .stackSize(64 << 10)
    .maxGuestLogLevel("trace")
    .guestLogger((r) => {
      const ok = LOG_LEVELS.includes(r.level) && typeof r.message === "string" && typeof r.file === "string" && Number.isInteger(r.line);
      if (!ok) loggerBroke ??= `the logger got a malformed record: ${JSON.stringify(r)}`;
    });
  for (const f of HOST_FUNCTIONS) builder = builder.hostFunction(f.name, f.params, f.returns, f.impl as never);
  const rig = await Rig.build(builder);
  return {
    name: "exit-records",
    generate,
    async run(input) {
      loggerBroke = undefined;
      const outcome = await runOne(rig, input);
      if (loggerBroke) throw new Error(loggerBroke);
      return outcome;
    },
    shrink,
    describe,
    recover: () => rig.replace(),
    close: () => rig.close(),
  };
}

async function runOne(rig: Rig, input: ExitInput): Promise<string> {
  const options = { timeoutMs: TIMEOUT_MS };
  const { sandbox } = rig;
  try {
    const result =
      input.kind === "random"
        ? await invoke(sandbox, input.async, "random_exit", [input.seed, input.length, input.port, options])
        : await invoke(sandbox, input.async, `script_${input.returns}`, [script(input.steps), options]);
    if (input.kind === "script") checkResultType(input.returns, result);
    return "ok";
  } catch (error) {
    return outcomeOf(error);
  } finally {
    rig.restore();
  }
}

function invoke(sandbox: Sandbox, async: boolean, name: string, args: Parameters<Sandbox["call"]>[1][]): Promise<GuestValue | undefined> {
  return async ? sandbox.call(name, ...args) : Promise.resolve().then(() => sandbox.callSync(name, ...args));
}

/** A result the host accepted must have the JavaScript type of the declared return type. */
function checkResultType(returns: ReturnType, result: unknown): void {
  const want: Record<ReturnType, string> = { void: "undefined", i32: "number", u32: "number", i64: "bigint", u64: "bigint", f32: "number", f64: "number", bool: "boolean", string: "string", bytes: "object" };
  if (typeof result !== want[returns] || (returns === "bytes" && !(result instanceof Uint8Array))) {
    throw new Error(`"${returns}" call returned ${typeof result}`);
  }
}

/** The guest's script: per step [u32 port][u32 form][u32 offset][u32 length][bytes]. */
function script(steps: readonly Step[]): Uint8Array {
  const out = new Uint8Array(steps.reduce((n, s) => n + 16 + s.bytes.length, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const s of steps) {
    view.setUint32(at, s.port >>> 0, true);
    view.setUint32(at + 4, s.form, true);
    view.setUint32(at + 8, s.offset >>> 0, true);
    view.setUint32(at + 12, s.bytes.length, true);
    out.set(s.bytes, at + 16);
    at += 16 + s.bytes.length;
  }
  return out;
}

// ---- generation ----

function generate(rng: Prng): ExitInput {
  const async = rng.chance(0.15);
  if (rng.chance(0.15)) {
    return { kind: "random", seed: rng.u64(), length: rng.chance(0.5) ? rng.below(OUTPUT_SIZE + 1) : rng.below(64), port: pickPort(rng), async };
  }
  const returns = rng.pick(RETURN_TYPES);
  const steps: Step[] = [];
  const n = rng.chance(0.6) ? 1 : rng.range(2, 4);
  for (let i = 0; i < n; i++) steps.push(step(rng, returns));
  return { kind: "script", returns, steps, async };
}

function pickPort(rng: Prng): number {
  if (rng.chance(0.85)) return rng.pick(PROTOCOL_PORTS);
  return rng.pick([PORT_FAULT_BASE + rng.below(32), 0x14, 0x0f, 0x80, rng.below(0x10000)]);
}

function step(rng: Prng, returns: ReturnType): Step {
  const port = pickPort(rng);
  const form = rng.chance(0.75) ? 0 : rng.below(FORMS.length);
  const msg = validMessage(rng, rng.chance(0.9) ? port : rng.pick(PROTOCOL_PORTS), returns);
  for (let k = rng.chance(0.3) ? 0 : rng.range(1, 4); k > 0; k--) mutateMessage(rng, msg);
  let bytes = encode(msg);
  if (rng.chance(0.2)) bytes = mutateBytes(rng, bytes);
  const offset = rng.chance(0.9) ? 0 : rng.pick([rng.below(OUTPUT_SIZE), OUTPUT_SIZE - 8, OUTPUT_SIZE - 1, OUTPUT_SIZE - 24]);
  return { port, form, offset, bytes };
}

/** A message the host should accept for an exit through `port`. */
function validMessage(rng: Prng, port: number, returns: ReturnType): WireMessage {
  switch (port) {
    case PORT_HOST_CALL: {
      const f = rng.chance(0.85) ? rng.pick(HOST_FUNCTIONS) : { name: rng.pick(["nope", "", "h_void\u00e9"]), params: [] as ValueType[], returns: "void" as ReturnType };
      const args = f.params.map((t) => valueOf(rng, t));
      return message(MessageKind.HostCall, 0, TAG[f.returns], [stringValue(f.name), ...args]);
    }
    case PORT_LOG:
    case PORT_ABORT: {
      const kind = port === PORT_LOG ? MessageKind.Log : MessageKind.Abort;
      const b = port === PORT_LOG ? rng.range(0, 6) : rng.range(0, 3);
      return message(kind, 0, b, [stringValue(text(rng)), stringValue(text(rng)), valueOf(rng, "u32")]);
    }
    default: {
      if (rng.chance(0.85)) return message(MessageKind.Return, 0, 0, returns === "void" ? [] : [valueOf(rng, returns)]);
      return message(MessageKind.Return, rng.range(1, 5), 0, rng.chance(0.7) ? [stringValue(text(rng))] : []);
    }
  }
}

function valueOf(rng: Prng, type: ValueType): WireValue {
  if (type === "string") return stringValue(rng.chance(0.8) ? text(rng) : rng.bytes(rng.below(40)));
  if (type === "bytes") return bytesValue(rng.bytes(rng.chance(0.9) ? rng.below(64) : rng.below(OUTPUT_SIZE)));
  return scalarValue(type, rng.bytes(8));
}

function text(rng: Prng): string {
  return rng.pick(["", "x", "hello", "ünïcødé ✓", "\u001b[2Jclear", "a".repeat(rng.below(300))]);
}

/** One structural edit: a header field, a value's tag or length, a value dropped or added, a string or buffer edge. */
function mutateMessage(rng: Prng, m: WireMessage): void {
  const real = encode(m).length;
  const edges = [...edgeNumbers(OUTPUT_SIZE), ...edgeNumbers(real)];
  const v = m.values.length ? rng.pick(m.values) : undefined;
  switch (rng.below(10)) {
    case 0: return void (m.length = rng.pick(edges));
    case 1: return void (m.count = rng.pick([0, 1, 2, 3, 63, 64, 65, 0x7fffffff, 0xffffffff, m.values.length + 1]));
    case 2: return void (m.kind = rng.pick([0, 1, 2, 3, 4, 5, 6, 7, 0xffff]));
    case 3: return void (rng.chance(0.5) ? (m.a = rng.pick(edges)) : (m.b = rng.pick([...edges, 10, 11])));
    case 4: return void (rng.chance(0.5) ? (m.magic = rng.u32()) : (m.version = rng.pick([0, 2, 0xffff])));
    case 5: if (v) v.tag = rng.pick([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x80000000, 0xffffffff]); return;
    case 6: if (v) v.length = rng.pick([...edgeNumbers(v.payload.length), ...edgeNumbers(OUTPUT_SIZE - real)]); return;
    case 7: return void (rng.chance(0.5) ? m.values.pop() : m.values.push(valueOf(rng, rng.pick(["i32", "string", "bytes", "u32"]))));
    case 8: if (v && v.payload.length > 0) v.payload[v.payload.length - 1] = rng.chance(0.5) ? 0x78 : 0xff; return; // NUL gone, or bad UTF-8
    default: return void fillToEnd(rng, m, real);
  }
}

/** Appends a bytes value so the message ends exactly at the buffer's end, or just past it. */
function fillToEnd(rng: Prng, m: WireMessage, real: number): void {
  const room = OUTPUT_SIZE - real - 8;
  if (room < 0) return;
  m.values.push(bytesValue(new Uint8Array(Math.max(0, room + rng.pick([0, 0, 1, 8, -1])))));
}

function mutateBytes(rng: Prng, bytes: Uint8Array): Uint8Array {
  switch (rng.below(3)) {
    case 0: {
      const out = bytes.slice();
      for (let k = rng.range(1, 8); k > 0; k--) out[rng.below(out.length)] = rng.u32() & 0xff;
      return out;
    }
    case 1: return bytes.slice(0, rng.below(bytes.length + 1));
    default: {
      const out = new Uint8Array(bytes.length + rng.range(1, 64));
      out.set(bytes);
      out.set(rng.bytes(out.length - bytes.length), bytes.length);
      return out;
    }
  }
}

// ---- shrinking and printing ----

function* shrink(input: ExitInput): Iterable<ExitInput> {
  if (input.async) yield { ...input, async: false };
  if (input.kind === "random") {
    if (input.length > 0) yield { ...input, length: input.length >> 1 };
    return;
  }
  const { steps } = input;
  const withStep = (i: number, s: Partial<Step>): ExitInput => ({ ...input, steps: steps.map((x, j) => (j === i ? { ...x, ...s } : x)) });
  for (let i = 0; i < steps.length && steps.length > 1; i++) yield { ...input, steps: steps.filter((_, j) => j !== i) };
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i]!;
    if (s.form !== 0) yield withStep(i, { form: 0 });
    if (s.offset !== 0) yield withStep(i, { offset: 0 });
    if (s.bytes.length > 24) yield withStep(i, { bytes: s.bytes.slice(0, Math.max(24, s.bytes.length >> 1)) });
    if (s.bytes.length > 24) yield withStep(i, { bytes: s.bytes.slice(0, s.bytes.length - 8) });
    for (let b = 24; b < s.bytes.length && s.bytes.length <= 512; b++) {
      if (s.bytes[b] !== 0) yield withStep(i, { bytes: Uint8Array.from(s.bytes, (x, j) => (j === b ? 0 : x)) });
    }
  }
}

function describe(input: ExitInput): string {
  const mode = input.async ? "call()" : "callSync()";
  if (input.kind === "random") return `${mode} random_exit(seed ${input.seed}n, ${input.length} bytes, port 0x${input.port.toString(16)})`;
  const steps = input.steps.map((s) => `${FORMS[s.form % FORMS.length]} port 0x${s.port.toString(16)}, offset ${s.offset}, bytes ${Buffer.from(s.bytes).toString("hex")}`);
  return `${mode} script_${input.returns}: [${steps.join("; ")}]`;
}

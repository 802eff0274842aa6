/**
 * Fuzzer (b): what registered host functions hand back. The fuzz guest's call_host asks the
 * host for r_<type> (one host function per return type, sometimes expecting another type);
 * the function returns, throws, resolves or rejects with a value from js-values.ts: wrong
 * types, sizes around the output buffer, NaN, out-of-range BigInts, objects whose getters
 * and conversions throw, revoked proxies, thenables that misbehave. Through callSync() and
 * call(); the outcome must be a result or a VmletError, and call() must settle.
 */
import { TAG } from "../src/abi/constants.js";
import type { ReturnType } from "../src/abi/types.js";
import { SandboxBuilder } from "../src/sandbox/builder.js";
import type { FuzzTarget } from "./harness.js";
import { makeValue, pickSpec, type ValueSpec } from "./js-values.js";
import type { Prng } from "./prng.js";
import { fuzzGuestPath, outcomeOf, Rig } from "./sandboxes.js";

const OUTPUT_SIZE = 4096;
/** Short: a thenable that never settles is an input, and must end in TIMEOUT, not a hang. */
const TIMEOUT_MS = 100;
const RETURN_TYPES: readonly ReturnType[] = ["void", "i32", "u32", "i64", "u64", "f32", "f64", "bool", "string", "bytes"];
/** How the host function delivers the value: sync ones only for callSync (a Promise there is itself an input). */
const HOW = ["return", "throw", "resolve", "reject", "resolveLater", "rejectLater"] as const;

export interface HostResultInput {
  readonly registered: ReturnType;
  /** The return type the guest asks for (usually the registered one). */
  readonly asked: ReturnType;
  readonly how: (typeof HOW)[number];
  readonly value: ValueSpec;
  readonly async: boolean;
}

export async function hostResultsTarget(): Promise<FuzzTarget<HostResultInput>> {
  let deliver: () => unknown = () => undefined;
  let builder = new SandboxBuilder().guest(fuzzGuestPath()).outputSize(OUTPUT_SIZE).heapSize(256 << 10).stackSize(64 << 10).timeoutMs(TIMEOUT_MS);
  for (const type of RETURN_TYPES) builder = builder.hostFunction(`r_${type}`, [], type, (() => deliver()) as never);
  const rig = await Rig.build(builder);
  return {
    name: "host-results",
    generate,
    async run(input) {
      deliver = delivery(input);
      try {
        const args = [`r_${input.registered}`, TAG[input.asked]] as const;
        const { sandbox } = rig;
        await (input.async ? sandbox.call("call_host", ...args) : Promise.resolve().then(() => sandbox.callSync("call_host", ...args)));
        return "ok";
      } catch (error) {
        return outcomeOf(error);
      } finally {
        rig.restore();
      }
    },
    recover: () => rig.replace(),
    shrink,
    describe: (i) => `${i.async ? "call()" : "callSync()"} of r_${i.registered} (guest expects ${i.asked}), which does "${i.how}" with ${i.value.name}(${i.value.n})`,
    close: () => rig.close(),
  };
}

/** The host function's body for this input; the value is made when it runs. */
function delivery(input: HostResultInput): () => unknown {
  const value = (): unknown => makeValue(input.value);
  switch (input.how) {
    case "return": return value;
    case "throw": return () => { throw value(); };
    case "resolve": return () => Promise.resolve(value());
    case "reject": return () => Promise.reject(value());
    case "resolveLater": return () => new Promise((resolve) => setImmediate(() => resolve(value())));
    case "rejectLater": return () => new Promise((_, reject) => setImmediate(() => reject(value())));
  }
}

function generate(rng: Prng): HostResultInput {
  const registered = rng.pick(RETURN_TYPES);
  return {
    registered,
    asked: rng.chance(0.9) ? registered : rng.pick(RETURN_TYPES),
    how: rng.chance(0.5) ? "return" : rng.pick(HOW),
    value: pickSpec(rng, OUTPUT_SIZE),
    async: rng.chance(0.4),
  };
}

function* shrink(input: HostResultInput): Iterable<HostResultInput> {
  if (input.async) yield { ...input, async: false };
  if (input.asked !== input.registered) yield { ...input, asked: input.registered };
  if (input.how !== "return" && input.how !== "throw") yield { ...input, how: input.how.startsWith("resolve") ? "return" : "throw" };
  if (input.value.n > 1) yield { ...input, value: { ...input.value, n: 1 } };
}

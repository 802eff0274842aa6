/**
 * The JavaScript peers: isolated-vm (V8 isolates), quickjs-emscripten (QuickJS in
 * WebAssembly) and node:vm (a V8 context in the same isolate: no isolation, reference
 * only). Each evaluates JS_SOURCE and calls add(1, 2) and count_byte(1 MB, 7).
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import vm from "node:vm";
import { batched, EXPECTED_COUNT, JS_SOURCE, megabyte, now, summarize, type PeerRow, type Skipped, type Summary } from "./common.js";

export interface JsPlan {
  rounds: number;
  perRound: number;
  fresh: number;
}

export type PeerOutcome = { rows: PeerRow[]; version: string } | Skipped;

const require = createRequire(import.meta.url);

function check(value: unknown, expected: unknown, what: string): void {
  if (value !== expected) throw new Error(`${what} returned ${String(value)}, expected ${String(expected)}`);
}

/** The installed version of a package, or undefined when it is not installed. */
export function installedVersion(name: string): string | undefined {
  try {
    const pkg = require.resolve(`${name}/package.json`);
    return (JSON.parse(readFileSync(pkg, "utf8")) as { version: string }).version;
  } catch {
    return undefined;
  }
}

/** µs per fresh context from `make` (timed), then `first` (its first call, timed), then `dispose` (not timed). */
function freshLoop<T>(n: number, make: () => T, first: (t: T) => void, dispose: (t: T) => void): { fresh: Summary; firstCall: Summary } {
  const fresh: number[] = [];
  const firstCall: number[] = [];
  for (let i = -3; i < n; i++) {
    const t0 = now();
    const t = make();
    const t1 = now();
    first(t);
    const t2 = now();
    dispose(t);
    if (i >= 0) {
      fresh.push((t1 - t0) * 1000);
      firstCall.push((t2 - t1) * 1000);
    }
  }
  return { fresh: summarize(fresh), firstCall: summarize(firstCall) };
}

export async function measureIsolatedVm(plan: JsPlan): Promise<PeerOutcome> {
  const version = installedVersion("isolated-vm");
  if (!version) return { peer: "isolated-vm", reason: "not installed (npm install --save-dev isolated-vm@5)" };
  let ivm: typeof import("isolated-vm");
  try {
    ivm = (await import("isolated-vm")).default;
  } catch (error) {
    const dir = path.dirname(require.resolve("isolated-vm/package.json"));
    const built = existsSync(path.join(dir, "out/isolated_vm.node"));
    return {
      peer: "isolated-vm",
      reason: built
        ? `installed (${version}) but does not load: ${(error as Error).message}`
        : `installed (${version}) but its native addon is not built (its install script did not run or failed; npm 11 may skip ` +
          `dependency install scripts that package.json "allowScripts" does not approve). Build it once with: ` +
          `(cd node_modules/isolated-vm && npx node-gyp rebuild --release -j max)`,
    };
  }
  type Iso = InstanceType<typeof ivm.Isolate>;
  const data = megabyte();
  const setup = (iso: Iso, script = iso.compileScriptSync(JS_SOURCE)) => {
    const context = iso.createContextSync();
    script.runSync(context);
    const add = context.global.getSync("add", { reference: true }) as InstanceType<typeof ivm.Reference>;
    const count = context.global.getSync("count_byte", { reference: true }) as InstanceType<typeof ivm.Reference>;
    return { iso, context, add, count };
  };
  type Ctx = ReturnType<typeof setup>;
  const callAdd = (c: Ctx): void => check(c.add.applySync(undefined, [1, 2]), 3, "add");
  const callMb = (c: Ctx): void => check(c.count.applySync(undefined, [data, 7], { arguments: { copy: true } }), EXPECTED_COUNT, "count_byte");
  const release = (c: Ctx): void => {
    c.add.release();
    c.count.release();
    c.context.release();
  };
  const newIsolate = (): Ctx => setup(new ivm.Isolate({ memoryLimit: 128 }));

  const cold = freshLoop(plan.fresh, newIsolate, callAdd, (c) => {
    release(c);
    c.iso.dispose();
  });
  const shared = new ivm.Isolate({ memoryLimit: 512 });
  const script = shared.compileScriptSync(JS_SOURCE);
  const reused = freshLoop(plan.fresh, () => setup(shared, script), callAdd, release);

  const warm = setup(shared, script);
  const call = batched(() => callAdd(warm), plan.rounds, plan.perRound);
  const mb = batched(() => callMb(warm), 15, 10, 2);
  release(warm);

  shared.dispose();

  return {
    version,
    rows: [
      {
        peer: "isolated-vm",
        variant: "new isolate + context + compile",
        isolation: "V8 isolate (same process)",
        fresh: cold.fresh,
        firstCall: cold.firstCall,
        call,
        mb,
        memory: undefined,
        memoryKey: "isolated-vm-isolate",
        notes: ["1 MB: the Uint8Array is copied into the isolate ({ arguments: { copy: true } })"],
      },
      {
        peer: "isolated-vm",
        variant: "reused isolate, fresh context",
        isolation: "V8 context (shares the isolate's heap)",
        fresh: reused.fresh,
        firstCall: reused.firstCall,
        call,
        mb,
        memory: undefined,
        memoryKey: "isolated-vm-context",
        notes: ["the script is compiled once per isolate and run in each new context"],
      },
    ],
  };
}

export async function measureQuickJs(plan: JsPlan): Promise<PeerOutcome> {
  const version = installedVersion("quickjs-emscripten");
  if (!version) return { peer: "quickjs-emscripten", reason: "not installed (npm install --save-dev quickjs-emscripten)" };
  let module: Awaited<ReturnType<typeof import("quickjs-emscripten").getQuickJS>>;
  try {
    module = await (await import("quickjs-emscripten")).getQuickJS();
  } catch (error) {
    return { peer: "quickjs-emscripten", reason: `installed (${version}) but does not load: ${(error as Error).message}` };
  }
  type Runtime = ReturnType<typeof module.newRuntime>;
  const data = megabyte();
  const setup = (runtime: Runtime) => {
    const context = runtime.newContext();
    context.unwrapResult(context.evalCode(JS_SOURCE)).dispose();
    const add = context.getProp(context.global, "add");
    const count = context.getProp(context.global, "count_byte");
    return { runtime, context, add, count };
  };
  type Ctx = ReturnType<typeof setup>;
  const callAdd = (c: Ctx): void => {
    const { context } = c;
    const a = context.newNumber(1);
    const b = context.newNumber(2);
    const result = context.unwrapResult(context.callFunction(c.add, context.undefined, a, b));
    check(context.getNumber(result), 3, "add");
    result.dispose();
    a.dispose();
    b.dispose();
  };
  const callMb = (c: Ctx): void => {
    const { context } = c;
    const buffer = context.newArrayBuffer(data.buffer as ArrayBuffer); // copies into the wasm heap
    const seven = context.newNumber(7);
    const result = context.unwrapResult(context.callFunction(c.count, context.undefined, buffer, seven));
    check(context.getNumber(result), EXPECTED_COUNT, "count_byte");
    result.dispose();
    seven.dispose();
    buffer.dispose();
  };
  const release = (c: Ctx): void => {
    c.add.dispose();
    c.count.dispose();
    c.context.dispose();
  };

  const cold = freshLoop(plan.fresh, () => setup(module.newRuntime()), callAdd, (c) => {
    release(c);
    c.runtime.dispose();
  });
  const shared = module.newRuntime();
  const reused = freshLoop(plan.fresh, () => setup(shared), callAdd, release);
  const warm = setup(shared);
  const call = batched(() => callAdd(warm), plan.rounds, plan.perRound);
  const mb = batched(() => callMb(warm), 10, 3, 1);
  release(warm);

  shared.dispose();

  return {
    version,
    rows: [
      {
        peer: "quickjs-emscripten",
        variant: "new runtime + context + eval",
        isolation: "QuickJS in WebAssembly (same process)",
        fresh: cold.fresh,
        firstCall: cold.firstCall,
        call,
        mb,
        memory: undefined,
        memoryKey: "quickjs-runtime",
        notes: ["an interpreter: the 1 MB loop is not JIT-compiled", "1 MB: newArrayBuffer copies into the wasm heap"],
      },
      {
        peer: "quickjs-emscripten",
        variant: "reused runtime, fresh context",
        isolation: "QuickJS context (shares the runtime)",
        fresh: reused.fresh,
        firstCall: reused.firstCall,
        call,
        mb,
        memory: undefined,
        memoryKey: "quickjs-context",
        notes: [],
      },
    ],
  };
}

export async function measureNodeVm(plan: JsPlan): Promise<PeerOutcome> {
  const data = megabyte();
  const script = new vm.Script(JS_SOURCE);
  const setup = () => {
    const context = vm.createContext({});
    script.runInContext(context);
    return context as { add: (a: number, b: number) => number; count_byte: (bytes: Uint8Array, value: number) => number };
  };
  const cold = freshLoop(plan.fresh, setup, (c) => check(c.add(1, 2), 3, "add"), () => undefined);
  const warm = setup();
  const call = batched(() => warm.add(1, 2), plan.rounds, plan.perRound * 20);
  const mb = batched(() => check(warm.count_byte(data, 7), EXPECTED_COUNT, "count_byte"), 15, 10, 2);
  return {
    version: process.versions.node,
    rows: [
      {
        peer: "node:vm",
        variant: "createContext + run script",
        isolation: "none (same isolate; reference only)",
        fresh: cold.fresh,
        firstCall: cold.firstCall,
        call,
        mb,
        memory: undefined,
        memoryKey: "node-vm",
        notes: ["not a security boundary", "1 MB: the host's Uint8Array is read in place (no copy)"],
      },
    ],
  };
}

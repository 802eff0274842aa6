/**
 * Memory per idle context, measured in a fresh child process per approach so that
 * earlier measurements (heaps grown, garbage not yet collected) do not leak into it:
 *
 *   node --expose-gc --no-node-snapshot dist/bench/peers/memory.js APPROACH N   → JSON MemoryPerContext
 *
 * One context is made first and kept (module loading, JIT and one-time setup are not
 * charged), then N more, each after one add(1, 2) call; the growth is divided by N.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import vm from "node:vm";
import { Sandbox, SandboxBuilder } from "../../src/index.js";
import { guestPath } from "../../src/cli/paths.js";
import { JS_SOURCE, memoryPerContext, type MemoryPerContext } from "./common.js";

interface Factory {
  make(): unknown | Promise<unknown>;
  dispose(context: unknown): void;
}

const builder = (): SandboxBuilder => new SandboxBuilder().guest(guestPath("demo")).inputSize(2 << 20).maxGuestLogLevel("warn");

const APPROACHES: Record<string, () => Promise<Factory>> = {
  "vmlet-snapshot": async () => {
    const template = await builder().build();
    template.callSync("noop");
    const snapshot = template.snapshot();
    template.close();
    return {
      make: async () => {
        const sb = await Sandbox.fromSnapshot(snapshot);
        sb.callSync("add", 1, 2);
        return sb;
      },
      dispose: (sb: unknown) => (sb as Sandbox).close(),
    };
  },
  "vmlet-elf": async () => ({
    make: async () => {
      const sb = await builder().build();
      sb.callSync("add", 1, 2);
      return sb;
    },
    dispose: (sb: unknown) => (sb as Sandbox).close(),
  }),
  "isolated-vm-isolate": async () => {
    const ivm = (await import("isolated-vm")).default;
    return {
      make: () => {
        const iso = new ivm.Isolate({ memoryLimit: 128 });
        const context = iso.createContextSync();
        iso.compileScriptSync(JS_SOURCE).runSync(context);
        context.global.getSync("add", { reference: true }).applySync(undefined, [1, 2]);
        return iso;
      },
      dispose: (iso) => (iso as InstanceType<typeof ivm.Isolate>).dispose(),
    };
  },
  "isolated-vm-context": async () => {
    const ivm = (await import("isolated-vm")).default;
    const iso = new ivm.Isolate({ memoryLimit: 1024 });
    const script = iso.compileScriptSync(JS_SOURCE);
    return {
      make: () => {
        const context = iso.createContextSync();
        script.runSync(context);
        context.global.getSync("add", { reference: true }).applySync(undefined, [1, 2]);
        return context;
      },
      dispose: (context) => (context as { release(): void }).release(),
    };
  },
  "quickjs-runtime": async () => quickjs(false),
  "quickjs-context": async () => quickjs(true),
  "node-vm": async () => {
    const script = new vm.Script(JS_SOURCE);
    return {
      make: () => {
        const context = vm.createContext({}) as { add: (a: number, b: number) => number };
        script.runInContext(context);
        context.add(1, 2);
        return context;
      },
      dispose: () => undefined,
    };
  },
};

async function quickjs(shareRuntime: boolean): Promise<Factory> {
  const module = await (await import("quickjs-emscripten")).getQuickJS();
  const shared = shareRuntime ? module.newRuntime() : undefined;
  type Made = { runtime: ReturnType<typeof module.newRuntime>; context: ReturnType<typeof module.newContext> };
  return {
    make: (): Made => {
      const runtime = shared ?? module.newRuntime();
      const context = runtime.newContext();
      context.unwrapResult(context.evalCode(JS_SOURCE)).dispose();
      context.unwrapResult(context.evalCode("add(1, 2)")).dispose();
      return { runtime, context };
    },
    dispose: (made) => {
      const { runtime, context } = made as Made;
      context.dispose();
      if (!shared) runtime.dispose();
    },
  };
}

export const MEMORY_APPROACHES = Object.keys(APPROACHES);

/** Runs one approach in a child process; undefined (with the reason) if it failed. */
export function measureMemoryInChild(approach: string, n: number): MemoryPerContext | { error: string } {
  const script = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, ["--expose-gc", "--no-node-snapshot", script, approach, String(n)], { encoding: "utf8", timeout: 300_000 });
  if (r.status !== 0) return { error: `${approach}: exit ${r.status ?? r.signal}: ${r.stderr.trim().split("\n").slice(-3).join(" ")}` };
  return JSON.parse(r.stdout) as MemoryPerContext;
}

async function child(approach: string, n: number): Promise<void> {
  const setup = APPROACHES[approach];
  if (!setup) throw new Error(`unknown approach ${approach} (known: ${MEMORY_APPROACHES.join(", ")})`);
  const factory = await setup();
  const first = await factory.make(); // one-time costs are not charged to the N contexts
  const result = await memoryPerContext(n, () => factory.make(), (c) => factory.dispose(c));
  factory.dispose(first);
  process.stdout.write(JSON.stringify(result));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  child(process.argv[2] ?? "", Number(process.argv[3] ?? 50)).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}

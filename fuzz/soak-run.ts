/**
 * The soak (`npm run soak`, fuzz/soak.ts): many calls mixing normal sync and async calls,
 * guest faults, timeouts, AbortSignal cancellations, kills from a host function, restores
 * and SandboxPool checkouts, sampling the process's RSS, fds, threads and children as it
 * goes. After warm-up each must stay flat within its tolerance.
 */
import path from "node:path";
import { CancelledError, GuestFaultError, TimeoutError, VmletError } from "../src/errors/errors.js";
import { SandboxPool } from "../src/pool/sandbox-pool.js";
import { SandboxBuilder } from "../src/sandbox/builder.js";
import type { Sandbox } from "../src/sandbox/sandbox.js";
import type { Snapshot } from "../src/snapshot/snapshot.js";
import { processStats, type ProcessStats } from "./process-stats.js";
import { Prng } from "./prng.js";
import { repoRoot } from "./sandboxes.js";

export interface SoakOptions {
  readonly calls: number;
  /** Samples taken over the run (the first after warm-up is the baseline). */
  readonly samples?: number;
  readonly seed?: number;
  readonly onSample?: (sample: Sample) => void;
}

export interface Sample extends ProcessStats {
  readonly calls: number;
  readonly ms: number;
}

/** How far each measure may rise over the baseline (first sample after warm-up). */
export const TOLERANCE = { rssMiB: 64, fds: 8, threads: 4, children: 2, zombies: 0 } as const;
/** The share of the calls before the baseline: caches, pools and parked VMs fill up first. */
const WARM_UP = 0.1;

export interface SoakReport {
  readonly samples: Sample[];
  readonly counts: Map<string, number>;
  /** Measures that rose past their tolerance, described. */
  readonly leaks: string[];
}

type Op = "sync" | "async" | "fault" | "timeout" | "abort" | "kill" | "restore" | "pool";
const MIX: ReadonlyArray<readonly [Op, number]> = [
  ["sync", 50], ["async", 20], ["fault", 5], ["timeout", 2], ["abort", 3], ["kill", 2], ["restore", 5], ["pool", 13],
];
const TOTAL = MIX.reduce((n, [, w]) => n + w, 0);

function pickOp(rng: Prng): Op {
  let r = rng.below(TOTAL);
  for (const [op, w] of MIX) if ((r -= w) < 0) return op;
  return "sync";
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const rng = new Prng(options.seed ?? 1);
  let sandbox: Sandbox | undefined;
  const sb = (): Sandbox => sandbox!;
  const built = await new SandboxBuilder()
    .guest(path.join(repoRoot, "guests/build/misbehave.elf"))
    .stackSize(64 << 10)
    .heapSize(1 << 20)
    .hostFunction("tick", [], "void", () => void sb().kill())
    .build();
  sandbox = built;
  const snapshot = built.snapshot();
  const pool = new SandboxPool(snapshot, { size: 2, hostFunctions: [{ name: "tick", params: [], returns: "void", impl: () => undefined }] });
  const counts = new Map<string, number>();
  const samples: Sample[] = [];
  const every = Math.max(1, Math.floor(options.calls / (options.samples ?? 20)));
  const start = performance.now();
  try {
    for (let i = 1; i <= options.calls; i++) {
      const op = pickOp(rng);
      const outcome = await runOp(op, built, snapshot, pool);
      counts.set(`${op}:${outcome}`, (counts.get(`${op}:${outcome}`) ?? 0) + 1);
      if (i % every === 0 || i === options.calls) {
        (globalThis as { gc?: () => void }).gc?.();
        const sample = { calls: i, ms: performance.now() - start, ...processStats() };
        samples.push(sample);
        options.onSample?.(sample);
      }
    }
  } finally {
    await pool.close();
    built.close();
  }
  return { samples, counts, leaks: leaks(samples) };
}

/** One operation; returns its outcome. Anything but the expected outcome throws. */
async function runOp(op: Op, sandbox: Sandbox, snapshot: Snapshot, pool: SandboxPool): Promise<string> {
  switch (op) {
    case "sync":
      return expectValue(sandbox.callSync("ok"));
    case "async":
      return expectValue(await sandbox.call("ok"));
    case "fault":
      return expectThen(() => sandbox.callSync("null_write"), GuestFaultError, sandbox, snapshot);
    case "timeout":
      return expectThen(() => sandbox.callSync("spin_forever", { timeoutMs: 1 }), TimeoutError, sandbox, snapshot);
    case "abort": {
      const controller = new AbortController();
      const call = sandbox.call("spin_forever", { signal: controller.signal });
      setImmediate(() => controller.abort());
      return expectThen(() => call, CancelledError, sandbox, snapshot);
    }
    case "kill": // tick() kills the call from inside a host function
      return expectThen(() => sandbox.callSync("host_then_spin"), CancelledError, sandbox, snapshot);
    case "restore":
      sandbox.restore(snapshot);
      return "restored";
    case "pool":
      return pool.run(async (pooled) => expectValue(await pooled.call("ok")));
  }
}

function expectValue(value: unknown): string {
  if (value !== 1) throw new Error(`ok() returned ${String(value)}`);
  return "ok";
}

/** Runs `fn`, which must fail with `type`; then restores the poisoned sandbox. */
async function expectThen(fn: () => unknown, type: new (...a: never[]) => VmletError, sandbox: Sandbox, snapshot: Snapshot): Promise<string> {
  try {
    await fn();
  } catch (error) {
    if (!(error instanceof type)) throw error;
    if (!sandbox.poisoned) throw new Error(`${error.code} did not poison the sandbox`);
    sandbox.restore(snapshot);
    return error.code;
  }
  throw new Error(`expected ${type.name}, the call succeeded`);
}

/** Each measure's rise from the baseline to the highest later sample, where it passes its tolerance. */
function leaks(samples: readonly Sample[]): string[] {
  const baselineAt = Math.min(samples.length - 1, Math.ceil(samples.length * WARM_UP));
  const baseline = samples[baselineAt];
  if (!baseline) return ["no samples"];
  const later = samples.slice(baselineAt);
  const out: string[] = [];
  for (const key of Object.keys(TOLERANCE) as Array<keyof typeof TOLERANCE>) {
    const peak = Math.max(...later.map((s) => s[key]));
    if (peak - baseline[key] > TOLERANCE[key]) out.push(`${key} rose from ${baseline[key].toFixed(1)} to ${peak.toFixed(1)} (tolerance ${TOLERANCE[key]})`);
  }
  return out;
}

/**
 * The vmlet side of the process-backend rows (bench/process-run.ts): calls with CPU time
 * per call for a spin setting, guest compute speed, and the memory (Pss) of sandboxes
 * made from one snapshot, counted in the host and in every sandbox's child process.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { Sandbox, SandboxBuilder, type Snapshot } from "../src/index.js";
import { packageRoot } from "../src/cli/paths.js";
import { setProcessSpin } from "../src/hypervisor/process/process-machine.js";
import { setVmParking } from "../src/sandbox/parked-vms.js";
import { demoBuilder, summarize, type Summary } from "./measure.js";
import type { Spin } from "./process-cref.js";
import { fromSnapshotConfig, HEAP, snapshotBuilder } from "./snapshot-measure.js";

const MIB = 2 ** 20;
const nowNs = (): bigint => process.hrtime.bigint();
const usSince = (t0: bigint, t1 = nowNs()): number => Number(t1 - t0) / 1000;

/**
 * The pid of a process-backend sandbox's child. Not public API: the sandbox's VM is a
 * ProcessMachine, whose `childPid` is for tests and benchmarks.
 */
export function childPidOf(sb: Sandbox): number {
  const pid = (sb as unknown as { vm?: { childPid?: number } }).vm?.childPid;
  if (typeof pid !== "number") throw new Error("cannot find the sandbox's child process (is it on the process backend?)");
  return pid;
}

/** CPU time a process has run, ns: /proc/<pid>/schedstat's first field (ns resolution, unlike /proc/<pid>/stat's ticks). */
export function cpuNsOf(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]);
}

/** /proc/<pid>/smaps_rollup, kB per field. */
export function smapsOf(pid: number | "self"): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync(`/proc/${pid}/smaps_rollup`, "utf8").split("\n")) {
    const m = /^(\w+):\s+(\d+) kB$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

export interface SpinCalls {
  spin: Spin;
  /** Per-call µs: median (and spread) of batch means. */
  batches: Summary;
  /** Over all the measured calls, µs per call: wall, host CPU (process.cpuUsage(): every thread of this process), child CPU. */
  meanUs: number;
  hostCpuUs: number;
  childCpuUs: number;
  calls: number;
}

/**
 * callSync("noop") on a new demo sandbox whose child was started with `spin` (the child's
 * spin count is fixed when it starts): `batches` batches of `batch` calls, after a warm-up.
 * Leaves vmlet's spin at `spin`: the caller restores the default.
 */
export async function measureSpinCalls(spin: Spin, batches: number, batch: number): Promise<SpinCalls> {
  setProcessSpin(spin.hostNs, spin.childLoops);
  const sb = await demoBuilder().build();
  try {
    const pid = childPidOf(sb);
    for (let i = 0; i < 2000; i++) sb.callSync("noop");
    const means: number[] = [];
    const cpu0 = process.cpuUsage(), child0 = cpuNsOf(pid), wall0 = nowNs();
    for (let b = 0; b < batches; b++) {
      const t0 = nowNs();
      for (let i = 0; i < batch; i++) sb.callSync("noop");
      means.push(usSince(t0) / batch);
    }
    const calls = batches * batch;
    const wall = usSince(wall0), cpu = process.cpuUsage(cpu0), child = cpuNsOf(pid) - child0;
    return { spin, batches: summarize(means), meanUs: wall / calls, hostCpuUs: (cpu.user + cpu.system) / calls, childCpuUs: child / 1000 / calls, calls };
  } finally {
    sb.close();
  }
}

export const computeElf = path.join(packageRoot, "bench/c/build/compute_guest.elf");

/** µs of callSync("checksum", rounds, seed) in a guest of bench/c/compute_guest.c, `iters` calls after one warm-up; and its result. */
export async function measureCompute(rounds: number, seed: number, iters: number): Promise<{ samples: Summary; checksum: bigint }> {
  const sb = await new SandboxBuilder().guest(computeElf).maxGuestLogLevel("warn").build();
  try {
    const checksum = BigInt(sb.callSync("checksum", rounds, seed) as bigint | number);
    const samples: number[] = [];
    for (let i = 0; i < iters; i++) {
      const t0 = nowNs();
      const r = sb.callSync("checksum", rounds, seed) as bigint | number;
      samples.push(usSince(t0));
      if (BigInt(r) !== checksum) throw new Error("checksum: the guest's result changed between calls");
    }
    return { samples: summarize(samples), checksum };
  } finally {
    sb.close();
  }
}

/** Pss of this process and of the given children, kB. */
function totalPss(pids: readonly number[]): { host: number; children: number } {
  let children = 0;
  for (const pid of pids) children += smapsOf(pid).Pss ?? 0;
  return { host: smapsOf("self").Pss ?? 0, children };
}

export interface PssResult {
  sandboxes: number;
  snapshotMiB: number;
  heapFilledMiB: number;
  touchPages: number;
  /** Pss, kB: the host before and after (its growth), and the children's sum after. */
  hostBefore: number;
  hostAfter: number;
  childrenAfter: number;
  /** Growth of host + children per extra sandbox, and of each part, KiB. */
  perSandbox: { total: number; host: number; child: number };
  /** Pages each sandbox wrote (restore()'s pagesCopied after the measurement): median, max. */
  dirtyPages: { median: number; max: number };
  /** 256 KiB + the median sandbox's dirty pages × 4 KiB. */
  budgetKiB: number;
  /** Pss of one child in detail (the median one), kB. */
  childSmaps: Record<string, number>;
}

/** A sandbox-heavy snapshot: 64 MiB of guest memory whose heap holds `fillMiB` MiB of data. */
async function filledSnapshot(fillMiB: number): Promise<{ snap: Snapshot; memMib: number }> {
  const origin = await snapshotBuilder(HEAP["64MiB"]).build();
  try {
    if (origin.callSync("heap_fill", fillMiB * MIB, 3) !== true) throw new Error("heap_fill failed");
    return { snap: origin.snapshot(), memMib: Math.ceil(origin.memorySize / MIB) };
  } finally {
    origin.close();
  }
}

/**
 * `count` sandboxes from one 64 MiB snapshot (heap filled with `fillMiB` MiB), each after
 * one touch_pages(touch) call: growth of Pss in the host's smaps_rollup plus the Pss of
 * every child's smaps_rollup, ÷ count. `gc` runs before each host reading.
 */
/** A full GC, time for the finalizers it queued (unmaps, the reaper's retirements), and another GC. */
async function settle(gc: () => void): Promise<void> {
  gc();
  await new Promise((resolve) => setTimeout(resolve, 100));
  gc();
}

export async function measurePss(count: number, fillMiB: number, touch: number, gc: () => void): Promise<PssResult> {
  const { snap, memMib } = await filledSnapshot(fillMiB);
  for (let i = 0; i < 2; i++) {
    const w = await Sandbox.fromSnapshot(snap, fromSnapshotConfig);
    w.callSync("touch_pages", touch, 1);
    w.close();
  }
  const sandboxes: Sandbox[] = [];
  try {
    // What earlier groups left (parked VMs of other snapshots, images whose mappings wait for
    // their finalizers) must be gone before the first reading: its release during the
    // measurement made the host's growth negative in a full run.
    setVmParking(false);
    setVmParking(true);
    await settle(gc);
    const before = totalPss([]);
    for (let i = 0; i < count; i++) {
      const sb = await Sandbox.fromSnapshot(snap, fromSnapshotConfig);
      sandboxes.push(sb);
      if (sb.callSync("touch_pages", touch, 1 + (i % 200)) !== touch) throw new Error("touch_pages failed");
    }
    await settle(gc);
    const pids = sandboxes.map(childPidOf);
    const after = totalPss(pids);
    const perChild = pids.map((pid) => ({ pid, pss: smapsOf(pid).Pss ?? 0 })).sort((a, b) => a.pss - b.pss);
    const childSmaps = smapsOf(perChild[perChild.length >> 1]!.pid);
    const dirty = sandboxes.map((sb) => sb.restore(snap).pagesCopied).sort((a, b) => a - b);
    const dirtyMedian = dirty[dirty.length >> 1] ?? 0;
    const host = (after.host - before.host) / count, child = after.children / count;
    return {
      sandboxes: count, snapshotMiB: memMib, heapFilledMiB: fillMiB, touchPages: touch,
      hostBefore: before.host, hostAfter: after.host, childrenAfter: after.children,
      perSandbox: { total: host + child, host, child },
      dirtyPages: { median: dirtyMedian, max: dirty[dirty.length - 1] ?? 0 },
      budgetKiB: 256 + dirtyMedian * 4,
      childSmaps,
    };
  } finally {
    for (const sb of sandboxes) sb.close();
  }
}

export interface ManyResult {
  sandboxes: number;
  /** fromSnapshot() + one call of every sandbox, then closing them all; ms. */
  createMs: number;
  closeMs: number;
  /** Pss, kB: host growth and the children's sum, with all of them alive. */
  hostPssKiB: number;
  childrenPssKiB: number;
  /** Every sandbox answered a call again once all were alive. */
  allAnswered: boolean;
}

/** `count` live sandboxes from one 16 MiB snapshot, each making a call; then each calls again, then all close. */
export async function measureMany(count: number, gc: () => void, progress: (msg: string) => void): Promise<ManyResult> {
  const origin = await snapshotBuilder(HEAP["16MiB"]).build();
  let snap: Snapshot;
  try {
    snap = origin.snapshot();
  } finally {
    origin.close();
  }
  const sandboxes: Sandbox[] = [];
  try {
    gc();
    const before = smapsOf("self").Pss ?? 0;
    const t0 = nowNs();
    for (let i = 0; i < count; i++) {
      const sb = await Sandbox.fromSnapshot(snap, fromSnapshotConfig);
      sandboxes.push(sb);
      if (sb.callSync("bump") !== 1) throw new Error(`sandbox ${i}: bump() did not return 1`);
      if ((i + 1) % 250 === 0) progress(`${i + 1} sandboxes alive`);
    }
    const createMs = usSince(t0) / 1000;
    const allAnswered = sandboxes.every((sb) => sb.callSync("bump") === 2);
    gc();
    const pss = totalPss(sandboxes.map(childPidOf));
    const t1 = nowNs();
    for (const sb of sandboxes.splice(0)) sb.close();
    const closeMs = usSince(t1) / 1000;
    return { sandboxes: count, createMs, closeMs, hostPssKiB: pss.host - before, childrenPssKiB: pss.children, allAnswered };
  } finally {
    for (const sb of sandboxes) sb.close();
  }
}

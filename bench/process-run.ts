/**
 * The process-backend rows of `npm run bench`: vmlet on the process backend against the
 * raw-C reference bench/c/build/process_ref (vmlet's own helper child and mailbox, driven
 * from C with nothing of vmlet's in the way), measured in the same run. bench/run.ts runs
 * this file with VMLET_BACKEND=process; it can also run alone:
 *
 *   VMLET_BACKEND=process node dist/bench/process-run.js [--json] [--only GROUP,...] [--many[=N]]
 *   GROUP: sync async spin compute build from-snapshot restore working-set pss cold-start   (many: only with --many)
 *
 * Prints a table (every row names its backend), writes bench/results/latest-process.json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { packageRoot } from "../src/cli/paths.js";
import { median } from "../src/cli/stats.js";
import { setProcessSpin } from "../src/hypervisor/process/process-machine.js";
import { discardWarmChildren, warmChildrenFilled } from "../src/hypervisor/process/warm-children.js";
import type { CStat } from "./cref.js";
import { demoBuilder, measureBuild, measureCalls, summarize, type BuildSamples, type CallSamples, type Summary } from "./measure.js";
import { DEFAULT_SPIN, processRefCompute, processRefCreate, processRefRoundTrip, spinLabel, type ProcessRefRoundTrip, type Spin } from "./process-cref.js";
import { measureColdStart, type ColdStartResult } from "./cold-start-measure.js";
import { measureWorkingSet, noWorkingSetSamples, sqliteFixture, WORKING_SET_ROWS } from "./working-set-measure.js";
import { measureCompute, measureMany, measurePss, measureSpinCalls, type ManyResult, type PssResult, type SpinCalls } from "./process-measure.js";
import {
  measureFromSnapshot, measureRestore, RESTORE_PAGES, restoreKey, restoreSandboxes, snapshotFixture,
  type FromSnapshotSamples, type RestoreSamples, type RestoreSandbox, type SizeId, type SnapshotFixture,
} from "./snapshot-measure.js";

export const PROCESS_GROUPS = ["sync", "async", "spin", "compute", "build", "from-snapshot", "restore", "working-set", "pss", "cold-start", "many"] as const;
export type ProcessGroup = (typeof PROCESS_GROUPS)[number];

/** How much work each measurement does: the whole run takes about a minute on a quiet 2-core machine. */
const PLAN = {
  segments: 2, // vmlet measurements in this many segments, a process_ref run before each and one at the end
  callRounds: 600, // interleaved rounds of sync/async batches
  callBatch: 25,
  cRoundTripIters: 5000,
  cCreateIters: 30,
  buildIterations: 100,
  computeRounds: 400, // checksum rounds per call: ~6 ms of work, so a call's own cost is < 0.5 % of it
  computeIters: 15,
  computeSeed: 7,
  fromSnapshotIterations: 60, // per memory size and VM reuse setting
  restoreWarmupRounds: 3,
  restoreRounds: 4, // × RESTORE_BATCH (20) iterations per (size, k), eager and deferred
  spinBatches: 200, // × callBatch calls per spin setting
  pssSandboxes: 50,
  pssFillMiB: 48,
  pssTouchPages: 4,
  coldStartRounds: 15, // new processes of each kind (bench/cold-start-measure.ts)
  workingSetIterations: 15, // fromSnapshot() + two queries, per VM reuse setting
  many: 1000,
};

/** Issue 17's target for `import "vmlet"` (set on the PVM machines, where `node -e 0` takes ~60 ms). */
const IMPORT_TARGET_MS = 10;

/** Spin settings measured (host ns before its futex sleep, child pause loops before its own). */
const SPIN_SETTINGS: readonly Spin[] = [
  DEFAULT_SPIN, // no spin
  { hostNs: 5_000, childLoops: 500 },
  { hostNs: 20_000, childLoops: 2000 },
  { hostNs: 50_000, childLoops: 5000 },
  { hostNs: 100_000, childLoops: 20000 },
];

const SNAPSHOT_SIZES: readonly SizeId[] = ["16MiB", "1GiB"];

/**
 * Untimed idle before each new sandbox in the main build and fromSnapshot rows: a service
 * idles between requests, and that is when the waiting helper children are started
 * (src/hypervisor/process/warm-children.ts). Rows "back to back" and "no waiting children"
 * show the other cases.
 */
const IDLE_MS = 3;

/** Runs `measure` with no helper children started ahead of need (VMLET_WARM_CHILDREN=0), then fills the set again. */
async function withoutWarmChildren(measure: () => Promise<void>): Promise<void> {
  const saved = process.env.VMLET_WARM_CHILDREN;
  process.env.VMLET_WARM_CHILDREN = "0";
  discardWarmChildren();
  try {
    await measure();
  } finally {
    if (saved === undefined) delete process.env.VMLET_WARM_CHILDREN;
    else process.env.VMLET_WARM_CHILDREN = saved;
    await warmChildrenFilled();
  }
}
const sizeLabel = (size: SizeId): string => size.replace("MiB", " MiB").replace("GiB", " GiB");

/** A target: the row's figure (or its ratio to the reference) must be at most / at least `value`. */
interface Target {
  on: "value" | "ratio";
  op: "≤" | "≥";
  value: number;
}

interface Row {
  id: string;
  backend: "process";
  label: string;
  unit: "µs" | "KiB" | "ms";
  vmlet: number;
  vmletP10: number | null;
  vmletP90: number | null;
  /** The reference figure and what it is (a process_ref metric, a budget, another vmlet row). */
  ref: number | null;
  refLabel: string;
  /** vmlet / ref, or for compute speed ref / vmlet. */
  ratio: number | null;
  target: Target | null;
  meetsTarget: boolean | null;
  detail?: unknown;
}

const fmt = (v: number): string => (Math.abs(v) >= 1000 ? v.toFixed(0) : Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(2));
const targetText = (t: Target | null): string => (t === null ? "—" : `${t.op} ${t.on === "ratio" ? `${t.value.toFixed(2)}×` : fmt(t.value)}`);

function makeRow(r: Omit<Row, "backend" | "meetsTarget" | "ratio"> & { ratio?: number | null }): Row {
  const ratio = r.ratio !== undefined ? r.ratio : r.ref ? r.vmlet / r.ref : null;
  const checked = r.target?.on === "ratio" ? ratio : r.vmlet;
  const meets = r.target === null || checked === null ? null : r.target.op === "≤" ? checked <= r.target.value : checked >= r.target.value;
  return { ...r, backend: "process", ratio, meetsTarget: meets };
}

function table(rows: readonly Row[]): string[] {
  const head = ["", "backend", "vmlet", "(p10–p90)", "reference", "ref", "ratio", "target", ""];
  const body = rows.map((r) => [
    r.label,
    r.backend,
    `${fmt(r.vmlet)} ${r.unit}`,
    r.vmletP10 === null || r.vmletP90 === null ? "" : `(${fmt(r.vmletP10)}–${fmt(r.vmletP90)})`,
    r.refLabel,
    r.ref === null ? "" : fmt(r.ref),
    r.ratio === null ? "" : r.ratio.toFixed(2),
    targetText(r.target),
    r.meetsTarget === null ? "(info)" : r.meetsTarget ? "ok" : "MISSED",
  ]);
  return plainTable(head, body, [0, 1, 4, 8]);
}

function plainTable(head: string[], body: string[][], leftAligned: readonly number[] = [0]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (leftAligned.includes(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd();
  return [line(head), widths.map((w) => "─".repeat(w)).join("  "), ...body.map(line)];
}

export interface ProcessBenchOptions {
  json: boolean;
  only: ReadonlySet<ProcessGroup>;
  many: number;
}

/** A full GC before reading smaps, so JS garbage does not count as sandbox memory. */
const gc: () => void = (() => {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
})();

const medianOf = (stats: readonly CStat[]): number => median(stats.map((s) => s.median));

export async function runProcessBench(o: ProcessBenchOptions): Promise<void> {
  const started = performance.now();
  const loadAtStart = os.loadavg()[0]!;
  const progress = (msg: string): void => void (o.json || process.stderr.write(`[bench process] ${msg}\n`));
  const has = (g: ProcessGroup): boolean => o.only.has(g);

  // Pss first, in a process nothing else has grown yet: what later groups leave (V8's heap
  // shrinking back, parked VMs, unmapped images) is released during a later measurement and
  // made the host's growth per sandbox negative in a full run.
  let pss: PssResult | undefined;
  if (has("pss")) {
    progress(`pss: ${PLAN.pssSandboxes} sandboxes from one 64 MiB snapshot`);
    pss = await measurePss(PLAN.pssSandboxes, PLAN.pssFillMiB, PLAN.pssTouchPages, gc);
  }
  const sb = await demoBuilder().build();
  if (sb.backend.name !== "process") {
    sb.close();
    throw new Error(`process-run needs the process backend (got ${sb.backend.name}); run it with VMLET_BACKEND=process`);
  }
  const backend = sb.backend;
  const memMib = Math.max(2, Math.ceil(sb.memorySize / 2 ** 20));
  const wantSnapshots = has("restore") || has("from-snapshot");
  const fixtures: SnapshotFixture[] = [];
  let restoring: RestoreSandbox[] = [];
  const calls: CallSamples = { sync: [], ping: [], async: [] };
  const builds: BuildSamples = { build: [], close: [] };
  const buildsBackToBack: BuildSamples = { build: [], close: [] };
  const buildsCold: BuildSamples = { build: [], close: [] };
  const restores = new Map<string, RestoreSamples>();
  const fromNew = new Map<SizeId, FromSnapshotSamples>();
  const fromNewCold = new Map<SizeId, FromSnapshotSamples>();
  const fromReused = new Map<SizeId, FromSnapshotSamples>();
  const cRound: ProcessRefRoundTrip[] = [];
  const cCreate: Array<ReturnType<typeof processRefCreate>> = [];
  const share = (total: number, seg: number): number => Math.floor((total * (seg + 1)) / PLAN.segments) - Math.floor((total * seg) / PLAN.segments);
  const cBracket = (): void => {
    if (has("sync") || has("async")) cRound.push(processRefRoundTrip(memMib, DEFAULT_SPIN, PLAN.cRoundTripIters));
    if (has("build")) cCreate.push(processRefCreate(memMib, PLAN.cCreateIters));
  };
  try {
    if (wantSnapshots) for (const size of SNAPSHOT_SIZES) fixtures.push(await snapshotFixture(size));
    if (has("restore")) restoring = await restoreSandboxes(fixtures);
    for (let seg = 0; seg < PLAN.segments; seg++) {
      const tag = `segment ${seg + 1}/${PLAN.segments}`;
      progress(`${tag}: C reference`);
      cBracket();
      if (has("sync") || has("async")) {
        progress(`${tag}: calls`);
        await measureCalls(sb, { sync: has("sync"), async: has("async"), hostCall: false, rounds: share(PLAN.callRounds, seg), batch: PLAN.callBatch }, calls);
      }
      if (has("build")) {
        progress(`${tag}: build/close`);
        const n = share(PLAN.buildIterations, seg);
        await measureBuild(n, builds, 2, IDLE_MS);
        await measureBuild(n, buildsBackToBack);
        await withoutWarmChildren(() => measureBuild(n, buildsCold, 2, IDLE_MS));
      }
      if (has("restore")) {
        progress(`${tag}: restore`);
        if (seg === 0) measureRestore(restoring, 0, new Map(), PLAN.restoreWarmupRounds);
        measureRestore(restoring, share(PLAN.restoreRounds, seg), restores);
      }
      if (has("from-snapshot")) {
        progress(`${tag}: fromSnapshot`);
        const n = share(PLAN.fromSnapshotIterations, seg);
        await measureFromSnapshot(fixtures, n, fromNew, false, 2, IDLE_MS);
        await withoutWarmChildren(() => measureFromSnapshot(fixtures, n, fromNewCold, false, 2, IDLE_MS));
        await measureFromSnapshot(fixtures, n, fromReused, true, 2, IDLE_MS);
      }
    }
  } finally {
    sb.close();
    for (const r of restoring) r.sb.close();
  }
  progress("C reference (end)");
  cBracket();

  // Spin settings: vmlet and C alternately, one setting at a time; vmlet's default restored after.
  const spins: Array<{ vmlet: SpinCalls; c: ProcessRefRoundTrip }> = [];
  if (has("spin")) {
    try {
      for (const spin of SPIN_SETTINGS) {
        progress(`spin: ${spinLabel(spin)}`);
        const vmlet = await measureSpinCalls(spin, PLAN.spinBatches, PLAN.callBatch);
        spins.push({ vmlet, c: processRefRoundTrip(memMib, spin, PLAN.cRoundTripIters) });
      }
    } finally {
      setProcessSpin(DEFAULT_SPIN.hostNs, DEFAULT_SPIN.childLoops);
    }
  }
  let compute: { vmlet: Summary; c: CStat; checksum: bigint } | undefined;
  if (has("compute")) {
    progress("compute: checksum in the guest and natively");
    const before = processRefCompute(PLAN.computeRounds, PLAN.computeSeed, PLAN.computeIters);
    const v = await measureCompute(PLAN.computeRounds, PLAN.computeSeed, PLAN.computeIters);
    const after = processRefCompute(PLAN.computeRounds, PLAN.computeSeed, PLAN.computeIters);
    if (v.checksum !== before.checksum) throw new Error(`checksum: the guest computed ${v.checksum}, C ${before.checksum}`);
    const c = [before.compute, after.compute];
    compute = { vmlet: v.samples, c: { median: medianOf(c), p90: Math.max(...c.map((s) => s.p90)), n: c.length }, checksum: v.checksum };
  }
  const workingSet = { reused: noWorkingSetSamples(), fresh: noWorkingSetSamples(), unpopulated: noWorkingSetSamples() };
  if (has("working-set")) {
    progress(`working set: SQLite with ${WORKING_SET_ROWS} rows, first and second query after fromSnapshot()`);
    const snap = await sqliteFixture();
    await measureWorkingSet(snap, PLAN.workingSetIterations, true, workingSet.reused, IDLE_MS); // its first sandbox records the working set
    // New children with and without populating it, in alternating halves (the machine drifts).
    const half = Math.ceil(PLAN.workingSetIterations / 2);
    for (let round = 0; round < 2; round++) {
      await measureWorkingSet(snap, half, false, workingSet.fresh, IDLE_MS, true);
      await measureWorkingSet(snap, half, false, workingSet.unpopulated, IDLE_MS, false);
    }
  }
  const coldStart: ColdStartResult | undefined = has("cold-start") ? await measureColdStart(PLAN.coldStartRounds, progress) : undefined;
  let many: ManyResult | undefined;
  if (has("many")) {
    progress(`many: ${o.many} live sandboxes from one 16 MiB snapshot`);
    many = await measureMany(o.many, gc, progress);
  }

  // ---- rows ----
  const rows: Row[] = [];
  const cRoundMedian = cRound.length ? medianOf(cRound.map((r) => r.single)) : null;
  if (has("sync") && cRoundMedian !== null) {
    const s = summarize(calls.sync);
    rows.push(makeRow({ id: "sync", label: 'callSync("noop")', unit: "µs", vmlet: s.median, vmletP10: s.p10, vmletP90: s.p90, ref: cRoundMedian, refLabel: "C roundtrip_us", target: { on: "ratio", op: "≤", value: 1.3 } }));
    rows.push(makeRow({ id: "sync/absolute", label: 'callSync("noop"), absolute', unit: "µs", vmlet: s.median, vmletP10: s.p10, vmletP90: s.p90, ref: null, refLabel: "", target: { on: "value", op: "≤", value: 5 } }));
  }
  if (has("async") && cRoundMedian !== null) {
    const s = summarize(calls.async);
    rows.push(makeRow({ id: "async", label: 'await call("noop")', unit: "µs", vmlet: s.median, vmletP10: s.p10, vmletP90: s.p90, ref: cRoundMedian, refLabel: "C roundtrip_us", target: { on: "ratio", op: "≤", value: 1.6 } })); // issue 17's async target
  }
  const defaultSpin = spins.find((s) => s.vmlet.spin === DEFAULT_SPIN);
  if (defaultSpin) {
    const { vmlet: v, c } = defaultSpin;
    rows.push(makeRow({ id: "cpu/host", label: "host CPU per callSync (default spin)", unit: "µs", vmlet: v.hostCpuUs, vmletP10: null, vmletP90: null, ref: c.hostCpuUs, refLabel: "C host CPU/round trip", target: null }));
    rows.push(makeRow({ id: "cpu/child", label: "child CPU per callSync (default spin)", unit: "µs", vmlet: v.childCpuUs, vmletP10: null, vmletP90: null, ref: c.childCpuUs, refLabel: "C child CPU/round trip", target: null }));
  }
  if (compute) {
    const v = compute.vmlet;
    rows.push(makeRow({
      id: "compute", label: `guest compute: checksum × ${PLAN.computeRounds} rounds (speed = C ÷ vmlet)`, unit: "µs", vmlet: v.median, vmletP10: v.p10, vmletP90: v.p90,
      ref: compute.c.median, refLabel: "C compute_us (native)", ratio: compute.c.median / v.median, target: { on: "ratio", op: "≥", value: 0.95 },
    }));
  }
  if (has("build") && cCreate.length) {
    const b = summarize(builds.build), cl = summarize(builds.close);
    const bb = summarize(buildsBackToBack.build), bc = summarize(buildsCold.build), cCreateUs = medianOf(cCreate.map((c) => c.create));
    rows.push(makeRow({ id: "build", label: "build() + first call (a waiting child ready)", unit: "µs", vmlet: b.median, vmletP10: b.p10, vmletP90: b.p90, ref: cCreateUs, refLabel: "C create_us", target: { on: "value", op: "≤", value: 1500 } }));
    rows.push(makeRow({ id: "build/back-to-back", label: "  back to back (children started in the loop)", unit: "µs", vmlet: bb.median, vmletP10: bb.p10, vmletP90: bb.p90, ref: cCreateUs, refLabel: "C create_us", target: null }));
    rows.push(makeRow({ id: "build/cold", label: "  no waiting children (VMLET_WARM_CHILDREN=0)", unit: "µs", vmlet: bc.median, vmletP10: bc.p10, vmletP90: bc.p90, ref: cCreateUs, refLabel: "C create_us", target: null }));
    rows.push(makeRow({ id: "close", label: "close()", unit: "µs", vmlet: cl.median, vmletP10: cl.p10, vmletP90: cl.p90, ref: medianOf(cCreate.map((c) => c.destroy)), refLabel: "C destroy_us", target: null }));
  }
  if (has("from-snapshot")) {
    const kinds = [["new", "new child (a waiting one)", fromNew], ["new/cold", "new child, no waiting children", fromNewCold], ["reused", "VM reused", fromReused]] as const;
    for (const [id, which, samples] of kinds) {
      for (const size of SNAPSHOT_SIZES) {
        const s = summarize(samples.get(size)!.total);
        rows.push(makeRow({
          id: `from-snapshot/${id}/${size}`, label: `fromSnapshot() + first call ${sizeLabel(size)}, ${which}`, unit: "µs",
          vmlet: s.median, vmletP10: s.p10, vmletP90: s.p90, ref: cCreate.length ? medianOf(cCreate.map((c) => c.spawn)) : null, refLabel: cCreate.length ? "C spawn_us" : "",
          target: id === "new/cold" ? null : { on: "value", op: "≤", value: 1000 }, detail: { create: summarize(samples.get(size)!.create) },
        }));
      }
    }
  }
  if (has("restore")) {
    for (const size of SNAPSHOT_SIZES) {
      for (const k of RESTORE_PAGES) {
        const r = restores.get(restoreKey(size, k))!;
        const s = summarize(r.restoreNext);
        rows.push(makeRow({
          id: `restore-next/${size}/k${k}`, label: `restore() + next call ${sizeLabel(size)}, k=${k} (${median(r.pagesCopied)} pages copied)`, unit: "µs",
          vmlet: s.median, vmletP10: s.p10, vmletP90: s.p90, ref: null, refLabel: "", target: null,
          detail: { restore: summarize(r.restore), deferredRestoreNext: summarize(r.deferredRestoreNext), pagesCopied: median(r.pagesCopied) },
        }));
      }
    }
    for (const k of RESTORE_PAGES) {
      const big = summarize(restores.get(restoreKey("1GiB", k))!.restoreNext), small = summarize(restores.get(restoreKey("16MiB", k))!.restoreNext);
      rows.push(makeRow({ id: `restore-next/scaling/k${k}`, label: `restore() + next call 1 GiB ÷ 16 MiB, k=${k}`, unit: "µs", vmlet: big.median, vmletP10: big.p10, vmletP90: big.p90, ref: small.median, refLabel: "vmlet, 16 MiB", target: { on: "ratio", op: "≤", value: 1.25 } }));
    }
  }
  if (has("working-set")) {
    const rowsOf = [["reused", "VM reused", workingSet.reused], ["new", "new child", workingSet.fresh], ["new-unpopulated", "new child, working set not populated", workingSet.unpopulated]] as const;
    for (const [id, which, samples] of rowsOf) {
      const first = summarize(samples.first), second = summarize(samples.second);
      rows.push(makeRow({
        id: `working-set/${id}`, label: `first query after fromSnapshot(), SQLite ${WORKING_SET_ROWS} rows, ${which}`, unit: "µs",
        vmlet: first.median, vmletP10: first.p10, vmletP90: first.p90, ref: second.median, refLabel: "the second query",
        target: id === "new-unpopulated" ? null : { on: "ratio", op: "≤", value: 3 },
      }));
    }
    // Where the populate's cost went: fromSnapshot() itself, beside the same without it.
    const created = summarize(workingSet.fresh.fromSnapshot), plain = summarize(workingSet.unpopulated.fromSnapshot);
    rows.push(makeRow({
      id: "working-set/new/from-snapshot", label: "  fromSnapshot() of that new child, working set populated", unit: "µs",
      vmlet: created.median, vmletP10: created.p10, vmletP90: created.p90, ref: plain.median, refLabel: "not populated", target: null,
    }));
  }
  if (pss) {
    rows.push(makeRow({ id: "pss", label: "Pss per extra sandbox (host + child)", unit: "KiB", vmlet: pss.perSandbox.total, vmletP10: null, vmletP90: null, ref: pss.budgetKiB, refLabel: "256 KiB + dirty pages", target: { on: "ratio", op: "≤", value: 1 } }));
    rows.push(makeRow({ id: "pss/host", label: "  of which the host's growth", unit: "KiB", vmlet: pss.perSandbox.host, vmletP10: null, vmletP90: null, ref: null, refLabel: "", target: null }));
    rows.push(makeRow({ id: "pss/child", label: "  of which the child process", unit: "KiB", vmlet: pss.perSandbox.child, vmletP10: null, vmletP90: null, ref: null, refLabel: "", target: null }));
  }
  if (many) {
    rows.push(makeRow({ id: "many/time", label: `${many.sandboxes} live sandboxes: fromSnapshot() + call each`, unit: "ms", vmlet: many.createMs, vmletP10: null, vmletP90: null, ref: null, refLabel: many.allAnswered ? "all answered" : "SOME FAILED", target: null }));
    rows.push(makeRow({ id: "many/pss", label: `${many.sandboxes} live sandboxes: total Pss (host growth + children)`, unit: "KiB", vmlet: many.hostPssKiB + many.childrenPssKiB, vmletP10: null, vmletP90: null, ref: null, refLabel: "", target: null }));
  }

  if (coldStart) rows.push(...coldStartRows(coldStart));

  const cpus = os.cpus();
  const result = {
    date: new Date().toISOString(),
    machine: { cpu: cpus[0]?.model.trim() ?? "unknown", cores: cpus.length, kernel: os.release(), node: process.version, loadAvg1mAtStart: loadAtStart },
    backend: { name: backend.name, flavour: backend.flavour },
    cReference: "bench/c/build/process_ref (vmlet's helper child and mailbox.h, driven from C); host and child not pinned, as vmlet's",
    guestMemoryMiB: memMib,
    plan: PLAN,
    spinDefault: DEFAULT_SPIN,
    rows,
    spins,
    cRuns: { roundTrip: cRound, create: cCreate },
    compute: compute && { ...compute, checksum: String(compute.checksum) },
    pss: pss ?? null,
    coldStart: coldStart ?? null,
    many: many ?? null,
    durationS: Math.round((performance.now() - started) / 100) / 10,
  };
  const outDir = path.join(packageRoot, "bench/results");
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, "latest-process.json"), JSON.stringify(result, null, 2) + "\n");
  if (o.json) {
    process.stdout.write(JSON.stringify(result, null, 2) + "\n");
    return;
  }

  const out: string[] = [
    `vmlet benchmark, process backend — ${result.date}`,
    `machine: ${result.machine.cpu}, ${result.machine.cores} cores, kernel ${result.machine.kernel}, node ${result.machine.node}`,
    `backend: ${backend.name}, flavour "${backend.flavour}" (a seccomp-confined child process per sandbox; no virtualisation)`,
    `C reference: process_ref — vmlet's own helper child and mailbox driven from C (no JS, no N-API); host and child unpinned, as in vmlet's rows.`,
    `spin (vmlet's default, and C's): ${spinLabel(DEFAULT_SPIN)}; guest: demo.elf, ${memMib} MiB guest memory (process_ref --mem-mib ${memMib})`,
  ];
  if (loadAtStart > 0.5) out.push(`NOTE: 1-minute load average was ${loadAtStart.toFixed(2)} at the start: other processes were busy, expect noisier figures.`);
  out.push("", ...table(rows), "");
  if (cRound.length) {
    out.push(
      `calls: median of per-batch means, ${PLAN.callRounds} interleaved rounds × ${PLAN.callBatch} calls; C: median of the medians of ${cRound.length} process_ref runs` +
        ` (${cRound.map((r) => fmt(r.single.median)).join(" / ")}; their means ${cRound.map((r) => fmt(r.meanUs)).join(" / ")} µs per round trip).`,
    );
  }
  if (cCreate.length) out.push(`C create_us (memfds + spawn + first guest exit) ${cCreate.map((c) => fmt(c.create.median)).join(" / ")}; spawn_us (spawn → helper's first exit) ${cCreate.map((c) => fmt(c.spawn.median)).join(" / ")}.`);
  if (has("from-snapshot")) {
    const parts = SNAPSHOT_SIZES.map((size) => `${sizeLabel(size)} new child ${fmt(summarize(fromNew.get(size)!.create).median)}, reused ${fmt(summarize(fromReused.get(size)!.create).median)}`);
    out.push(`fromSnapshot() alone (medians, µs): ${parts.join("; ")}.`);
  }
  if (has("restore")) {
    const parts = SNAPSHOT_SIZES.flatMap((size) => RESTORE_PAGES.map((k) => {
      const r = restores.get(restoreKey(size, k))!;
      return `${sizeLabel(size)} k=${k} ${fmt(median(r.restore))} (deferred + next ${fmt(median(r.deferredRestoreNext))})`;
    }));
    out.push(`restore() alone (medians, µs): ${parts.join("; ")}.`);
  }
  if (spins.length) {
    out.push("", `spin settings — callSync("noop") on a new sandbox per setting (${PLAN.spinBatches} × ${PLAN.callBatch} calls) and process_ref with the same setting; µs per call:`);
    out.push(...plainTable(
      ["setting", "vmlet median", "mean", "host CPU", "child CPU", "C median", "C mean", "C host CPU", "C child CPU"],
      spins.map(({ vmlet: v, c }) => [
        spinLabel(v.spin) + (v.spin === DEFAULT_SPIN ? " (default)" : ""),
        fmt(v.batches.median), fmt(v.meanUs), fmt(v.hostCpuUs), fmt(v.childCpuUs), fmt(c.single.median), fmt(c.meanUs), fmt(c.hostCpuUs), fmt(c.childCpuUs),
      ]),
    ));
    out.push("host CPU: process.cpuUsage() (all threads of Node) ÷ calls; child CPU: /proc/<pid>/schedstat ÷ calls. C: its own process CPU clock and the child's.");
  }
  if (compute) out.push("", `compute: the same checksum.h kernel in the guest (callSync) and natively (process_ref), result ${compute.checksum} on both; medians of ${PLAN.computeIters} runs each.`);
  if (pss) {
    out.push(
      "",
      `pss: ${pss.sandboxes} sandboxes from one ${pss.snapshotMiB} MiB snapshot (heap filled with ${pss.heapFilledMiB} MiB), each after one touch_pages(${pss.touchPages}) call.` +
        ` Host Pss ${pss.hostBefore} → ${pss.hostAfter} kB; children's Pss together ${pss.childrenAfter} kB. Dirty pages per sandbox: median ${pss.dirtyPages.median}, max ${pss.dirtyPages.max}.`,
      `one child's smaps_rollup (kB): ${["Rss", "Pss", "Pss_Anon", "Pss_File", "Pss_Shmem", "Private_Clean", "Private_Dirty", "Shared_Clean", "Shared_Dirty"].map((f) => `${f} ${pss!.childSmaps[f] ?? 0}`).join(", ")}.`,
    );
  }
  if (coldStart) out.push("", ...coldStartLines(coldStart));
  if (many) out.push("", `many: ${many.sandboxes} sandboxes alive at once in ${fmt(many.createMs)} ms, all answered a second call: ${many.allAnswered}; closed in ${fmt(many.closeMs)} ms; Pss host +${many.hostPssKiB} kB, children ${many.childrenPssKiB} kB.`);
  const missed = rows.filter((r) => r.meetsTarget === false).map((r) => r.id);
  out.push("", missed.length ? `targets missed (process backend): ${missed.join(", ")}` : "all process-backend targets met");
  out.push(`took ${result.durationS} s; results written to bench/results/latest-process.json`);
  process.stdout.write(out.join("\n") + "\n");
}

function usage(code: number): never {
  (code ? process.stderr : process.stdout).write(
    `usage: VMLET_BACKEND=process node dist/bench/process-run.js [--json] [--only GROUP[,GROUP...]] [--many[=N]]\n  GROUP: ${PROCESS_GROUPS.join(" ")}\n`,
  );
  process.exit(code);
}

function coldStartRows(c: ColdStartResult): Row[] {
  const row = (id: string, label: string, vmlet: number, ref: number, refLabel: string, target: Target | null): Row =>
    makeRow({ id: `cold-start/${id}`, label, unit: "ms", vmlet, vmletP10: null, vmletP90: null, ref, refLabel, target });
  return [
    row("import", 'import "vmlet" in a new process', c.vmlet.importMs, c.oneLine.importMs, "import of a one-line module", { on: "value", op: "≤", value: IMPORT_TARGET_MS }),
    row("import-exit", 'new process: import "vmlet" → exit', c.vmlet.exitMs, c.bareExitMs, "node -e 0", null),
    row("first", "new process → first result (build + call)", c.first.firstMs, c.bareExitMs, "node -e 0", null),
  ];
}

function coldStartLines(c: ColdStartResult): string[] {
  return [
    `cold start: medians of ${c.rounds} new processes of each kind, interleaved (bench/cold-start-measure.ts), ms.` +
      ` Import in the child, wall / CPU of all threads: vmlet ${fmt(c.vmlet.importMs)} / ${fmt(c.vmlet.importCpuMs)},` +
      ` a one-line module ${fmt(c.oneLine.importMs)} / ${fmt(c.oneLine.importCpuMs)}.` +
      ` Spawn → exit: node -e 0 ${fmt(c.bareExitMs)}, one-line import ${fmt(c.oneLine.exitMs)} (${(c.oneLine.exitMs / c.bareExitMs).toFixed(2)}×),` +
      ` vmlet import ${fmt(c.vmlet.exitMs)} (${(c.vmlet.exitMs / c.bareExitMs).toFixed(2)}×).`,
    `first result (snapshot.elf, 16 MiB, build from the ELF + callSync): ${fmt(c.first.firstMs)} after spawn (${(c.first.firstMs / c.bareExitMs).toFixed(2)}× node -e 0);` +
      ` in the child: import ${fmt(c.first.inChildImportMs)}, build ${fmt(c.first.inChildBuildMs)}, call ${fmt(c.first.inChildCallMs)}.` +
      ` The import target (≤ ${IMPORT_TARGET_MS} ms) is issue 17's, set on the PVM machines.`,
  ];
}

/** The command line of this file run alone (bench/run.ts passes the same flags). */
export function parseProcessArgs(argv: readonly string[]): ProcessBenchOptions {
  let json = false, many = 0;
  const only = new Set<ProcessGroup>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--json") json = true;
    else if (a === "--help" || a === "-h") usage(0);
    else if (a === "--many" || a.startsWith("--many=")) {
      many = a === "--many" ? PLAN.many : Number(a.slice("--many=".length));
      if (!Number.isInteger(many) || many < 1) usage(2);
    } else if (a === "--only" || a.startsWith("--only=")) {
      const value = a === "--only" ? argv[++i] : a.slice("--only=".length);
      if (!value) usage(2);
      for (const name of value.split(",")) {
        const id = name.trim() === "rss" ? "pss" : name.trim();
        if (!(PROCESS_GROUPS as readonly string[]).includes(id)) {
          process.stderr.write(`unknown process row group "${name}"\n`);
          usage(2);
        }
        only.add(id as ProcessGroup);
      }
    } else {
      process.stderr.write(`unknown argument "${a}"\n`);
      usage(2);
    }
  }
  const groups = only.size ? only : new Set(PROCESS_GROUPS.filter((g) => g !== "many"));
  if (many) groups.add("many");
  return { json, only: groups, many: many || PLAN.many };
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(packageRoot, "dist/bench/process-run.js")) {
  runProcessBench(parseProcessArgs(process.argv.slice(2))).catch((error: unknown) => {
    process.stderr.write(`bench (process backend) failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}

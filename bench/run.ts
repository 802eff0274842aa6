/**
 * `npm run bench`: vmlet against raw-C references, measured in the same run on the same
 * machine, on every backend the machine has. KVM (where /dev/kvm works): against
 * bench/c/kvm_ref, here, writing bench/results/latest.json. The process backend (always):
 * against bench/c/process_ref, in a child process with VMLET_BACKEND=process
 * (bench/process-run.ts), writing bench/results/latest-process.json. Each prints a table
 * of vmlet's figure, the C figure, their ratio and the target.
 *
 *   node dist/bench/run.js [--json] [--only GROUP[,GROUP...]] [--backend kvm|process] [--many[=N]]
 *   GROUP (KVM):     sync async host-call build close cancel restore from-snapshot rss disk
 *   GROUP (process): sync async spin compute build from-snapshot restore pss (= rss) cold-start many
 *   --many[=N]: also N (default 1000) live process-backend sandboxes from one snapshot (slow)
 *   VMLET_BACKEND=kvm|process, like --backend, runs one backend only.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { packageRoot } from "../src/cli/paths.js";
import { median } from "../src/cli/stats.js";
import { cKey, ITERS, restoreIters, runCReference, type CJob, type CMetric, type CRun } from "./cref.js";
import { demoBuilder, demoElf, measureBuild, measureCalls, measureCancel, summarize, type BuildSamples, type CallSamples, type Summary } from "./measure.js";
import {
  measureFromSnapshot, measureRestore, RESTORE_BATCH, RESTORE_PAGES, restoreKey, restoreSandboxes, snapshotElf, snapshotFixture, HEAP,
  type FromSnapshotSamples, type RestoreSamples, type RestoreSandbox, type RssResult, type SizeId, type SnapshotFixture,
} from "./snapshot-measure.js";
import { measureDiskSnapshots } from "./disk-snapshot-measure.js";
import { PROCESS_GROUPS } from "./process-run.js";
import { backendAvailability } from "../src/hypervisor/backend.js";

/** The rows measured on the demo guest's warm sandbox, each against one C metric at its memory size. */
const BASE_ROWS = {
  sync: { label: 'sync call  callSync("noop")', c: "roundtrip_us", target: 1.15 },
  async: { label: 'async call  await call("noop")', c: "roundtrip_us", target: 1.6 },
  "host-call": { label: "guest→host call (ping)", c: "host_call_us", target: 1.2 },
  build: { label: "sandbox build + first call", c: "create_us", target: 1.5 },
  close: { label: "sandbox close()", c: "destroy_us", target: undefined },
  cancel: { label: "cancel: kill() → rejection", c: "cancel_us", target: undefined },
} as const satisfies Record<string, { label: string; c: Exclude<CMetric, `restore${string}`>; target: number | undefined }>;
type BaseGroup = keyof typeof BASE_ROWS;

const GROUPS = [...(Object.keys(BASE_ROWS) as BaseGroup[]), "restore", "from-snapshot", "rss", "disk"] as const;
type Group = (typeof GROUPS)[number];

/** Targets of the snapshot rows (ratios vmlet / C, or vmlet / budget for memory). */
const TARGET = { restoreNext: 1.5, fromSnapshot: 2, fromSnapshotScaling: 1.25, memory: 1 };
/** Guest memory sizes of the restore and fromSnapshot rows. */
const SNAPSHOT_SIZES: readonly SizeId[] = ["16MiB", "1GiB"];
const sizeLabel = (size: SizeId): string => size.replace("MiB", " MiB").replace("GiB", " GiB");

/** How much work each measurement does; sized to keep the whole run well under 2 minutes. */
const PLAN = {
  segments: 4, // vmlet measurements are split into this many segments, with a kvm_ref run before each and one at the end
  callRounds: 2000, // interleaved rounds of call batches
  callBatch: 25, // calls per batch: small, so that a batch the OS preempts is an outlier, not a shift
  buildIterations: 200,
  cancelIterations: 150,
  restoreRounds: 20, // interleaved rounds, each RESTORE_BATCH consecutive iterations of every (memory size, k): 400 samples each
  restoreWarmupRounds: 15, // unrecorded rounds before the first: 600 cycles of each (memory size, k), 3,600 in all
  fromSnapshotIterations: 120, // per memory size
  rssSandboxes: 100,
  rssTouchPages: 4,
  rssHeapFillMiB: 48,
  rssReaders: 8, // sandboxes that then read the whole heap, to show Rss against Pss
};

interface Row {
  id: string;
  group: Group;
  label: string;
  unit: "µs" | "KiB";
  vmlet: number;
  /** Spread of vmlet's samples (batches or single measurements): 10th and 90th percentile. */
  vmletP10: number | null;
  vmletP90: number | null;
  vmletDetail: unknown;
  /** What the reference column is: a kvm_ref metric, or for memory rows the budget. */
  cMetric: string;
  /** Median of the C medians of all kvm_ref runs (one before each segment, one at the end). */
  c: number;
  cRuns: number[];
  ratio: number;
  target: number | null;
  meetsTarget: boolean | null;
}

function usage(code: number): never {
  (code ? process.stderr : process.stdout).write(
    "usage: node dist/bench/run.js [--json] [--only GROUP[,GROUP...]] [--backend kvm|process] [--many[=N]]\n" +
      `  GROUP (KVM):     ${GROUPS.join(" ")}\n  GROUP (process): ${PROCESS_GROUPS.join(" ")} (rss = pss)\n  GROUP (either):  huge (bench/huge-pages.ts, on the backend VMLET_BACKEND picks)\n` +
      "  --json     print the results as JSON instead of a table, one document per backend\n" +
      "             (bench/results/latest.json and latest-process.json are always written)\n" +
      "  --backend  one backend only (default: KVM where /dev/kvm works, then the process backend)\n" +
      "  --many[=N] also N (default 1000) live process-backend sandboxes from one snapshot\n",
  );
  process.exit(code);
}

type BackendWanted = "kvm" | "process";

/**
 * The command line: which backends run, the KVM groups (null: no KVM run) and the
 * arguments of the process-backend child (null: none).
 */
function parseArgs(argv: string[]): { json: boolean; only: Set<Group> | null; processArgs: string[] | null; huge: boolean } {
  let json = false, many: string | undefined;
  let backends = new Set<BackendWanted>(["kvm", "process"]);
  const env = process.env.VMLET_BACKEND;
  if (env === "kvm" || env === "process") backends = new Set([env]);
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--json") json = true;
    else if (a === "--help" || a === "-h") usage(0);
    else if (a === "--many" || a.startsWith("--many=")) many = a;
    else if (a === "--backend" || a.startsWith("--backend=")) {
      const value = a === "--backend" ? argv[++i] : a.slice("--backend=".length);
      if (value !== "kvm" && value !== "process") usage(2);
      backends = new Set([value]);
    } else if (a === "--only" || a.startsWith("--only=")) {
      const value = a === "--only" ? argv[++i] : a.slice("--only=".length);
      if (!value) usage(2);
      for (const name of value.split(",")) {
        const id = { hostcall: "host-call", fromsnapshot: "from-snapshot" }[name.trim()] ?? name.trim();
        if (!(GROUPS as readonly string[]).includes(id) && !(PROCESS_GROUPS as readonly string[]).includes(id) && id !== "huge") {
          process.stderr.write(`unknown row group "${name}"\n`);
          usage(2);
        }
        names.push(id);
      }
    } else {
      process.stderr.write(`unknown argument "${a}"\n`);
      usage(2);
    }
  }
  const huge = !names.length || names.includes("huge");
  if (names.length && names.every((n) => n === "huge")) return { json, only: null, processArgs: null, huge };
  const kvmNames = names.filter((n) => (GROUPS as readonly string[]).includes(n)) as Group[];
  const processNames = names.map((n) => (n === "rss" ? "pss" : n)).filter((n) => (PROCESS_GROUPS as readonly string[]).includes(n));
  const only = !backends.has("kvm") ? null : !names.length ? new Set(GROUPS) : kvmNames.length ? new Set(kvmNames) : null;
  const processArgs =
    !backends.has("process") || (names.length && !processNames.length && !many)
      ? null
      : [...(json ? ["--json"] : []), ...(processNames.length ? ["--only", [...new Set(processNames)].join(",")] : []), ...(many ? [many] : [])];
  return { json, only, processArgs, huge };
}

/** Whether /dev/kvm works here (the KVM rows need it). */
const kvmWorks = (): boolean => backendAvailability().some((b) => b.name === "kvm" && b.works);

/** The process-backend rows, in a child process of their own with VMLET_BACKEND=process (bench/process-run.ts). */
function runProcessRows(args: readonly string[]): void {
  const child = spawnSync(process.execPath, [fileURLToPath(new URL("./process-run.js", import.meta.url)), ...args], {
    stdio: "inherit",
    env: { ...process.env, VMLET_BACKEND: "process" },
  });
  if (child.status !== 0) throw new Error(`the process-backend bench failed (${child.status ?? child.signal})`);
}

async function main(): Promise<void> {
  const { json, only, processArgs, huge } = parseArgs(process.argv.slice(2));
  if (only && kvmWorks()) {
    process.env.VMLET_BACKEND = "kvm"; // the KVM rows, whatever "auto" would pick
    await runKvmRows(json, only);
    if (processArgs && !json) process.stdout.write("\n");
  } else if (only && process.env.VMLET_BACKEND === "kvm") {
    throw new Error("VMLET_BACKEND=kvm, but /dev/kvm does not work here (npx vmlet doctor says why)");
  } else if (only && !json) {
    process.stderr.write("[bench] no usable /dev/kvm: the KVM rows are skipped\n");
  }
  if (processArgs) runProcessRows(processArgs);
  if (huge) runHugePageRows(json);
}

/** The huge-page rows (bench/huge-pages.ts), in a child process: its 1 GiB guests leave nothing behind in this one. */
function runHugePageRows(json: boolean): void {
  const child = spawnSync(process.execPath, [fileURLToPath(new URL("./huge-pages.js", import.meta.url)), ...(json ? ["--json"] : [])], { stdio: "inherit" });
  if (child.status !== 0) throw new Error(`the huge-page bench failed (${child.status ?? child.signal})`);
}

const fmt = (v: number): string => (Math.abs(v) >= 1000 ? v.toFixed(0) : Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(2));

/** The KVM rows' table; every row names its backend ("kvm"). */
function table(rows: readonly Row[], unit: Row["unit"]): string[] {
  const head = ["", "backend", `vmlet ${unit}`, "(p10–p90)", unit === "µs" ? "C ref µs" : "budget KiB", unit === "µs" ? "C metric" : "budget", "ratio", "target", ""];
  const body = rows.map((r) => [
    r.label,
    "kvm",
    fmt(r.vmlet),
    r.vmletP10 === null || r.vmletP90 === null ? "" : `(${fmt(r.vmletP10)}–${fmt(r.vmletP90)})`,
    fmt(r.c),
    r.cMetric,
    r.ratio.toFixed(2),
    r.target === null ? "—" : `≤ ${r.target.toFixed(2)}`,
    r.meetsTarget === null ? "(info)" : r.meetsTarget ? "ok" : "MISSED",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 || i === 1 || i === 5 || i === 8 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd();
  return [line(head), widths.map((w) => "─".repeat(w)).join("  "), ...body.map(line)];
}

/** A plain table: first column left-aligned, the others right-aligned. */
function plainTable(head: string[], body: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd();
  return [line(head), widths.map((w) => "─".repeat(w)).join("  "), ...body.map(line)];
}

/** The kvm_ref jobs one C reference run does for the selected groups. */
function cJobs(only: Set<Group>, demoMemMib: number, fixtures: readonly SnapshotFixture[]): CJob[] {
  const jobs: CJob[] = [];
  const base = new Set<CMetric>();
  for (const g of only) if (g in BASE_ROWS) base.add(BASE_ROWS[g as BaseGroup].c);
  // Context for the call rows: the C round trip when the host resets RIP (KVM_SET_REGS) before each call.
  if (only.has("sync") || only.has("async")) base.add("roundtrip_setregs_us");
  for (const m of base) jobs.push({ metrics: [m], memMib: demoMemMib, iters: ITERS[m as keyof typeof ITERS] });
  for (const f of fixtures) {
    if (only.has("restore")) {
      for (const k of RESTORE_PAGES) {
        jobs.push({ metrics: ["restore_us", "restore_next_us", "restore_cycle_us"], memMib: f.memMib, pages: k, iters: restoreIters(k) });
        // The alternative method, for the trade-off table (information only; one memory size is enough).
        if (f.size === "16MiB") jobs.push({ metrics: ["restore_madvise_us", "restore_madvise_next_us", "restore_madvise_cycle_us"], memMib: f.memMib, pages: k, iters: restoreIters(k) });
      }
    }
    if (only.has("from-snapshot") && !(base.has("create_us") && f.memMib === demoMemMib)) jobs.push({ metrics: ["create_us"], memMib: f.memMib, iters: ITERS.create_us });
  }
  return jobs;
}

/** The KVM rows, against kvm_ref. */
async function runKvmRows(json: boolean, only: Set<Group>): Promise<void> {
  const started = performance.now();
  const loadAtStart = os.loadavg()[0]!;
  const progress = (msg: string): void => void (json || process.stderr.write(`[bench] ${msg}\n`));

  // The warm sandbox for the call rows; it also tells us the backend and the guest memory size.
  const sb = await demoBuilder().build();
  const backend = sb.backend;
  if (backend.name !== "kvm") {
    sb.close();
    throw new Error(`the KVM rows need the KVM backend (got ${backend.name})`);
  }
  const memMib = Math.max(2, Math.ceil(sb.memorySize / 2 ** 20));
  const wantSnapshots = only.has("restore") || only.has("from-snapshot");
  const fixtures: SnapshotFixture[] = [];
  let restoring: RestoreSandbox[] = [];
  try {
    if (wantSnapshots) for (const size of SNAPSHOT_SIZES) fixtures.push(await snapshotFixture(size));
    if (only.has("restore")) restoring = await restoreSandboxes(fixtures);
  } catch (error) {
    sb.close();
    throw error;
  }
  const fixtureMib = (size: SizeId): number => fixtures.find((f) => f.size === size)!.memMib;
  const jobs = cJobs(only, memMib, fixtures);

  // kvm_ref runs before every segment and once more at the end, so each vmlet segment is
  // bracketed by C runs and slow phases of the machine hit both sides alike.
  const wantCalls = { sync: only.has("sync"), async: only.has("async"), hostCall: only.has("host-call") };
  const anyCalls = wantCalls.sync || wantCalls.async || wantCalls.hostCall;
  const wantBuild = only.has("build") || only.has("close");
  const calls: CallSamples = { sync: [], ping: [], async: [] };
  const builds: BuildSamples = { build: [], close: [] };
  const cancels: number[] = [];
  const restores = new Map<string, RestoreSamples>();
  const fromSnapshots = new Map<SizeId, FromSnapshotSamples>();
  const fromSnapshotsReused = new Map<SizeId, FromSnapshotSamples>();
  let rss: RssResult | undefined;
  const cAll: CRun[] = [];
  const share = (total: number, seg: number): number => Math.floor((total * (seg + 1)) / PLAN.segments) - Math.floor((total * seg) / PLAN.segments);
  try {
    for (let seg = 0; seg < PLAN.segments; seg++) {
      const tag = `segment ${seg + 1}/${PLAN.segments}`;
      if (jobs.length) {
        progress(`${tag}: C reference`);
        cAll.push(runCReference(jobs));
      }
      if (anyCalls) {
        progress(`${tag}: calls`);
        await measureCalls(sb, { ...wantCalls, rounds: share(PLAN.callRounds, seg), batch: PLAN.callBatch }, calls);
      }
      if (wantBuild) {
        progress(`${tag}: build/close`);
        await measureBuild(share(PLAN.buildIterations, seg), builds);
      }
      if (only.has("cancel")) {
        progress(`${tag}: cancel`);
        await measureCancel(share(PLAN.cancelIterations, seg), cancels);
      }
      if (only.has("restore")) {
        progress(`${tag}: restore`);
        // JIT warm-up first, as kvm_ref runs warm-up iterations: the restore path reaches its
        // steady state only once V8 has optimised it (restore + next call fell from ~57 to
        // ~35 µs over the first ~2,000 cycles of a fresh process, and stays at ~65 µs with
        // --max-opt=1). Long-running services see the steady state.
        if (seg === 0) measureRestore(restoring, 0, new Map(), PLAN.restoreWarmupRounds);
        measureRestore(restoring, share(PLAN.restoreRounds, seg), restores);
      }
      if (only.has("from-snapshot")) {
        progress(`${tag}: fromSnapshot`);
        await measureFromSnapshot(fixtures, share(PLAN.fromSnapshotIterations, seg), fromSnapshots, false);
        await measureFromSnapshot(fixtures, share(PLAN.fromSnapshotIterations, seg), fromSnapshotsReused, true);
      }
    }
  } finally {
    sb.close();
    for (const r of restoring) r.sb.close();
  }
  if (jobs.length) {
    progress("C reference (end)");
    cAll.push(runCReference(jobs));
  }
  if (only.has("rss")) {
    progress(`rss: ${PLAN.rssSandboxes} sandboxes from one 64 MiB snapshot`);
    rss = measureRssInChild(PLAN.rssSandboxes, PLAN.rssHeapFillMiB, PLAN.rssTouchPages, PLAN.rssReaders);
  }
  const disk = only.has("disk") ? await measureDiskSnapshots((m) => progress(`disk: ${m}`)) : null; // bench/disk-snapshot-measure.ts
  const cStart = cAll[0];

  const rows: Row[] = [];
  // The median of the runs' medians: one slow kvm_ref run (it happens, for create/destroy
  // especially) would drag a mean, as it does not drag vmlet's median over all its samples.
  const cFigure = (key: string): { c: number; cRuns: number[] } => {
    const cRuns = cAll.map((r) => r.metrics[key]!.median);
    return { c: median(cRuns), cRuns };
  };
  const add = (r: Omit<Row, "ratio" | "meetsTarget" | "unit"> & { unit?: Row["unit"] }): void => {
    const ratio = r.vmlet / r.c;
    rows.push({ unit: "µs", ...r, ratio, meetsTarget: r.target === null ? null : ratio <= r.target });
  };
  const addBase = (group: BaseGroup, vmlet: number, vmletDetail: Summary | { ping: Summary; noop: Summary; pingMinusNoop: Summary }): void => {
    const def = BASE_ROWS[group];
    const spread = "pingMinusNoop" in vmletDetail ? vmletDetail.pingMinusNoop : vmletDetail;
    add({ id: group, group, label: def.label, vmlet, vmletP10: spread.p10, vmletP90: spread.p90, vmletDetail, cMetric: def.c, ...cFigure(cKey(def.c, memMib)), target: def.target ?? null });
  };
  const noop = summarize(calls.sync);
  if (only.has("sync")) addBase("sync", noop.median, noop);
  if (only.has("async")) addBase("async", summarize(calls.async).median, summarize(calls.async));
  if (only.has("host-call")) {
    const ping = summarize(calls.ping);
    const pingMinusNoop = summarize(calls.ping.map((p, i) => p - calls.sync[i]!)); // same round, same index
    addBase("host-call", ping.median - noop.median, { ping, noop, pingMinusNoop });
  }
  if (only.has("build")) addBase("build", summarize(builds.build).median, summarize(builds.build));
  if (only.has("close")) addBase("close", summarize(builds.close).median, summarize(builds.close));
  if (only.has("cancel")) addBase("cancel", summarize(cancels).median, summarize(cancels));

  /** Restore figures per (size, k), for the rows, the trade-off table and the JSON. */
  const restoreDetail: Record<string, {
    restore: Summary; restoreNext: Summary; touch: Summary; cycle: Summary; pagesCopied: { min: number; max: number };
    deferredRestore: Summary; deferredRestoreNext: Summary; deferredPagesCopied: { min: number; max: number };
  }> = {};
  if (only.has("restore")) {
    for (const size of SNAPSHOT_SIZES) {
      for (const k of RESTORE_PAGES) {
        const s = restores.get(restoreKey(size, k))!;
        const d = {
          restore: summarize(s.restore),
          restoreNext: summarize(s.restoreNext),
          touch: summarize(s.touch),
          cycle: summarize(s.touch.map((t, i) => t + s.restore[i]!)),
          pagesCopied: { min: Math.min(...s.pagesCopied), max: Math.max(...s.pagesCopied) },
          deferredRestore: summarize(s.deferredRestore),
          deferredRestoreNext: summarize(s.deferredRestoreNext),
          deferredPagesCopied: { min: Math.min(...s.deferredPagesCopied), max: Math.max(...s.deferredPagesCopied) },
        };
        restoreDetail[restoreKey(size, k)] = d;
        const copied = d.pagesCopied.min === d.pagesCopied.max ? `${d.pagesCopied.min}` : `${d.pagesCopied.min}–${d.pagesCopied.max}`;
        const mib = fixtureMib(size);
        const where = `${sizeLabel(size)}, k=${k}`;
        add({
          id: `restore/${restoreKey(size, k)}`, group: "restore", label: `restore()  ${where} (${copied} pages copied)`,
          vmlet: d.restore.median, vmletP10: d.restore.p10, vmletP90: d.restore.p90, vmletDetail: { restore: d.restore, pagesCopied: d.pagesCopied },
          cMetric: "restore_us", ...cFigure(cKey("restore_us", mib, k)), target: null,
        });
        add({
          id: `restore-next-eager/${restoreKey(size, k)}`, group: "restore", label: `restore() + next call  ${where}`,
          vmlet: d.restoreNext.median, vmletP10: d.restoreNext.p10, vmletP90: d.restoreNext.p90, vmletDetail: d.restoreNext,
          cMetric: "restore_next_us", ...cFigure(cKey("restore_next_us", mib, k)), target: null,
        });
        add({
          id: `restore-next/${restoreKey(size, k)}`, group: "restore", label: `restore({deferred}) + next call  ${where}`,
          vmlet: d.deferredRestoreNext.median, vmletP10: d.deferredRestoreNext.p10, vmletP90: d.deferredRestoreNext.p90,
          vmletDetail: { ...d.deferredRestoreNext, restoreAlone: d.deferredRestore, pagesCopied: d.deferredPagesCopied },
          cMetric: "restore_next_us", ...cFigure(cKey("restore_next_us", mib, k)), target: TARGET.restoreNext,
        });
      }
    }
  }

  const fromSnapshotDetail: Partial<Record<SizeId, { total: Summary; create: Summary; firstCall: Summary }>> = {};
  const fromSnapshotReusedDetail: Partial<Record<SizeId, { total: Summary; create: Summary; firstCall: Summary }>> = {};
  if (only.has("from-snapshot")) {
    const detail = (s: FromSnapshotSamples): { total: Summary; create: Summary; firstCall: Summary } =>
      ({ total: summarize(s.total), create: summarize(s.create), firstCall: summarize(s.total.map((t, i) => t - s.create[i]!)) });
    for (const size of SNAPSHOT_SIZES) {
      const d = (fromSnapshotDetail[size] = detail(fromSnapshots.get(size)!));
      add({
        id: `from-snapshot/${size}`, group: "from-snapshot", label: `fromSnapshot() + first call  ${sizeLabel(size)}, new VM`,
        vmlet: d.total.median, vmletP10: d.total.p10, vmletP90: d.total.p90, vmletDetail: d,
        cMetric: "create_us", ...cFigure(cKey("create_us", fixtureMib(size))), target: TARGET.fromSnapshot,
      });
      const r = (fromSnapshotReusedDetail[size] = detail(fromSnapshotsReused.get(size)!));
      add({
        id: `from-snapshot-reused/${size}`, group: "from-snapshot", label: `fromSnapshot() + first call  ${sizeLabel(size)}, VM reused`,
        vmlet: r.total.median, vmletP10: r.total.p10, vmletP90: r.total.p90, vmletDetail: r,
        cMetric: "create_us", ...cFigure(cKey("create_us", fixtureMib(size))), target: null,
      });
    }
    const scaling = (id: string, label: string, d: typeof fromSnapshotDetail, target: number | null): void => {
      const small = d["16MiB"]!.total, big = d["1GiB"]!.total;
      add({
        id, group: "from-snapshot", label, vmlet: big.median, vmletP10: big.p10, vmletP90: big.p90, vmletDetail: { big, small },
        cMetric: "(vmlet, 16 MiB)", c: small.median, cRuns: [], target,
      });
    };
    // The steady state (a sandbox of the snapshot was closed before) carries the target; a new
    // VM also pays KVM's memslot set-up, which grows with memory size (the C create_us rows show it).
    scaling("from-snapshot/scaling", "fromSnapshot() + first call  1 GiB ÷ 16 MiB, VM reused", fromSnapshotReusedDetail, TARGET.fromSnapshotScaling);
    scaling("from-snapshot/scaling-new-vm", "fromSnapshot() + first call  1 GiB ÷ 16 MiB, new VM", fromSnapshotDetail, null);
  }

  if (rss) {
    const memRow = (id: string, label: string, vmlet: number, target: number | null): void =>
      add({ id: `rss/${id}`, group: "rss", unit: "KiB", label, vmlet, vmletP10: null, vmletP90: null, vmletDetail: null, cMetric: `dirty pages + 1 MiB`, c: rss!.budgetKiB, cRuns: [], target });
    memRow("pss", "Pss per extra sandbox", rss.perSandbox.pss, TARGET.memory);
    memRow("private", "Private (Clean+Dirty) per extra sandbox", rss.perSandbox.private, TARGET.memory);
    memRow("rss", "Rss per extra sandbox", rss.perSandbox.rss, null);
  }

  const cpus = os.cpus();
  const restoreTradeoff = only.has("restore")
    ? RESTORE_PAGES.map((k) => {
        const mib = fixtureMib("16MiB");
        const c = (m: CMetric): number => cFigure(cKey(m, mib, k)).c;
        const v = restoreDetail[restoreKey("16MiB", k)]!;
        return {
          pages: k,
          copy: { restore: c("restore_us"), restoreNext: c("restore_next_us"), cycle: c("restore_cycle_us") },
          madvise: { restore: c("restore_madvise_us"), restoreNext: c("restore_madvise_next_us"), cycle: c("restore_madvise_cycle_us") },
          vmlet: { restore: v.restore.median, restoreNext: v.restoreNext.median, cycle: v.cycle.median },
        };
      })
    : null;
  const result = {
    date: new Date().toISOString(),
    machine: { cpu: cpus[0]?.model.trim() ?? "unknown", cores: cpus.length, kernel: os.release(), node: process.version, loadAvg1mAtStart: loadAtStart },
    backend: { name: backend.name, flavour: backend.flavour },
    cReferenceFlavour: cStart?.flavour ?? null,
    guest: path.relative(packageRoot, demoElf),
    guestMemoryMiB: memMib,
    snapshotGuest: path.relative(packageRoot, snapshotElf),
    snapshotGuestMemoryMiB: Object.fromEntries(fixtures.map((f) => [f.size, f.memMib])),
    plan: PLAN,
    rows,
    restoreTradeoff,
    rss: rss ?? null,
    cRuns: cAll,
    disk: disk && { ...disk, lines: undefined },
    durationS: 0,
  };
  result.durationS = Math.round((performance.now() - started) / 100) / 10;

  const outDir = path.join(packageRoot, "bench/results");
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, "latest.json"), JSON.stringify(result, null, 2) + "\n");

  if (json) {
    process.stdout.write(JSON.stringify(result, null, 2) + "\n");
    return;
  }
  const flavourText =
    backend.flavour === "pvm"
      ? "PVM — software-virtualised KVM for nested hosts, where every VM exit costs far more than with hardware virtualisation"
      : "hardware virtualisation (VMX/SVM)";
  const out: string[] = [
    `vmlet benchmark, KVM backend — ${result.date}`,
    `machine: ${result.machine.cpu}, ${result.machine.cores} cores, kernel ${result.machine.kernel}, node ${result.machine.node}`,
    `backend: ${backend.name}, flavour "${backend.flavour}" (${flavourText})`,
    `ALL FIGURES BELOW ARE FROM THE "${backend.flavour}" FLAVOUR — vmlet and the C reference alike; compare ratios, not absolute times, across machines.`,
  ];
  if (loadAtStart > 0.5) out.push(`NOTE: 1-minute load average was ${loadAtStart.toFixed(2)} at the start: other processes were busy, expect noisier figures.`);
  if (cStart && cStart.flavour !== backend.flavour) out.push(`WARNING: the C reference detected flavour "${cStart.flavour}", vmlet "${backend.flavour}"`);
  if ([...only].some((g) => g in BASE_ROWS)) out.push(`guest: ${result.guest}, ${memMib} MiB guest memory (C reference run with --mem-mib ${memMib})`);
  if (wantSnapshots) {
    out.push(
      `snapshot rows: ${result.snapshotGuest}, ${fixtures.map((f) => `${sizeLabel(f.size)} = ${f.memMib} MiB guest memory (heapSize ${HEAP[f.size] / 2 ** 20} MiB)`).join(", ")};` +
        " C reference run with the same --mem-mib",
    );
  }
  out.push("");
  const timeRows = rows.filter((r) => r.unit === "µs");
  if (timeRows.length) out.push(...table(timeRows, "µs"), "");
  const memRows = rows.filter((r) => r.unit === "KiB");
  if (memRows.length && rss) {
    out.push(
      `memory: ${rss.sandboxes} sandboxes from one ${rss.snapshotMiB} MiB snapshot (heap filled with ${rss.heapFilledMiB} MiB, ${rss.pagesStored} pages stored), ` +
        `each after one touch_pages(${rss.touchPages}) call; /proc/self/smaps_rollup after − before, ÷ ${rss.sandboxes}`,
      ...table(memRows, "KiB"),
      "",
    );
  }
  if (timeRows.some((r) => r.group in BASE_ROWS)) {
    out.push(
      `ratio = vmlet / C. vmlet calls: median of per-batch means, ${PLAN.callRounds} interleaved rounds × ${PLAN.callBatch} calls of each kind;` +
        ` build/close: median of ${PLAN.buildIterations} sandboxes; cancel: median of ${PLAN.cancelIterations} kills.`,
    );
    out.push("p10–p90: spread of vmlet's samples (guest→host call: of the per-round call_ping − noop differences).");
  } else if (timeRows.length) {
    out.push("ratio = vmlet / C. p10–p90: spread of vmlet's single measurements.");
  }
  if (cAll.length) {
    out.push(`C ref: median of the medians of ${cAll.length} kvm_ref runs, one before each of the ${PLAN.segments} segments of vmlet measurements and one at the end:`);
    for (const r of timeRows) if (r.cRuns.length) out.push(`  ${r.cMetric.padEnd(15)} ${r.cRuns.map(fmt).join(" / ")}  (${r.id})`);
  }
  const setregs = cAll.map((r) => r.metrics[cKey("roundtrip_setregs_us", memMib)]?.median);
  if (setregs.length && setregs.every((v) => v !== undefined)) {
    out.push(`  (context: C round trip with KVM_SET_REGS before every call, roundtrip_setregs_us ${setregs.map((v) => fmt(v!)).join(" / ")})`);
  }
  const hc = rows.find((r) => r.id === "host-call");
  if (hc) {
    const d = hc.vmletDetail as { ping: Summary; noop: Summary };
    out.push(`guest→host call = median callSync("call_ping") ${fmt(d.ping.median)} − median callSync("noop") ${fmt(d.noop.median)}`);
  }
  if (only.has("restore") && restoreTradeoff) {
    const n = restores.get(restoreKey("16MiB", 1))?.restore.length ?? 0;
    out.push(
      `restore rows: median of ${n} iterations per (size, k), in batches of ${RESTORE_BATCH} consecutive iterations on one sandbox (as kvm_ref loops on one VM), the batches of all (size, k) interleaved:` +
        ` touch_pages(k) (not in the row), restore(), then callSync("get_counter"). pages copied = k + the pages a call itself writes (stack, output, input, control block)` +
        ` + pages kept writable since earlier cycles (see docs/snapshots.md). C: kvm_ref --pages k, only the k pages.`,
    );
    out.push("", `restore method trade-off (information), ${fixtureMib("16MiB")} MiB guest, µs: C copies dirty pages back (vmlet's method) or drops them with madvise(MADV_DONTNEED);`);
    out.push("cycle = the call that writes the k pages + the restore, i.e. the cost per request when every request dirties the same pages again.");
    const body = restoreTradeoff.map((t) => [
      `k=${t.pages}`,
      fmt(t.copy.restore), fmt(t.copy.restoreNext), fmt(t.copy.cycle),
      fmt(t.madvise.restore), fmt(t.madvise.restoreNext), fmt(t.madvise.cycle),
      fmt(t.vmlet.cycle),
    ]);
    out.push(...plainTable(["", "C copy restore", "+ next", "cycle", "C madvise restore", "+ next", "cycle", "vmlet cycle"], body));
  }
  if (only.has("from-snapshot")) {
    const parts = SNAPSHOT_SIZES.map((size) => {
      const d = fromSnapshotDetail[size]!;
      return `${sizeLabel(size)}: fromSnapshot() ${fmt(d.create.median)} + first call ${fmt(d.firstCall.median)}`;
    });
    out.push(
      "",
      `fromSnapshot rows: median of ${PLAN.fromSnapshotIterations} sandboxes per size (alternating), each closed after its first callSync("get_counter") (close not timed).` +
        ` Medians of the parts: ${parts.join("; ")}.`,
    );
  }
  if (rss) {
    const b = rss.before, a = rss.after, c = rss.afterClose;
    const row = (name: string, f: (s: Record<string, number>) => number): string[] => [name, String(f(b)), String(f(a)), String(f(c)), fmt((f(a) - f(b)) / rss!.sandboxes)];
    out.push("", `smaps_rollup of this process, kB (before creating the sandboxes / after one call in each / after closing them; last column: per sandbox):`);
    out.push(
      ...plainTable(["", "before", "after", "closed", "per sandbox"], [
        row("Rss", (s) => s.Rss ?? 0),
        row("Pss", (s) => s.Pss ?? 0),
        row("Private_Clean+Private_Dirty", (s) => (s.Private_Clean ?? 0) + (s.Private_Dirty ?? 0)),
        row("Shared_Clean+Shared_Dirty", (s) => (s.Shared_Clean ?? 0) + (s.Shared_Dirty ?? 0)),
        row("Anonymous", (s) => s.Anonymous ?? 0),
      ]),
    );
    out.push(
      `budget = dirty pages (median ${rss.dirtyPages.median}, max ${rss.dirtyPages.max} per sandbox, from restore()'s pagesCopied: guest writes + host writes) × 4 KiB + 1 MiB = ${rss.budgetKiB} KiB.`,
      "Rss counts a shared page of the snapshot file once in every sandbox that maps it; Pss divides it among them, so Pss is what the sandboxes really add.",
      `Then ${rss.readers} of them read the whole ${rss.heapFilledMiB} MiB heap (heap_check, ${fmt(rss.heapRead.ms)} ms): Rss +${fmt(rss.heapRead.rss / 1024)} MiB,` +
        ` Pss +${fmt(rss.heapRead.pss / 1024)} MiB, Private +${fmt(rss.heapRead.private / 1024)} MiB — the heap is in memory once, shared by all ${rss.readers}.`,
    );
  }
  // The call rows are batch means, which should agree closely. A wide spread there means the run was unsteady.
  const wide = rows.filter((r) => (r.id === "sync" || r.id === "async") && r.vmletP90! / r.vmletP10! > 1.5).map((r) => r.id);
  if (wide.length) out.push(`wide spread (p90/p10 > 1.5) in: ${wide.join(", ")} — these figures move between runs; see bench/README.md`);
  if (disk) out.push("", ...disk.lines);
  const missed = [...rows.filter((r) => r.meetsTarget === false).map((r) => r.id), ...(disk?.missed ?? []).map((id) => `disk/${id}`)];
  out.push("", missed.length ? `targets missed: ${missed.join(", ")}` : rows.some((r) => r.target !== null) ? "all targets met" : "");
  out.push(`took ${result.durationS} s; results written to bench/results/latest.json`);
  process.stdout.write(out.join("\n") + "\n");
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});

/** measureRss in a fresh process (bench/rss-child.ts), so nothing else this run did moves its figures. */
function measureRssInChild(count: number, fillMiB: number, touch: number, readers: number): RssResult {
  const child = spawnSync(process.execPath, [fileURLToPath(new URL("./rss-child.js", import.meta.url)), String(count), String(fillMiB), String(touch), String(readers)], {
    encoding: "utf8",
    maxBuffer: 16 << 20,
  });
  if (child.status !== 0) throw new Error(`rss child failed (${child.status ?? child.signal}): ${child.stderr}`);
  return JSON.parse(child.stdout) as RssResult;
}

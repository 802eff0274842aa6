/**
 * `npm run bench`: vmlet against the raw-C KVM reference (bench/c/kvm_ref), measured
 * in the same run on the same machine. Prints a table of vmlet's figure, the C figure,
 * their ratio and the target; writes bench/results/latest.json.
 *
 *   node dist/bench/run.js [--json] [--only ROW[,ROW...]]
 *   ROW: sync async host-call build close cancel
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { packageRoot } from "../src/cli/paths.js";
import { median } from "../src/cli/stats.js";
import { runCReference, type CMetric, type CRun } from "./cref.js";
import { demoBuilder, demoElf, measureBuild, measureCalls, measureCancel, summarize, type BuildSamples, type CallSamples, type Summary } from "./measure.js";

const ROWS = {
  sync: { label: 'sync call  callSync("noop")', c: "roundtrip_us", target: 1.15 },
  async: { label: 'async call  await call("noop")', c: "roundtrip_us", target: 1.6 },
  "host-call": { label: "guest→host call (ping)", c: "host_call_us", target: 1.2 },
  build: { label: "sandbox build + first call", c: "create_us", target: 1.5 },
  close: { label: "sandbox close()", c: "destroy_us", target: undefined },
  cancel: { label: "cancel: kill() → rejection", c: "cancel_us", target: undefined },
} as const satisfies Record<string, { label: string; c: CMetric; target: number | undefined }>;
type RowId = keyof typeof ROWS;
const ROW_IDS = Object.keys(ROWS) as RowId[];

/** How much work each measurement does; sized to keep the whole run well under 2 minutes. */
const PLAN = {
  segments: 4, // vmlet measurements are split into this many segments, with a kvm_ref run before each and one at the end
  callRounds: 2000, // interleaved rounds of call batches
  callBatch: 25, // calls per batch: small, so that a batch the OS preempts is an outlier, not a shift
  buildIterations: 200,
  cancelIterations: 150,
};

interface Row {
  id: RowId;
  label: string;
  unit: "µs";
  vmlet: number;
  /** Spread of vmlet's samples (batches): 10th and 90th percentile. */
  vmletP10: number;
  vmletP90: number;
  vmletDetail: Summary | { ping: Summary; noop: Summary; pingMinusNoop: Summary };
  cMetric: CMetric;
  /** Median of the C medians of all kvm_ref runs (one before each segment, one at the end). */
  c: number;
  cRuns: number[];
  ratio: number;
  target: number | null;
  meetsTarget: boolean | null;
}

function usage(code: number): never {
  (code ? process.stderr : process.stdout).write(
    `usage: node dist/bench/run.js [--json] [--only ROW[,ROW...]]\n  ROW: ${ROW_IDS.join(" ")}\n` +
      "  --json  print the results as JSON instead of a table (bench/results/latest.json is always written)\n",
  );
  process.exit(code);
}

function parseArgs(argv: string[]): { json: boolean; only: Set<RowId> } {
  let json = false;
  const only = new Set<RowId>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--json") json = true;
    else if (a === "--help" || a === "-h") usage(0);
    else if (a === "--only" || a.startsWith("--only=")) {
      const value = a === "--only" ? argv[++i] : a.slice("--only=".length);
      if (!value) usage(2);
      for (const name of value.split(",")) {
        const id = name.trim() === "hostcall" ? "host-call" : name.trim();
        if (!(id in ROWS)) {
          process.stderr.write(`unknown row "${name}"\n`);
          usage(2);
        }
        only.add(id as RowId);
      }
    } else {
      process.stderr.write(`unknown argument "${a}"\n`);
      usage(2);
    }
  }
  return { json, only: only.size ? only : new Set(ROW_IDS) };
}

const fmt = (us: number): string => (us >= 1000 ? us.toFixed(0) : us >= 100 ? us.toFixed(1) : us.toFixed(2));

function table(rows: readonly Row[]): string[] {
  const head = ["", "vmlet µs", "(p10–p90)", "C ref µs", "C metric", "ratio", "target", ""];
  const body = rows.map((r) => [
    r.label,
    fmt(r.vmlet),
    `(${fmt(r.vmletP10)}–${fmt(r.vmletP90)})`,
    fmt(r.c),
    r.cMetric,
    r.ratio.toFixed(2),
    r.target === null ? "—" : `≤ ${r.target.toFixed(2)}`,
    r.meetsTarget === null ? "(info)" : r.meetsTarget ? "ok" : "MISSED",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 || i === 4 || i === 7 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd();
  return [line(head), widths.map((w) => "─".repeat(w)).join("  "), ...body.map(line)];
}

async function main(): Promise<void> {
  const { json, only } = parseArgs(process.argv.slice(2));
  const started = performance.now();
  const loadAtStart = os.loadavg()[0]!;
  const progress = (msg: string): void => void (json || process.stderr.write(`[bench] ${msg}\n`));

  // The warm sandbox for the call rows; it also tells us the backend and the guest memory size.
  const sb = await demoBuilder().build();
  const backend = sb.backend;
  const memMib = Math.max(2, Math.ceil(sb.memorySize / 2 ** 20));
  const cMetrics: CMetric[] = [...new Set([...only].map((id) => ROWS[id].c))];
  // Context for the call rows: the C round trip when the host resets RIP (KVM_SET_REGS) before each call.
  if (only.has("sync") || only.has("async")) cMetrics.push("roundtrip_setregs_us");

  // kvm_ref runs before every segment and once more at the end, so each vmlet segment is
  // bracketed by C runs and slow phases of the machine hit both sides alike.
  const wantCalls = { sync: only.has("sync"), async: only.has("async"), hostCall: only.has("host-call") };
  const anyCalls = wantCalls.sync || wantCalls.async || wantCalls.hostCall;
  const wantBuild = only.has("build") || only.has("close");
  const calls: CallSamples = { sync: [], ping: [], async: [] };
  const builds: BuildSamples = { build: [], close: [] };
  const cancels: number[] = [];
  const cAll: CRun[] = [];
  const share = (total: number, seg: number): number => Math.floor((total * (seg + 1)) / PLAN.segments) - Math.floor((total * seg) / PLAN.segments);
  for (let seg = 0; seg < PLAN.segments; seg++) {
    progress(`segment ${seg + 1}/${PLAN.segments}: C reference`);
    cAll.push(runCReference(cMetrics, memMib));
    if (anyCalls) {
      progress(`segment ${seg + 1}/${PLAN.segments}: calls`);
      await measureCalls(sb, { ...wantCalls, rounds: share(PLAN.callRounds, seg), batch: PLAN.callBatch }, calls);
    }
    if (wantBuild) {
      progress(`segment ${seg + 1}/${PLAN.segments}: build/close`);
      await measureBuild(share(PLAN.buildIterations, seg), builds);
    }
    if (only.has("cancel")) {
      progress(`segment ${seg + 1}/${PLAN.segments}: cancel`);
      await measureCancel(share(PLAN.cancelIterations, seg), cancels);
    }
  }
  sb.close();
  progress("C reference (end)");
  cAll.push(runCReference(cMetrics, memMib));
  const cStart = cAll[0]!;

  const rows: Row[] = [];
  const add = (id: RowId, vmlet: number, vmletDetail: Row["vmletDetail"]): void => {
    const def = ROWS[id];
    const spread = "pingMinusNoop" in vmletDetail ? vmletDetail.pingMinusNoop : vmletDetail;
    const cRuns = cAll.map((r) => r.metrics[def.c]!.median);
    // The median of the runs' medians: one slow kvm_ref run (it happens, for create/destroy
    // especially) would drag a mean, as it does not drag vmlet's median over all its samples.
    const c = median(cRuns);
    const ratio = vmlet / c;
    const target = def.target ?? null;
    rows.push({ id, label: def.label, unit: "µs", vmlet, vmletP10: spread.p10, vmletP90: spread.p90, vmletDetail, cMetric: def.c, c, cRuns, ratio, target, meetsTarget: target === null ? null : ratio <= target });
  };
  const noop = summarize(calls.sync);
  if (only.has("sync")) add("sync", noop.median, noop);
  if (only.has("async")) add("async", summarize(calls.async).median, summarize(calls.async));
  if (only.has("host-call")) {
    const ping = summarize(calls.ping);
    const pingMinusNoop = summarize(calls.ping.map((p, i) => p - calls.sync[i]!)); // same round, same index
    add("host-call", ping.median - noop.median, { ping, noop, pingMinusNoop });
  }
  if (only.has("build")) add("build", summarize(builds.build).median, summarize(builds.build));
  if (only.has("close")) add("close", summarize(builds.close).median, summarize(builds.close));
  if (only.has("cancel")) add("cancel", summarize(cancels).median, summarize(cancels));

  const cpus = os.cpus();
  const result = {
    date: new Date().toISOString(),
    machine: { cpu: cpus[0]?.model.trim() ?? "unknown", cores: cpus.length, kernel: os.release(), node: process.version, loadAvg1mAtStart: loadAtStart },
    backend: { name: backend.name, flavour: backend.flavour },
    cReferenceFlavour: cStart.flavour,
    guest: path.relative(packageRoot, demoElf),
    guestMemoryMiB: memMib,
    plan: PLAN,
    rows,
    cRuns: cAll,
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
    `vmlet benchmark — ${result.date}`,
    `machine: ${result.machine.cpu}, ${result.machine.cores} cores, kernel ${result.machine.kernel}, node ${result.machine.node}`,
    `backend: ${backend.name}, flavour "${backend.flavour}" (${flavourText})`,
    `ALL FIGURES BELOW ARE FROM THE "${backend.flavour}" FLAVOUR — vmlet and the C reference alike; compare ratios, not absolute times, across machines.`,
  ];
  if (loadAtStart > 0.5) out.push(`NOTE: 1-minute load average was ${loadAtStart.toFixed(2)} at the start: other processes were busy, expect noisier figures.`);
  if (cStart.flavour !== backend.flavour) out.push(`WARNING: the C reference detected flavour "${cStart.flavour}", vmlet "${backend.flavour}"`);
  out.push(`guest: ${result.guest}, ${memMib} MiB guest memory (C reference run with --mem-mib ${memMib})`, "");
  out.push(...table(rows), "");
  out.push(
    `ratio = vmlet / C. vmlet calls: median of per-batch means, ${PLAN.callRounds} interleaved rounds × ${PLAN.callBatch} calls of each kind;` +
      ` build/close: median of ${PLAN.buildIterations} sandboxes; cancel: median of ${PLAN.cancelIterations} kills.`,
  );
  out.push("p10–p90: spread of vmlet's samples (guest→host call: of the per-round call_ping − noop differences).");
  out.push(`C ref: median of the medians of ${cAll.length} kvm_ref runs, one before each of the ${PLAN.segments} segments of vmlet measurements and one at the end:`);
  for (const r of rows) out.push(`  ${r.cMetric.padEnd(13)} ${r.cRuns.map(fmt).join(" / ")}  (${r.id})`);
  const setregs = cAll.map((r) => r.metrics.roundtrip_setregs_us?.median);
  if (setregs.every((v) => v !== undefined)) {
    out.push(`  (context: C round trip with KVM_SET_REGS before every call, roundtrip_setregs_us ${setregs.map((v) => fmt(v!)).join(" / ")})`);
  }
  const hc = rows.find((r) => r.id === "host-call");
  if (hc && "ping" in hc.vmletDetail) {
    out.push(`guest→host call = median callSync("call_ping") ${fmt(hc.vmletDetail.ping.median)} − median callSync("noop") ${fmt(hc.vmletDetail.noop.median)}`);
  }
  // The call rows are batch means, which should agree closely. A wide spread there means the run was unsteady.
  const wide = rows.filter((r) => (r.id === "sync" || r.id === "async") && r.vmletP90 / r.vmletP10 > 1.5).map((r) => r.id);
  if (wide.length) out.push(`wide spread (p90/p10 > 1.5) in: ${wide.join(", ")} — these figures move between runs; see bench/README.md`);
  const missed = rows.filter((r) => r.meetsTarget === false).map((r) => r.id);
  out.push(missed.length ? `targets missed: ${missed.join(", ")}` : rows.some((r) => r.target !== null) ? "all targets met" : "");
  out.push(`took ${result.durationS} s; results written to bench/results/latest.json`);
  process.stdout.write(out.join("\n") + "\n");
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});

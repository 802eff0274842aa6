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
import { runCReference, type CMetric, type CRun } from "./cref.js";
import { demoBuilder, demoElf, measureBuild, measureCalls, measureCancel, type Summary } from "./measure.js";

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
  callRounds: 200, // interleaved rounds of call batches
  callBatch: 300, // calls per batch
  buildIterations: 200,
  cancelIterations: 150,
};

interface Row {
  id: RowId;
  label: string;
  unit: "µs";
  vmlet: number;
  vmletDetail: Summary | { ping: Summary; noop: Summary };
  cMetric: CMetric;
  /** Mean of the C medians of the runs at the start and at the end. */
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
  const head = ["", "vmlet µs", "C ref µs", "C metric", "ratio", "target", ""];
  const body = rows.map((r) => [
    r.label,
    fmt(r.vmlet),
    fmt(r.c),
    r.cMetric,
    r.ratio.toFixed(2),
    r.target === null ? "—" : `≤ ${r.target.toFixed(2)}`,
    r.meetsTarget === null ? "(info)" : r.meetsTarget ? "ok" : "MISSED",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 || i === 3 || i === 6 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd();
  return [line(head), widths.map((w) => "─".repeat(w)).join("  "), ...body.map(line)];
}

async function main(): Promise<void> {
  const { json, only } = parseArgs(process.argv.slice(2));
  const started = performance.now();
  const progress = (msg: string): void => void (json || process.stderr.write(`[bench] ${msg}\n`));

  // The warm sandbox for the call rows; it also tells us the backend and the guest memory size.
  const sb = await demoBuilder().build();
  const backend = sb.backend;
  const memMib = Math.max(2, Math.ceil(sb.memorySize / 2 ** 20));
  const cMetrics: CMetric[] = [...new Set([...only].map((id) => ROWS[id].c))];
  // Context for the call rows: the C round trip when the host resets RIP (KVM_SET_REGS) before each call.
  if (only.has("sync") || only.has("async")) cMetrics.push("roundtrip_setregs_us");

  progress(`C reference (start): ${cMetrics.join(", ")}`);
  const cStart = runCReference(cMetrics, memMib);

  const wantCalls = { sync: only.has("sync"), async: only.has("async"), hostCall: only.has("host-call") };
  let calls: Awaited<ReturnType<typeof measureCalls>> = {};
  if (wantCalls.sync || wantCalls.async || wantCalls.hostCall) {
    progress(`calls: ${PLAN.callRounds} interleaved rounds × ${PLAN.callBatch} calls`);
    calls = await measureCalls(sb, { ...wantCalls, rounds: PLAN.callRounds, batch: PLAN.callBatch });
  }
  sb.close();
  let build: Awaited<ReturnType<typeof measureBuild>> | undefined;
  if (only.has("build") || only.has("close")) {
    progress(`build/close: ${PLAN.buildIterations} sandboxes`);
    build = await measureBuild(PLAN.buildIterations);
  }
  let cancel: Summary | undefined;
  if (only.has("cancel")) {
    progress(`cancel: ${PLAN.cancelIterations} kills`);
    cancel = await measureCancel(PLAN.cancelIterations);
  }

  progress(`C reference (end): ${cMetrics.join(", ")}`);
  const cEnd = runCReference(cMetrics, memMib);

  const rows: Row[] = [];
  const add = (id: RowId, vmlet: number, vmletDetail: Row["vmletDetail"]): void => {
    const def = ROWS[id];
    const cRuns = [cStart, cEnd].map((r) => r.metrics[def.c]!.median);
    const c = cRuns.reduce((a, b) => a + b, 0) / cRuns.length;
    const ratio = vmlet / c;
    const target = def.target ?? null;
    rows.push({ id, label: def.label, unit: "µs", vmlet, vmletDetail, cMetric: def.c, c, cRuns, ratio, target, meetsTarget: target === null ? null : ratio <= target });
  };
  if (only.has("sync") && calls.sync) add("sync", calls.sync.median, calls.sync);
  if (only.has("async") && calls.async) add("async", calls.async.median, calls.async);
  if (only.has("host-call") && calls.ping && calls.sync) add("host-call", calls.ping.median - calls.sync.median, { ping: calls.ping, noop: calls.sync });
  if (only.has("build") && build) add("build", build.build.median, build.build);
  if (only.has("close") && build) add("close", build.close.median, build.close);
  if (only.has("cancel") && cancel) add("cancel", cancel.median, cancel);

  const cpus = os.cpus();
  const result = {
    date: new Date().toISOString(),
    machine: { cpu: cpus[0]?.model.trim() ?? "unknown", cores: cpus.length, kernel: os.release(), node: process.version },
    backend: { name: backend.name, flavour: backend.flavour },
    cReferenceFlavour: cStart.flavour,
    guest: path.relative(packageRoot, demoElf),
    guestMemoryMiB: memMib,
    plan: PLAN,
    rows,
    cRuns: [cStart, cEnd],
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
  if (cStart.flavour !== backend.flavour) out.push(`WARNING: the C reference detected flavour "${cStart.flavour}", vmlet "${backend.flavour}"`);
  out.push(`guest: ${result.guest}, ${memMib} MiB guest memory (C reference run with --mem-mib ${memMib})`, "");
  out.push(...table(rows), "");
  out.push(
    "ratio = vmlet / C. vmlet: median of per-batch means (calls: " +
      `${PLAN.callRounds} interleaved rounds × ${PLAN.callBatch} calls; build/close: ${PLAN.buildIterations}; cancel: ${PLAN.cancelIterations}).`,
  );
  out.push("C ref: mean of the medians of two kvm_ref runs, at the start and at the end of this run:");
  for (const r of rows) out.push(`  ${r.cMetric.padEnd(13)} ${r.cRuns.map(fmt).join(" / ")}  (${r.id})`);
  const setregs = [cStart, cEnd].map((r) => r.metrics.roundtrip_setregs_us?.median);
  if (setregs[0] !== undefined && setregs[1] !== undefined) {
    out.push(`  (context: C round trip with KVM_SET_REGS before every call, roundtrip_setregs_us ${setregs.map((v) => fmt(v!)).join(" / ")})`);
  }
  const hc = rows.find((r) => r.id === "host-call");
  if (hc && "ping" in hc.vmletDetail) {
    out.push(`guest→host call = median callSync("call_ping") ${fmt(hc.vmletDetail.ping.median)} − median callSync("noop") ${fmt(hc.vmletDetail.noop.median)}`);
  }
  const missed = rows.filter((r) => r.meetsTarget === false).map((r) => r.id);
  out.push(missed.length ? `targets missed: ${missed.join(", ")}` : rows.some((r) => r.target !== null) ? "all targets met" : "");
  out.push(`took ${result.durationS} s; results written to bench/results/latest.json`);
  process.stdout.write(out.join("\n") + "\n");
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});

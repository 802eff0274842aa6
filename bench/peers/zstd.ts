/**
 * The zstd row of `npm run bench:peers`: zstd as a vmlet guest (examples/zstd-guest/)
 * against the same pinned zstd source and the same loop (zstd-work.c) compiled for the
 * host (build/zstd-host), in one run. The corpus is loaded into the guest once; each
 * sample is one callSync that runs the loop (about 50 ms), against the host program's
 * own timing of the same loop. Samples alternate between guest and host.
 *
 * The figure is throughput per CPU second: on the shared 2-core machine wall-clock
 * medians swing by 2× from run to run with other people's load, while the CPU time a
 * loop takes does not count the time other processes ran. Host: CLOCK_PROCESS_CPUTIME_ID
 * around its loop. Guest, on the process backend: the run time the kernel accounts to the
 * sandbox's child (/proc/PID/schedstat), which runs nothing but the call. Elsewhere (KVM)
 * the guest has no separate process to account: both sides then use wall-clock time. The
 * wall-clock ratio is printed beside it either way; it includes one call's overhead.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { benchCorpus } from "../../examples/zstd-guest/corpus.js";
import { hostBench } from "../../examples/zstd-guest/zstd-host.js";
import { ZstdSandbox } from "../../examples/zstd-guest/zstd-sandbox.js";
import { now, summarize, type Summary } from "./common.js";

export interface ZstdRow {
  operation: string;
  /** MB/s (10^6 bytes of uncompressed data per second of `clock`). */
  guest: Summary;
  host: Summary;
  clock: "CPU time" | "wall clock";
  /** guest / host throughput: the ratio of the medians. */
  ratio: number;
  /** The same from wall-clock time. */
  wallRatio: number;
}

export interface ZstdResult {
  version: string;
  rows: ZstdRow[];
  text: string;
  markdown: string;
}

interface Workload {
  operation: string;
  what: "compress" | "decompress";
  level: number;
  corpusSize: number;
  rounds: number;
}

const MIB = 1 << 20;
/** Rounds for about 50 ms per sample on the 2-core AMD EPYC. */
const WORKLOADS: Workload[] = [
  { operation: "compress, level 1", what: "compress", level: 1, corpusSize: 4 * MIB, rounds: 8 },
  { operation: "compress, level 3 (default)", what: "compress", level: 3, corpusSize: 4 * MIB, rounds: 5 },
  { operation: "compress, level 19", what: "compress", level: 19, corpusSize: MIB / 4, rounds: 1 },
  { operation: "decompress (a level-3 frame)", what: "decompress", level: 3, corpusSize: 4 * MIB, rounds: 25 },
];

/** The sandbox's child process on the process backend (an internal field, read by benchmarks and tests only). */
function childPid(zstd: ZstdSandbox): number | undefined {
  return (zstd.sandbox as unknown as { vm?: { childPid?: number } }).vm?.childPid;
}

/** ns the kernel has run `pid` for: the first field of /proc/PID/schedstat. */
function runTimeNs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]);
}

interface Sample {
  wallNs: number;
  cpuNs: number | undefined;
  total: bigint;
}

function guestSample(zstd: ZstdSandbox, w: Workload): Sample {
  const pid = childPid(zstd);
  const cpu0 = pid === undefined ? 0 : runTimeNs(pid);
  const t0 = now();
  const total = zstd.sandbox.callSync(`bench_${w.what}`, w.rounds) as bigint;
  const wallNs = (now() - t0) * 1e6;
  return { wallNs, cpuNs: pid === undefined || childPid(zstd) !== pid ? undefined : runTimeNs(pid) - cpu0, total };
}

async function measureWorkload(zstd: ZstdSandbox, w: Workload, samples: number, dir: string): Promise<ZstdRow> {
  const corpus = benchCorpus(w.corpusSize);
  const file = path.join(dir, `corpus-${w.corpusSize}`);
  writeFileSync(file, corpus);
  zstd.sandbox.callSync("bench_load", corpus, w.level);
  const mbs = (ns: number): number => (w.corpusSize * w.rounds) / (ns / 1e9) / 1e6;
  const guest: Sample[] = [];
  const host: Sample[] = [];
  for (let i = -1; i < samples; i++) {
    const g = guestSample(zstd, w);
    const h = hostBench(w.what, w.level, w.rounds, file);
    if (g.total === 0n || g.total !== h.total) throw new Error(`${w.operation}: the guest produced ${g.total} bytes, the host ${h.total}`);
    if (i < 0) continue; // a warm-up pair
    guest.push(g);
    host.push(h);
  }
  const cpu = guest.every((s) => s.cpuNs !== undefined);
  const figure = (s: Sample): number => mbs(cpu ? s.cpuNs! : s.wallNs);
  const [g, h] = [summarize(guest.map(figure)), summarize(host.map(figure))];
  const wall = (list: Sample[]): number => summarize(list.map((s) => mbs(s.wallNs))).median;
  return {
    operation: `${w.operation}, ${w.corpusSize >= MIB ? `${w.corpusSize / MIB} MiB` : `${w.corpusSize >> 10} KiB`}`,
    guest: g,
    host: h,
    clock: cpu ? "CPU time" : "wall clock",
    ratio: g.median / h.median,
    wallRatio: wall(guest) / wall(host),
  };
}

export async function measureZstd(quick: boolean): Promise<ZstdResult> {
  const samples = quick ? 8 : 30;
  const zstd = await ZstdSandbox.open();
  const dir = mkdtempSync(path.join(tmpdir(), "vmlet-zstd-bench-"));
  const rows: ZstdRow[] = [];
  try {
    for (const w of WORKLOADS) rows.push(await measureWorkload(zstd, w, samples, dir));
    const version = zstd.version();
    return { version, rows, text: textTable(rows), markdown: markdown(version, rows) };
  } finally {
    zstd.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const mbs = (s: Summary): string => (s.median >= 100 ? s.median.toFixed(0) : s.median.toFixed(1));

function cells(row: ZstdRow): string[] {
  return [row.operation, row.clock, mbs(row.guest), mbs(row.host), `${row.ratio.toFixed(2)}×`, `${row.wallRatio.toFixed(2)}×`];
}

const HEAD = ["zstd operation", "timed by", "vmlet guest MB/s", "host MB/s", "guest / host", "(wall clock)"];

function textTable(rows: ZstdRow[]): string {
  const all = [HEAD, ...rows.map(cells)];
  const widths = HEAD.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ")).join("\n");
}

function markdown(version: string, rows: ZstdRow[]): string {
  const lines = [`| ${HEAD.join(" | ")} |`, `|${HEAD.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${cells(r).join(" | ")} |`)];
  const worst = Math.min(...rows.map((r) => r.ratio));
  return `
## zstd in a sandbox

zstd ${version} as a vmlet guest (\`examples/zstd-guest/\`, upstream's lib/ from the pinned zstd-napi
tarball, \`-O2\`) against the same source and the same loop compiled for the host, in one run: MB/s of
uncompressed data, medians of ${rows[0]?.guest.n ?? 0} samples per side (guest and host alternate, about 50 ms each).
Timed by CPU time where the guest runs in its own process (process backend): the loop's throughput
per CPU second, which other processes on a shared machine do not change; the wall-clock ratio
(one \`callSync\` per guest sample, so one call's overhead included) is beside it.

${lines.join("\n")}

Target: guest ≥ 0.95 × host throughput. ${worst >= 0.95 ? "✅ holds" : "❌ does not hold"} (lowest ratio ${worst.toFixed(2)}×).
`;
}

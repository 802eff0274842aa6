/** Runs the raw-C KVM reference (bench/c/build/kvm_ref) as a child process and parses its JSON. */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { packageRoot } from "../src/cli/paths.js";

export const C_METRICS = [
  "create_us", "destroy_us", "roundtrip_us", "roundtrip_setregs_us", "host_call_us", "cancel_us",
  "restore_us", "restore_next_us", "restore_cycle_us",
  "restore_madvise_us", "restore_madvise_next_us", "restore_madvise_cycle_us",
] as const;
export type CMetric = (typeof C_METRICS)[number];

export interface CStat {
  median: number;
  p90: number;
  n: number;
}

/**
 * One kvm_ref child process: the metrics it measures (one measurement loop, since
 * --iters applies to everything in a run), at one guest memory size and, for the
 * restore metrics, one number of dirty pages.
 */
export interface CJob {
  metrics: readonly CMetric[];
  memMib: number;
  pages?: number;
  iters: number;
}

export interface CRun {
  flavour: "pvm" | "hardware";
  /** Wall time of all the child processes of this run, ms. */
  wallMs: number;
  /** Keyed by cKey(metric, memMib, pages). */
  metrics: Record<string, CStat>;
}

/** The key of a C figure: metric, guest memory size and (restore metrics) dirty pages. */
export const cKey = (metric: CMetric, memMib: number, pages?: number): string => `${metric}@${memMib}MiB${pages === undefined ? "" : `/k${pages}`}`;

export const kvmRefPath = path.join(packageRoot, "bench/c/build/kvm_ref");

function exec(args: string[]): Record<string, unknown> {
  let out: string;
  try {
    out = execFileSync(kvmRefPath, args, { encoding: "utf8", timeout: 120_000, stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`C reference failed (${kvmRefPath} ${args.join(" ")}): ${e.stderr?.trim() || e.message}`);
  }
  try {
    return JSON.parse(out) as Record<string, unknown>;
  } catch {
    throw new Error(`C reference printed something that is not JSON: ${out.slice(0, 200)}`);
  }
}

/**
 * Iterations per metric in one kvm_ref run. The benchmark runs kvm_ref several times,
 * between its own measurements, so each run is a quarter or so of kvm_ref's defaults.
 * --iters applies to everything kvm_ref measures in one run, hence one --only run per metric.
 */
export const ITERS: Record<Exclude<CMetric, `restore${string}`>, number> = {
  create_us: 60,
  destroy_us: 60,
  roundtrip_us: 5000,
  roundtrip_setregs_us: 5000,
  host_call_us: 5000,
  cancel_us: 500,
};

/** Restore iterations per run by dirty pages: a cycle with 256 pages takes ~2 ms (copy) or ~4 ms (madvise) on PVM. */
export const restoreIters = (pages: number): number => (pages >= 128 ? 100 : pages >= 8 ? 300 : 400);

/** Runs every job once (one child process each) and collects the figures. */
export function runCReference(jobs: readonly CJob[]): CRun {
  if (!existsSync(kvmRefPath)) throw new Error(`${kvmRefPath} is missing; build it with \`npm run build\` (or \`make -C bench/c\`)`);
  const started = performance.now();
  const result: CRun = { flavour: "hardware", wallMs: 0, metrics: {} };
  for (const job of jobs) {
    const args = ["--mem-mib", String(job.memMib), "--iters", String(job.iters), "--only", job.metrics.join(",")];
    if (job.pages !== undefined) args.push("--pages", String(job.pages));
    const json = exec(args);
    result.flavour = json.flavour === "pvm" ? "pvm" : "hardware";
    for (const m of job.metrics) {
      const s = json[m] as CStat | undefined;
      if (!s || typeof s.median !== "number") throw new Error(`C reference did not report ${m}`);
      result.metrics[cKey(m, job.memMib, job.pages)] = s;
    }
  }
  result.wallMs = Math.round(performance.now() - started);
  return result;
}

/** Runs the raw-C KVM reference (bench/c/build/kvm_ref) as a child process and parses its JSON. */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { packageRoot } from "../src/cli/paths.js";

export const C_METRICS = ["create_us", "destroy_us", "roundtrip_us", "roundtrip_setregs_us", "host_call_us", "cancel_us"] as const;
export type CMetric = (typeof C_METRICS)[number];

export interface CStat {
  median: number;
  p90: number;
  n: number;
}

export interface CRun {
  flavour: "pvm" | "hardware";
  mem_mib: number;
  /** Wall time of the whole child process run(s), ms. */
  wallMs: number;
  metrics: Partial<Record<CMetric, CStat>>;
}

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
const ITERS: Record<CMetric, number> = {
  create_us: 60,
  destroy_us: 60,
  roundtrip_us: 5000,
  roundtrip_setregs_us: 5000,
  host_call_us: 5000,
  cancel_us: 500,
};

/** Measures `metrics` with the C reference: one `--only` child process per metric. */
export function runCReference(metrics: readonly CMetric[], memMib: number): CRun {
  if (!existsSync(kvmRefPath)) throw new Error(`${kvmRefPath} is missing; build it with \`npm run build\` (or \`make -C bench/c\`)`);
  const started = performance.now();
  const result: CRun = { flavour: "hardware", mem_mib: memMib, wallMs: 0, metrics: {} };
  for (const m of new Set(metrics)) {
    const json = exec(["--mem-mib", String(memMib), "--iters", String(ITERS[m]), "--only", m]);
    result.flavour = json.flavour === "pvm" ? "pvm" : "hardware";
    const s = json[m] as CStat | undefined;
    if (!s || typeof s.median !== "number") throw new Error(`C reference did not report ${m}`);
    result.metrics[m] = s;
  }
  result.wallMs = Math.round(performance.now() - started);
  return result;
}

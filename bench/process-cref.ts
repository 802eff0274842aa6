/** Runs the raw-C process-backend reference (bench/c/build/process_ref) as a child process and parses its JSON. */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { packageRoot } from "../src/cli/paths.js";
import { PROCESS_SPIN_DEFAULT } from "../src/hypervisor/process/process-machine.js";
import type { CStat } from "./cref.js";

export const processRefPath = path.join(packageRoot, "bench/c/build/process_ref");
const helper = path.join(packageRoot, "build/Release/vmlet-process-helper");

/** How both sides wait: the host spins hostNs before its futex sleep, the child childLoops pause loops. */
export interface Spin {
  hostNs: number;
  childLoops: number;
}

/** vmlet's defaults (src/hypervisor/process/process-machine.ts): the C reference's main rows use them too. */
export const DEFAULT_SPIN: Spin = { ...PROCESS_SPIN_DEFAULT };

export const spinLabel = (s: Spin): string => `host ${s.hostNs / 1000} µs / child ${s.childLoops} loops`;

export interface ProcessRefRoundTrip {
  single: CStat;
  meanUs: number;
  hostCpuUs: number;
  childCpuUs: number;
}

function exec(args: string[]): Record<string, unknown> {
  if (!existsSync(processRefPath)) throw new Error(`${processRefPath} is missing; build it with \`npm run build\` (or \`make -C bench/c\`)`);
  let out: string;
  try {
    out = execFileSync(processRefPath, ["--helper", helper, ...args], { encoding: "utf8", timeout: 120_000, stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`C reference failed (${processRefPath} ${args.join(" ")}): ${e.stderr?.trim() || e.message}`);
  }
  try {
    return JSON.parse(out) as Record<string, unknown>;
  } catch {
    throw new Error(`C reference printed something that is not JSON: ${out.slice(0, 200)}`);
  }
}

const stat = (json: Record<string, unknown>, key: string): CStat => {
  const s = json[key] as CStat | undefined;
  if (!s || typeof s.median !== "number") throw new Error(`C reference did not report ${key}`);
  return s;
};

/** One round-trip run: median of single round trips, and wall / host CPU / child CPU per round trip over the loop. */
export function processRefRoundTrip(memMib: number, spin: Spin, iters: number): ProcessRefRoundTrip {
  const json = exec(["--only", "roundtrip_us", "--mem-mib", String(memMib), "--iters", String(iters), "--host-spin-ns", String(spin.hostNs), "--child-spin", String(spin.childLoops)]);
  return {
    single: stat(json, "roundtrip_us"),
    meanUs: Number(json.roundtrip_mean_us),
    hostCpuUs: Number(json.roundtrip_host_cpu_us),
    childCpuUs: Number(json.roundtrip_child_cpu_us),
  };
}

/** spawn_us (spawn → the helper's first exit), create_us (memfds + spawn + the guest's first exit), destroy_us. */
export function processRefCreate(memMib: number, iters: number): { spawn: CStat; create: CStat; destroy: CStat } {
  const json = exec(["--only", "spawn_us,create_us,destroy_us", "--mem-mib", String(memMib), "--iters", String(iters)]);
  return { spawn: stat(json, "spawn_us"), create: stat(json, "create_us"), destroy: stat(json, "destroy_us") };
}

/** The checksum kernel (bench/c/checksum.h) run natively: µs per run and its result. */
export function processRefCompute(rounds: number, seed: number, iters: number): { compute: CStat; checksum: bigint } {
  const json = exec(["--only", "compute_us", "--rounds", String(rounds), "--seed", String(seed), "--iters", String(iters)]);
  return { compute: stat(json, "compute_us"), checksum: BigInt(String(json.checksum)) };
}

/** Rows of the disk section (bench/disk-snapshot-measure.ts, bench/disk-layers-measure.ts): vmlet against a reference, with a target. */
import { spawnSync } from "node:child_process";

const nowNs = (): bigint => process.hrtime.bigint();
const msSince = (t0: bigint, t1 = nowNs()): number => Number(t1 - t0) / 1e6;

export interface DiskRow {
  id: string;
  label: string;
  unit: "MB/s" | "ms" | "KiB";
  vmlet: number;
  ref: number;
  refLabel: string;
  /** vmlet / ref (for MB/s rows: vmlet's throughput / the reference's). */
  ratio: number;
  /** "≥" for throughput, "≤" for time. */
  target: { op: "≥" | "≤"; value: number } | null;
  meetsTarget: boolean | null;
  samples: { vmlet: number[]; ref: number[] };
  detail?: unknown;
}

export function row(r: Omit<DiskRow, "ratio" | "meetsTarget">): DiskRow {
  const ratio = r.vmlet / r.ref;
  const meetsTarget = r.target === null ? null : r.target.op === "≥" ? ratio >= r.target.value : ratio <= r.target.value;
  return { ...r, ratio, meetsTarget };
}

/** Runs a command to completion; ms of wall time from spawn to exit. Throws on failure. */
export function runTimed(cmd: string, args: string[]): { ms: number; stdout: string; stderr: string } {
  const t0 = nowNs();
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  const ms = msSince(t0);
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${String(r.status)}): ${r.stderr}`);
  return { ms, stdout: r.stdout, stderr: r.stderr };
}

/** Runs vmlet's side and the reference's in round `i`, in alternating order: neither always runs on a warmer cache. */
export async function alternately(i: number, vmlet: () => Promise<unknown>, reference: () => unknown): Promise<void> {
  if (i % 2 === 0) {
    await vmlet();
    reference();
  } else {
    reference();
    await vmlet();
  }
}

/** A new Node process timed from the parent: the cold-start rows (cold-start-measure.ts, disk-snapshot-measure.ts). */
import { spawn } from "node:child_process";

const nowNs = (): bigint => process.hrtime.bigint();
const msSince = (t0: bigint, t1 = nowNs()): number => Number(t1 - t0) / 1e6;

/** Spawns `node args…`; ms from spawn to the first stdout line and to exit, and the line. */
export function spawnTimed(args: string[]): Promise<{ firstMs: number; exitMs: number; line: string }> {
  return new Promise((resolve, reject) => {
    const t0 = nowNs();
    let firstMs = Number.NaN;
    let out = "";
    let err = "";
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      if (Number.isNaN(firstMs) && (out + chunk).includes("\n")) firstMs = msSince(t0);
      out += chunk;
    });
    child.stderr.on("data", (chunk: Buffer) => void (err += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      const exitMs = msSince(t0);
      if (code !== 0) reject(new Error(`node ${args.join(" ")} exited with ${String(code)}: ${err}`));
      else resolve({ firstMs, exitMs, line: out.split("\n")[0]! });
    });
  });
}

/**
 * The host reference of the zstd guest's test and benchmark: build/zstd-host, the same
 * pinned zstd source and zstd-work.c compiled for the host (see zstd-host.c).
 */
import { execFileSync, spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const zstdHost = path.join(root, "examples/zstd-guest/build/zstd-host");

/** The host's answer: the output bytes, or zstd's error code and name. */
export type HostAnswer = { bytes: Uint8Array } | { zstdCode: number; name: string };

function run(args: string[], input: Uint8Array): HostAnswer {
  const r = spawnSync(zstdHost, args, { input, maxBuffer: 1 << 30 });
  if (r.status === 0) return { bytes: new Uint8Array(r.stdout) };
  const match = /^(\d+) (.*)\n$/.exec(r.stderr.toString("utf8"));
  if (r.status !== 1 || !match) throw new Error(`${zstdHost} ${args.join(" ")} failed (${r.status ?? r.signal}): ${r.stderr.toString("utf8")}`);
  return { zstdCode: Number(match[1]), name: match[2]! };
}

export const hostCompress = (data: Uint8Array, level: number): HostAnswer => run(["compress", String(level)], data);
export const hostDecompress = (data: Uint8Array, maxSize: number): HostAnswer => run(["decompress", String(maxSize)], data);
export const hostVersion = (): string => execFileSync(zstdHost, ["version"], { encoding: "utf8" }).trim();

/** The host's own timing (wall and CPU time, ns) of `rounds` compressions or decompressions of the corpus in `file`. */
export function hostBench(what: "compress" | "decompress", level: number, rounds: number, file: string): { wallNs: number; cpuNs: number; total: bigint } {
  const [wallNs, cpuNs, total] = execFileSync(zstdHost, ["bench", what, String(level), String(rounds), file], { encoding: "utf8" }).trim().split(" ");
  return { wallNs: Number(wallNs), cpuNs: Number(cpuNs), total: BigInt(total!) };
}

/**
 * `npm run bench:libc`: the guest SDK's libc against musl's, function by function, in one
 * run on this machine (bench/libc/libc_compare.c, built with musl-gcc). Guest code runs at the
 * host's speed (the compute rows of `npm run bench` show 0.99×), so the host figures stand for
 * the guest's. The question it answers is issue 14's: link Debian's musl libc.a into guests, or
 * keep the SDK's own libc (docs/guest-sdk.md, "Why the SDK's own libc, not musl").
 *
 *   node dist/bench/libc-compare.js [--json]
 */
import { execFileSync, spawnSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { packageRoot } from "../src/cli/paths.js";

interface Row {
  readonly name: string;
  readonly sdkNs: number;
  readonly muslNs: number;
}

const dir = path.join(packageRoot, "bench/libc");
if (spawnSync("musl-gcc", ["--version"], { stdio: "ignore" }).status !== 0) {
  console.log("bench:libc needs musl-gcc to build musl's side (Debian: apt-get install musl-tools); skipped.");
  process.exit(0);
}
execFileSync("make", ["-s", "-C", dir], { stdio: "inherit" });
const rows = JSON.parse(execFileSync(path.join(dir, "build/libc_compare"), { encoding: "utf8" })) as Row[];

if (process.argv.includes("--json")) {
  console.log(JSON.stringify({ machine: machine(), rows }, null, 2));
} else {
  console.log(`guest SDK libc vs musl ${muslVersion()} (Debian libc.a), ns per call, best of 7 rounds, on the host`);
  console.log(`machine: ${machine()}; load average ${os.loadavg()[0]!.toFixed(2)} at the end\n`);
  console.log(`${"operation".padEnd(26)}${"SDK".padStart(12)}${"musl".padStart(12)}${"musl ÷ SDK".padStart(12)}`);
  for (const r of rows) console.log(`${r.name.padEnd(26)}${r.sdkNs.toFixed(1).padStart(12)}${r.muslNs.toFixed(1).padStart(12)}${(r.muslNs / r.sdkNs).toFixed(2).padStart(12)}`);
  const faster = rows.filter((r) => r.sdkNs < r.muslNs).length;
  console.log(`\nthe SDK is faster in ${faster} of ${rows.length} operations (ratio > 1: the SDK is faster)`);
}

function machine(): string {
  return `${os.cpus()[0]?.model.trim() ?? "unknown CPU"}, ${os.cpus().length} cores, kernel ${os.release()}`;
}

function muslVersion(): string {
  const r = spawnSync("dpkg-query", ["-W", "-f", "${Version}", "musl-dev"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : "(version unknown)";
}

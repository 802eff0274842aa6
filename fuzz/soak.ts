/**
 * `npm run soak [-- --calls N]` (default 1,000,000): runs the soak (soak-run.ts), prints
 * the process's RSS, fds, threads and children at intervals, and exits 1 if any rose past
 * its tolerance after warm-up (or a call ended other than as expected).
 */
import { formatStats } from "./process-stats.js";
import { runSoak, TOLERANCE } from "./soak-run.js";

function callsArgument(argv: readonly string[]): number {
  const at = argv.indexOf("--calls");
  if (at < 0) return 1_000_000;
  const n = Number(argv[at + 1]);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--calls takes a positive whole number, got ${argv[at + 1]}`);
  return n;
}

const calls = callsArgument(process.argv.slice(2));
console.log(`soak: ${calls} calls; tolerance after warm-up: ${JSON.stringify(TOLERANCE)}`);
const report = await runSoak({
  calls,
  samples: 40,
  onSample: (s) => console.log(`  ${s.calls} calls, ${(s.ms / 1000).toFixed(0)} s (${(s.calls / (s.ms / 1000)).toFixed(0)}/s): ${formatStats(s)}`),
});
console.log(`outcomes: ${[...report.counts.entries()].sort().map(([k, v]) => `${k} ${v}`).join(", ")}`);
if (report.leaks.length > 0) {
  console.log(`NOT FLAT: ${report.leaks.join("; ")}`);
  process.exitCode = 1;
} else {
  console.log("flat: every measure stayed within its tolerance after warm-up");
}

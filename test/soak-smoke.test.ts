/**
 * A tiny soak (fuzz/soak-run.ts; `npm run soak` is the long one): every kind of operation
 * runs and ends as expected (a fault, timeout or cancellation poisons and a restore
 * recovers), and RSS, fds, threads and child processes stay within their tolerances.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatStats } from "../fuzz/process-stats.js";
import { runSoak } from "../fuzz/soak-run.js";

test("soak smoke: 3000 mixed calls, restores and pool checkouts leave RSS, fds, threads and children flat", async () => {
  const report = await runSoak({ calls: 3000, samples: 10, seed: 7 });
  console.log(`last sample: ${formatStats(report.samples.at(-1)!)}`);
  const ops = new Set([...report.counts.keys()].map((k) => k.split(":")[0]));
  assert.deepEqual([...ops].sort(), ["abort", "async", "fault", "kill", "pool", "restore", "sync", "timeout"]);
  assert.deepEqual(report.leaks, []);
});

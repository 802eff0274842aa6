/**
 * The guest SDK's C library, compiled natively and checked against the host's by
 * guest/test/ (make -C guest/test): allocator, strings and printf (libc_host_test.c),
 * conversions, ctype, qsort, calendar and setjmp (libc_extra_host_test.c), and the libm,
 * 100,000 inputs per function within 1 ulp (libm_host_test.c).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { test } from "node:test";
import { repoRoot } from "./helpers.js";

test("the guest libc and libm match the host C library", () => {
  const run = spawnSync("make", ["-s", "-C", path.join(repoRoot, "guest/test")], { encoding: "utf8" });
  assert.equal(run.status, 0, `guest libc tests failed:\n${run.stdout}\n${run.stderr}`);
  const summaries = run.stdout.split("\n").filter((line) => /\bfailures\b/.test(line));
  assert.equal(summaries.length, 3, run.stdout);
  for (const line of summaries) assert.match(line, /\b0 failures\b/);
});

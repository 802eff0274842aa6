/**
 * The guest SDK's allocator, string and printf code, compiled natively and checked
 * against the host C library by guest/test/libc_host_test.c (make -C guest/test).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { test } from "node:test";
import { repoRoot } from "./helpers.js";

test("guest malloc, string and format routines match the host C library", () => {
  const run = spawnSync("make", ["-s", "-C", path.join(repoRoot, "guest/test")], { encoding: "utf8" });
  assert.equal(run.status, 0, `guest libc tests failed:\n${run.stdout}\n${run.stderr}`);
  assert.match(run.stdout, /\b0 failures\b/);
});

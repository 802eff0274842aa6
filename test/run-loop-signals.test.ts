/**
 * The run loop against what the OS can do to it (issue 11, items 13 and 14), on every backend:
 * - stray signals of the kind vmlet kicks a vCPU with (SIGRTMIN+5), sent by someone else
 *   while a synchronous call runs, neither stop the call nor make it or later calls hang;
 * - a deadline that cannot be armed (RLIMIT_SIGPENDING at 0, so timer_create fails) ends
 *   the call with a typed error instead of letting the guest run without its deadline.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import path from "node:path";
import { test } from "node:test";
import { SandboxBuilder } from "../src/index.js";
import { guestPath, repoRoot } from "./helpers.js";

/** glibc's SIGRTMIN is 34; native/vcpu_run.c kicks with SIGRTMIN + 5. */
const KICK_SIGNAL = 39;

/** Σ i² for i < n, mod 2^64: what the types guest's busy_sum returns. */
function busySum(n: number): bigint {
  const N = BigInt(n);
  return ((N - 1n) * N * (2n * N - 1n) / 6n) % 2n ** 64n;
}

test("stray kick signals during callSync do not end the call early or hang it and later calls", async () => {
  const sb = await new SandboxBuilder().guest(guestPath("types")).build();
  try {
    const n = 150_000_000;
    // A shell that sends 40 kick signals, 5 ms apart, starting at once, to this process.
    const sender = spawn("sh", ["-c", `for i in $(seq 40); do kill -${KICK_SIGNAL} ${process.pid} 2>/dev/null; sleep 0.005; done`], { stdio: "ignore" });
    const exited = new Promise<void>((resolve) => sender.on("exit", () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 20)); // the sender is running
    for (let round = 0; round < 4; round++) {
      assert.equal(sb.callSync("busy_sum", n, { timeoutMs: 60_000 }), busySum(n), `round ${round}`);
      assert.equal(sb.callSync("busy_sum", 1000), busySum(1000), "a call without a deadline");
    }
    await exited;
    assert.equal(sb.poisoned, undefined);
    assert.equal(await sb.call("busy_sum", 10_000, { timeoutMs: 60_000 }), busySum(10_000));
  } finally {
    sb.close();
  }
});

test("a deadline that cannot be armed (ulimit -i 0) fails the call with a typed error, never runs it unbounded", () => {
  const script = `
    import { SandboxBuilder } from ${JSON.stringify(path.join(repoRoot, "dist/src/index.js"))};
    const sb = await new SandboxBuilder().guest(${JSON.stringify(guestPath("demo"))}).build();
    const started = performance.now();
    try {
      sb.callSync("spin_forever", { timeoutMs: 200 });
      console.log(JSON.stringify({ code: "RETURNED" }));
    } catch (error) {
      console.log(JSON.stringify({ code: error.code, message: error.message, backend: sb.backend.name, ms: performance.now() - started }));
    }
    sb.close();
  `;
  const r = spawnSync("bash", ["-c", `ulimit -i 0 && exec "${process.execPath}" --input-type=module -e "$0"`, script], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
  const result = JSON.parse(r.stdout.trim().split("\n").pop()!) as { code: string; message: string; backend: string; ms: number };
  if (result.backend === "kvm") {
    // The KVM backend's deadline is a POSIX timer: refused, the call fails before the guest runs.
    assert.equal(result.code, "HYPERVISOR", result.message);
    assert.match(result.message, /deadline timer/);
  } else {
    // The process backend waits on a futex with a timeout: no timer to refuse, the deadline holds.
    assert.equal(result.code, "TIMEOUT", result.message);
  }
});

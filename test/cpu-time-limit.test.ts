/**
 * cpuTimeMs: a limit on the CPU time a guest call uses, beside the wall-clock timeoutMs.
 * A spinning guest is stopped with CPU_TIME_LIMIT (and the sandbox poisoned, like a
 * timeout); time the call spends waiting for an async host function does not count; the
 * option is validated wherever it can be given.
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { CpuTimeLimitError, defineHostFunction, InvalidConfigError, Sandbox, SandboxBuilder, SandboxPool, TimeoutError } from "../src/index.js";
import { guestPath, since } from "./helpers.js";

const MAX_TIMER_MS = 2 ** 31 - 1;

const logLine = defineHostFunction("log_line", ["string"], "void", () => undefined);

async function demo(onLog: (text: string) => void | Promise<void> = () => undefined): Promise<Sandbox> {
  return new SandboxBuilder().guest(guestPath("demo")).hostFunction("log_line", ["string"], "void", onLog).build();
}

for (const mode of ["callSync", "call"] as const) {
  test(`${mode}: a spinning guest stops with CPU_TIME_LIMIT after using its CPU time, and restore() brings it back`, async () => {
    const sb = await demo();
    try {
      const base = sb.snapshot();
      const started = performance.now();
      const run = (): unknown => (mode === "callSync" ? sb.callSync("spin_forever", { cpuTimeMs: 30 }) : sb.call("spin_forever", { cpuTimeMs: 30 }));
      await assert.rejects(async () => run(), (error: unknown) => {
        assert.ok(error instanceof CpuTimeLimitError, String(error));
        assert.equal(error.code, "CPU_TIME_LIMIT");
        assert.equal(error.cpuTimeMs, 30);
        return true;
      });
      // CPU time cannot pass faster than the clock: a limit that fired early would show here.
      assert.ok(since(started) >= 29, `stopped after ${since(started).toFixed(1)} ms of wall-clock time`);
      assert.equal(sb.poisoned?.code, "CPU_TIME_LIMIT");
      sb.restore(base);
      assert.equal(sb.callSync("add", 2, 3), 5);
    } finally {
      sb.close();
    }
  });
}

test("time spent waiting for an async host function does not count against cpuTimeMs (it does against timeoutMs)", async () => {
  const sb = await demo(() => sleep(25));
  try {
    const base = sb.snapshot();
    // greet makes 3 host calls to log_line: about 75 ms of waiting, a few µs of guest CPU.
    assert.equal(await sb.call("greet", "x", 3, { cpuTimeMs: 20 }), 3);
    await assert.rejects(sb.call("greet", "x", 3, { timeoutMs: 20 }), TimeoutError);
    sb.restore(base);
    assert.equal(await sb.call("greet", "y", 2, { cpuTimeMs: 20, timeoutMs: 5000 }), 2);
  } finally {
    sb.close();
  }
});

test("with both limits the one reached first wins", async () => {
  const sb = await demo();
  try {
    const base = sb.snapshot();
    await assert.rejects(sb.call("spin_forever", { timeoutMs: 40, cpuTimeMs: 60_000 }), TimeoutError);
    sb.restore(base);
    await assert.rejects(sb.call("spin_forever", { timeoutMs: 60_000, cpuTimeMs: 40 }), CpuTimeLimitError);
    sb.restore(base);
    assert.equal(sb.callSync("add", 1, 1, { cpuTimeMs: 1000 }), 2, "a call under its limit returns normally");
  } finally {
    sb.close();
  }
});

test("a sandbox's default cpuTimeMs (builder, fromSnapshot, pool) applies to every call; a call's own option overrides it", async () => {
  const built = await new SandboxBuilder().guest(guestPath("demo")).hostFunction("log_line", ["string"], "void", () => undefined).cpuTimeMs(30).build();
  const snapshot = built.snapshot();
  try {
    await assert.rejects(built.call("spin_forever"), (e: unknown) => e instanceof CpuTimeLimitError && e.cpuTimeMs === 30);
    built.restore(snapshot);
    await assert.rejects(built.call("spin_forever", { cpuTimeMs: 45 }), (e: unknown) => e instanceof CpuTimeLimitError && e.cpuTimeMs === 45);
  } finally {
    built.close();
  }
  const resumed = await Sandbox.fromSnapshot(snapshot, { cpuTimeMs: 35, hostFunctions: [logLine] });
  try {
    assert.throws(() => resumed.callSync("spin_forever"), (e: unknown) => e instanceof CpuTimeLimitError && e.cpuTimeMs === 35);
  } finally {
    resumed.close();
  }
  const pool = new SandboxPool(snapshot, { size: 1, cpuTimeMs: 40, hostFunctions: [logLine] });
  try {
    await assert.rejects(pool.run((sb) => sb.call("spin_forever")), (e: unknown) => e instanceof CpuTimeLimitError && e.cpuTimeMs === 40);
    assert.equal(await pool.run((sb) => sb.call("add", 4, 5)), 9, "the pool's next run gets a good sandbox");
  } finally {
    await pool.close();
  }
});

test("cpuTimeMs is validated wherever it is given, with an error naming it", async () => {
  const sb = await demo();
  const snapshot = sb.snapshot();
  try {
    for (const bad of [0, -1, Number.NaN, Infinity, MAX_TIMER_MS + 1, "5", null]) {
      assert.throws(() => sb.callSync("add", 1, 2, { cpuTimeMs: bad as number }), (e: unknown) => e instanceof InvalidConfigError && /cpuTimeMs/.test(e.message), String(bad));
      await assert.rejects(sb.call("add", 1, 2, { cpuTimeMs: bad as number }), (e: unknown) => e instanceof InvalidConfigError && /cpuTimeMs/.test(e.message), String(bad));
      await assert.rejects(Sandbox.fromSnapshot(snapshot, { cpuTimeMs: bad as number, hostFunctions: [logLine] }), /cpuTimeMs/);
      await assert.rejects(new SandboxBuilder().guest(guestPath("demo")).cpuTimeMs(bad as number).build(), /cpuTimeMs/);
      assert.throws(() => new SandboxPool(snapshot, { cpuTimeMs: bad as number, hostFunctions: [logLine] }), /cpuTimeMs/);
    }
    assert.equal(sb.callSync("add", 1, 2, { cpuTimeMs: MAX_TIMER_MS }), 3, "the largest limit timers can express is accepted");
  } finally {
    sb.close();
  }
});

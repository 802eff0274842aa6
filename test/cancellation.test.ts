/**
 * Stopping guest calls: per-call and default timeouts, AbortSignal, kill() from a
 * timer or a host function; the event loop stays free during async calls; many
 * sandboxes run at once; one sandbox runs one call at a time. Timing asserts are
 * deliberately loose (a stop must come, and well within timeout + 500 ms).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import {
  CancelledError, PoisonedError, SandboxBuilder, SandboxBusyError, TimeoutError, type Sandbox,
} from "../src/index.js";
import { guestPath, since } from "./helpers.js";

/** How late a stop may come; generous for loaded CI machines. */
const SLACK_MS = 500;

function misbehave(configure: (b: SandboxBuilder) => SandboxBuilder = (b) => b): Promise<Sandbox> {
  return configure(new SandboxBuilder().guest(guestPath("misbehave"))).build();
}

/** Runs `body` with a fresh sandbox and closes it afterwards. */
async function withSandbox(configure: (b: SandboxBuilder) => SandboxBuilder, body: (sb: Sandbox) => Promise<void>): Promise<void> {
  const sb = await misbehave(configure);
  try {
    await body(sb);
  } finally {
    sb.close();
  }
}

function isTimeout(expectedMs: number): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof TimeoutError, `expected TimeoutError, got ${String(err)}`);
    assert.equal(err.code, "TIMEOUT");
    assert.equal(err.timeoutMs, expectedMs);
    return true;
  };
}

function isCancelled(err: unknown): boolean {
  assert.ok(err instanceof CancelledError, `expected CancelledError, got ${String(err)}`);
  assert.equal(err.code, "CANCELLED");
  return true;
}

/** The sandbox is poisoned by an error of `code`, and the next call says so. */
function assertPoisonedBy(sb: Sandbox, code: string): void {
  assert.equal(sb.poisoned?.code, code);
  assert.throws(() => sb.callSync("ok"), (err: unknown) => err instanceof PoisonedError && err.cause === sb.poisoned);
}

describe("timeouts", () => {
  test("a per-call timeoutMs stops spin_forever in call()", async () => {
    await withSandbox((b) => b, async (sb) => {
      const start = performance.now();
      await assert.rejects(sb.call("spin_forever", { timeoutMs: 100 }), isTimeout(100));
      const elapsed = since(start);
      assert.ok(elapsed >= 90, `stopped after ${elapsed.toFixed(1)} ms, before the deadline`);
      assert.ok(elapsed < 100 + SLACK_MS, `stopped after ${elapsed.toFixed(1)} ms`);
      assertPoisonedBy(sb, "TIMEOUT");
    });
  });

  test("a per-call timeoutMs stops spin_forever in callSync()", async () => {
    await withSandbox((b) => b, async (sb) => {
      const start = performance.now();
      assert.throws(() => sb.callSync("spin_forever", { timeoutMs: 100 }), isTimeout(100));
      const elapsed = since(start);
      assert.ok(elapsed >= 90, `stopped after ${elapsed.toFixed(1)} ms, before the deadline`);
      assert.ok(elapsed < 100 + SLACK_MS, `stopped after ${elapsed.toFixed(1)} ms`);
      assertPoisonedBy(sb, "TIMEOUT");
    });
  });

  test("the builder's timeoutMs is the default for every call", async () => {
    await withSandbox((b) => b.timeoutMs(100), async (sb) => {
      const start = performance.now();
      await assert.rejects(sb.call("spin_forever"), isTimeout(100));
      assert.ok(since(start) < 100 + SLACK_MS);
    });
    await withSandbox((b) => b.timeoutMs(100), async (sb) => {
      const start = performance.now();
      assert.throws(() => sb.callSync("spin_forever"), isTimeout(100));
      assert.ok(since(start) < 100 + SLACK_MS);
    });
  });

  test("a per-call timeoutMs overrides the builder's default", async () => {
    await withSandbox((b) => b.timeoutMs(50), async (sb) => {
      const start = performance.now();
      await assert.rejects(sb.call("spin_forever", { timeoutMs: 300 }), isTimeout(300));
      const elapsed = since(start);
      assert.ok(elapsed >= 270 && elapsed < 300 + SLACK_MS, `stopped after ${elapsed.toFixed(1)} ms`);
    });
  });

  test("calls that finish in time are unaffected, and their deadline does not fire into a later call", async () => {
    await withSandbox((b) => b.timeoutMs(30), async (sb) => {
      for (let i = 0; i < 20; i++) {
        assert.equal(sb.callSync("ok"), 1);
        assert.equal(await sb.call("ok"), 1);
      }
      await sleep(60); // past every earlier call's deadline
      assert.equal(sb.callSync("ok"), 1);
      assert.equal(await sb.call("ok"), 1);
      assert.equal(sb.poisoned, undefined);
    });
  });

  test("an invalid timeoutMs is rejected before the guest runs", async () => {
    await withSandbox((b) => b, async (sb) => {
      for (const timeoutMs of [0, -1, NaN, Infinity]) {
        assert.throws(() => sb.callSync("ok", { timeoutMs }), (err: unknown) => (err as { code?: string }).code === "INVALID_CONFIG");
      }
      assert.equal(sb.poisoned, undefined);
      assert.equal(sb.callSync("ok"), 1);
    });
  });
});

describe("AbortSignal", () => {
  test("aborting after 20 ms stops the call with CancelledError", async () => {
    await withSandbox((b) => b.timeoutMs(10_000), async (sb) => {
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error("user gave up")), 20);
      const start = performance.now();
      await assert.rejects(sb.call("spin_forever", { signal: controller.signal }), isCancelled);
      const elapsed = since(start);
      assert.ok(elapsed >= 15 && elapsed < 20 + SLACK_MS, `stopped after ${elapsed.toFixed(1)} ms`);
      assertPoisonedBy(sb, "CANCELLED");
    });
  });

  test("AbortSignal.timeout() works as a signal too", async () => {
    await withSandbox((b) => b.timeoutMs(10_000), async (sb) => {
      await assert.rejects(sb.call("spin_forever", { signal: AbortSignal.timeout(30) }), isCancelled);
    });
  });

  test("an already-aborted signal is CancelledError without running the guest, and does not poison", async () => {
    let ticks = 0;
    await withSandbox((b) => b.timeoutMs(10_000).hostFunction("tick", [], "void", () => void ticks++), async (sb) => {
      const reason = new Error("aborted early");
      await assert.rejects(sb.call("host_then_spin", { signal: AbortSignal.abort(reason) }), (err: unknown) => {
        isCancelled(err);
        assert.equal((err as Error).cause, reason);
        return true;
      });
      assert.equal(ticks, 0, "the guest never ran");
      assert.equal(sb.poisoned, undefined);
      assert.equal(await sb.call("ok"), 1);
    });
  });

  test("a signal that never fires leaves the call alone", async () => {
    await withSandbox((b) => b, async (sb) => {
      const controller = new AbortController();
      assert.equal(await sb.call("ok", { signal: controller.signal }), 1);
      controller.abort(); // after the call: nothing to cancel
      assert.equal(await sb.call("ok"), 1);
      assert.equal(sb.poisoned, undefined);
    });
  });
});

describe("kill()", () => {
  test("kill() from a timer during call() is CancelledError", async () => {
    await withSandbox((b) => b.timeoutMs(10_000), async (sb) => {
      let killed: boolean | undefined;
      setTimeout(() => (killed = sb.kill()), 20);
      const start = performance.now();
      await assert.rejects(sb.call("spin_forever"), isCancelled);
      assert.equal(killed, true);
      assert.ok(since(start) < 20 + SLACK_MS);
      assertPoisonedBy(sb, "CANCELLED");
    });
  });

  test("kill() from inside a host function during callSync() is CancelledError", async () => {
    let killed: boolean | undefined;
    let sb: Sandbox | undefined;
    sb = await misbehave((b) => b.timeoutMs(10_000).hostFunction("tick", [], "void", () => void (killed = sb!.kill())));
    try {
      const start = performance.now();
      assert.throws(() => sb!.callSync("host_then_spin"), isCancelled);
      assert.equal(killed, true);
      assert.ok(since(start) < SLACK_MS);
      assertPoisonedBy(sb, "CANCELLED");
    } finally {
      sb.close();
    }
  });

  test("kill() from inside a host function during call() is CancelledError", async () => {
    let killed: boolean | undefined;
    let sb: Sandbox | undefined;
    sb = await misbehave((b) => b.timeoutMs(10_000).hostFunction("tick", [], "void", () => void (killed = sb!.kill())));
    try {
      await assert.rejects(sb.call("host_then_spin"), isCancelled);
      assert.equal(killed, true);
      assertPoisonedBy(sb, "CANCELLED");
    } finally {
      sb.close();
    }
  });

  test("kill() while call() awaits an async host function rejects at once, without waiting for it", async () => {
    let sb: Sandbox | undefined;
    let settled = false;
    sb = await misbehave((b) =>
      b.timeoutMs(10_000).hostFunction("tick", [], "void", async () => {
        await sleep(50);
        settled = true;
      }),
    );
    try {
      const pending = sb.call("host_then_spin");
      await sleep(10);
      assert.equal(sb.kill(), true);
      await assert.rejects(pending, isCancelled);
      assert.equal(settled, false, "the call ended before the host function's promise settled");
      assertPoisonedBy(sb, "CANCELLED");
    } finally {
      sb.close();
    }
  });

  /** Starts host_then_spin whose async tick() never settles; resolves with the call's outcome or "still pending" after `waitMs`. */
  async function neverSettlingHostCall(options: { timeoutMs?: number; kill?: boolean }, waitMs: number): Promise<unknown> {
    let sb: Sandbox | undefined;
    let entered!: () => void;
    const inHost = new Promise<void>((resolve) => (entered = resolve));
    sb = await misbehave((b) =>
      b.hostFunction("tick", [], "void", () => {
        entered();
        return new Promise<void>(() => {}); // never settles
      }),
    );
    const outcome = sb.call("host_then_spin", options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }).then(
      () => "resolved",
      (err: unknown) => err,
    );
    await inHost;
    if (options.kill) assert.equal(sb.kill(), true);
    const result = await Promise.race([outcome, sleep(waitMs).then(() => "still pending")]);
    if (result !== "still pending") sb.close();
    // Otherwise the sandbox stays busy and cannot be closed; it is released at exit.
    return result;
  }

  test(
    "timeoutMs ends a call() whose async host function never settles",
    async () => {
      const result = await neverSettlingHostCall({ timeoutMs: 100 }, 100 + SLACK_MS);
      assert.ok(result instanceof TimeoutError, `the call is ${String(result)}`);
    },
  );

  test(
    "kill() ends a call() whose async host function never settles",
    async () => {
      const result = await neverSettlingHostCall({ kill: true }, SLACK_MS);
      assert.ok(result instanceof CancelledError, `the call is ${String(result)}`);
    },
  );

  test("kill() when idle returns false and does not affect the next call", async () => {
    await withSandbox((b) => b.timeoutMs(10_000), async (sb) => {
      assert.equal(sb.kill(), false);
      assert.equal(sb.callSync("ok"), 1);
      assert.equal(sb.kill(), false);
      assert.equal(await sb.call("ok"), 1);
      assert.equal(sb.poisoned, undefined);
      sb.close();
      assert.throws(() => sb.kill(), { code: "SANDBOX_CLOSED" }, "every method of a closed sandbox refuses (issue 11: a closed sandbox touches nothing)");
    });
  });
});

describe("concurrency", () => {
  test("the event loop keeps running during an async spinning call", async () => {
    await withSandbox((b) => b, async (sb) => {
      let ticks = 0;
      const timer = setInterval(() => ticks++, 5);
      try {
        await assert.rejects(sb.call("spin_forever", { timeoutMs: 200 }), isTimeout(200));
      } finally {
        clearInterval(timer);
      }
      assert.ok(ticks >= 10, `the interval ran only ${ticks} times in 200 ms`);
    });
  });

  test("8 sandboxes running async calls at once all give correct results", async () => {
    const sandboxes = await Promise.all(
      Array.from({ length: 8 }, () => new SandboxBuilder().guest(guestPath("types")).timeoutMs(30_000).build()),
    );
    try {
      const ns = sandboxes.map((_, i) => 2_000_000 + i * 1_000);
      const results = await Promise.all(sandboxes.map((sb, i) => sb.call("busy_sum", ns[i]!)));
      results.forEach((got, i) => {
        const n = BigInt(ns[i]!);
        const expected = BigInt.asUintN(64, ((n - 1n) * n * (2n * n - 1n)) / 6n); // sum of i*i for i < n
        assert.equal(got, expected, `sandbox ${i}`);
      });
      const echoes = await Promise.all(sandboxes.map((sb, i) => sb.call("echo_string", `sandbox ${i}`)));
      assert.deepEqual(echoes, sandboxes.map((_, i) => `sandbox ${i}`));
    } finally {
      for (const sb of sandboxes) sb.close();
    }
  });

  test("8 sandboxes spinning at once all time out, in parallel", async () => {
    const sandboxes = await Promise.all(Array.from({ length: 8 }, () => misbehave()));
    try {
      const start = performance.now();
      const outcomes = await Promise.allSettled(sandboxes.map((sb) => sb.call("spin_forever", { timeoutMs: 150 })));
      for (const o of outcomes) {
        assert.equal(o.status, "rejected");
        isTimeout(150)((o as PromiseRejectedResult).reason);
      }
      assert.ok(since(start) < 150 + SLACK_MS, `took ${since(start).toFixed(1)} ms`);
    } finally {
      for (const sb of sandboxes) sb.close();
    }
  });

  test("a second call on a busy sandbox is SandboxBusyError and does not disturb the first", async () => {
    await withSandbox((b) => b, async (sb) => {
      const first = sb.call("spin_forever", { timeoutMs: 200 });
      assert.throws(() => sb.callSync("ok"), SandboxBusyError);
      await assert.rejects(sb.call("ok"), (err: unknown) => err instanceof SandboxBusyError && err.code === "SANDBOX_BUSY");
      await assert.rejects(first, isTimeout(200));
      assertPoisonedBy(sb, "TIMEOUT"); // by the first call's timeout, not the busy errors
    });
  });

  test("close() during a call cancels it and frees the sandbox once the call has stopped", async () => {
    const sb = await new SandboxBuilder().guest(guestPath("misbehave")).build();
    const running = sb.call("spin_forever");
    await sleep(10);
    sb.close();
    assert.throws(() => sb.callSync("ok"), (err: unknown) => (err as { code?: string }).code === "SANDBOX_CLOSED");
    await assert.rejects(running, CancelledError);
    assert.equal(sb.closed, true);
  });

  test("a busy sandbox accepts the next call once the first finishes", async () => {
    const sb = await new SandboxBuilder().guest(guestPath("types")).build();
    try {
      const first = sb.call("busy_sum", 1_000_000);
      await assert.rejects(sb.call("echo_i32", 1), SandboxBusyError);
      assert.equal(typeof (await first), "bigint");
      assert.equal(await sb.call("echo_i32", 1), 1);
    } finally {
      sb.close();
    }
  });
});

/**
 * SandboxPool: every run sees the snapshot's state; poisoned sandboxes are restored
 * or rebuilt and never handed out dirty; waiters are served FIFO with an optional
 * acquire timeout; close() waits for in-flight runs and frees every VM; stats count
 * what happened; pools of different snapshots coexist; options are validated.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  HostFunctionsIncompatibleError, InvalidConfigError, PoolClosedError, PoolTimeoutError, SandboxBuilder, SandboxPool,
  VmletError, type HostFunctionDefinition, type Sandbox, type SandboxPoolOptions, type Snapshot,
} from "../src/index.js";
import { guestPath } from "./helpers.js";

const addOne = { name: "host_add_one", params: ["i32"], returns: "i32", impl: (x: number) => x + 1 } as unknown as HostFunctionDefinition;
const hostFunctions = [addOne];
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A snapshot of guests/snapshot.elf with its counter bumped to `counter`. */
async function counterSnapshot(counter: number): Promise<Snapshot> {
  const sb = await new SandboxBuilder().guest(guestPath("snapshot")).maxGuestLogLevel("warn").hostFunction("host_add_one", ["i32"], "i32", (x) => x + 1).build();
  try {
    for (let i = 0; i < counter; i++) sb.callSync("bump");
    return sb.snapshot();
  } finally {
    sb.close();
  }
}

async function demoSnapshot(): Promise<Snapshot> {
  const sb = await new SandboxBuilder().guest(guestPath("demo")).maxGuestLogLevel("warn").build();
  try {
    return sb.snapshot();
  } finally {
    sb.close();
  }
}

/** Runs `body` with a pool and always closes it. */
async function withPool(snapshot: Snapshot, options: SandboxPoolOptions, body: (pool: SandboxPool) => Promise<void>): Promise<void> {
  const pool = new SandboxPool(snapshot, { hostFunctions, ...options });
  try {
    await body(pool);
  } finally {
    await pool.close();
  }
}

/** What every sandbox handed out must look like: open, unpoisoned, counter at the snapshot's value. */
function assertClean(sb: Sandbox, counter: number): void {
  assert.equal(sb.closed, false, "handed out a closed sandbox");
  assert.equal(sb.poisoned, undefined, "handed out a poisoned sandbox");
  assert.equal(sb.callSync("get_counter"), counter, "handed out a sandbox with state from an earlier run");
  assert.equal(sb.callSync("scratch_sum"), 0, "scratch pages from an earlier run");
}

/** Waits until every released sandbox is restored (or rebuilt) and back in the pool. */
async function settled(pool: SandboxPool): Promise<void> {
  const deadline = performance.now() + 5000;
  while (pool.stats().restoring > 0) {
    assert.ok(performance.now() < deadline, "the pool did not settle within 5 s");
    await sleep(1);
  }
}

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<unknown> {
  let caught: unknown;
  await promise.then(
    () => assert.fail(`expected a rejection with ${code}`),
    (error: unknown) => (caught = error),
  );
  assert.ok(caught instanceof VmletError, `expected a VmletError, got ${String(caught)}`);
  assert.equal(caught.code, code);
  return caught;
}

describe("clean state", () => {
  test("a counter bumped in one run is back at the snapshot's value in the next", async () => {
    const snap = await counterSnapshot(3);
    await withPool(snap, { size: 2 }, async (pool) => {
      for (let i = 0; i < 20; i++) {
        assert.equal(await pool.run((sb) => {
          assertClean(sb, 3);
          sb.callSync("touch_pages", 8, 1);
          sb.callSync("bump");
          return sb.callSync("bump");
        }), 5);
      }
      const concurrent = await Promise.all(Array.from({ length: 12 }, (_, i) => pool.run(async (sb) => {
        assertClean(sb, 3);
        await sleep(i % 3);
        return (await sb.call("bump")) as number + (await sb.call("call_host", i) as number);
      })));
      assert.deepEqual(concurrent, Array.from({ length: 12 }, (_, i) => 4 + i + 1));
    });
  });

  test("the result or the error of fn is passed through; non-poisoning errors leave the pool usable", async () => {
    const snap = await counterSnapshot(1);
    await withPool(snap, { size: 1 }, async (pool) => {
      assert.equal(await pool.run(() => "plain value"), "plain value");
      await assert.rejects(pool.run(() => {
        throw new Error("thrown by fn");
      }), /thrown by fn/);
      await rejectsWithCode(pool.run((sb) => sb.call("no_such_function")), "UNKNOWN_FUNCTION");
      assert.equal(await pool.run((sb) => sb.callSync("get_counter")), 1);
      assert.equal(pool.stats().poisonedRecycled, 0);
    });
  });

  test("a guest log level changed by fn is reset for the next run", async () => {
    const snap = await counterSnapshot(0);
    await withPool(snap, { size: 1, maxGuestLogLevel: "error" }, async (pool) => {
      await pool.run((sb) => {
        assert.equal(sb.maxGuestLogLevel, "error");
        sb.setMaxGuestLogLevel("trace");
      });
      await pool.run((sb) => assert.equal(sb.maxGuestLogLevel, "error"));
    });
  });
});

describe("poisoned sandboxes", () => {
  test("a fault, a timeout and a kill are restored; the next run gets a clean, unpoisoned sandbox", async () => {
    const snap = await counterSnapshot(3);
    await withPool(snap, { size: 1, timeoutMs: 50 }, async (pool) => {
      await rejectsWithCode(pool.run((sb) => sb.callSync("null_write")), "GUEST_FAULT");
      await pool.run((sb) => assertClean(sb, 3));
      await rejectsWithCode(pool.run((sb) => sb.call("spin_forever")), "TIMEOUT");
      await pool.run((sb) => assertClean(sb, 3));
      await rejectsWithCode(pool.run((sb) => {
        setTimeout(() => sb.kill(), 10);
        return sb.call("spin_forever", { timeoutMs: 10_000 });
      }), "CANCELLED");
      await pool.run((sb) => assertClean(sb, 3));
      await rejectsWithCode(pool.run((sb) => sb.callSync("abort_now")), "GUEST_ABORTED");
      await pool.run((sb) => assertClean(sb, 3));
      const s = pool.stats();
      assert.equal(s.created, 1, "restored, not rebuilt");
      assert.equal(s.poisonedRecycled, 4);
      assert.equal(s.recycled, 0);
    });
  });

  test("a sandbox whose restore fails (closed or still busy) is closed and rebuilt", async () => {
    const snap = await counterSnapshot(2);
    await withPool(snap, { size: 1, timeoutMs: 1000 }, async (pool) => {
      let first: Sandbox | undefined;
      await pool.run((sb) => {
        first = sb;
        sb.callSync("bump");
        sb.close(); // restore() now throws SANDBOX_CLOSED
      });
      const second = await pool.run((sb) => {
        assert.notEqual(sb, first);
        assertClean(sb, 2);
        return sb;
      });
      // fn returns while a call still runs: restore() throws SANDBOX_BUSY; the call is killed.
      let leftRunning: Promise<unknown> | undefined;
      await pool.run((sb) => {
        leftRunning = sb.call("spin_forever").catch((error: unknown) => error);
      });
      const third = await pool.run((sb) => {
        assert.notEqual(sb, second);
        assertClean(sb, 2);
        return sb;
      });
      assert.equal(((await leftRunning) as VmletError).code, "CANCELLED");
      assert.equal(second.closed, true);
      // Poisoned, then closed by fn: counted as recycled and as poisoned-recycled.
      await pool.run(async (sb) => {
        await sb.call("spin_forever", { timeoutMs: 10 }).catch(() => undefined);
        assert.ok(sb.poisoned);
        sb.close();
      });
      await pool.run((sb) => {
        assert.notEqual(sb, third);
        assertClean(sb, 2);
      });
      const s = pool.stats();
      assert.equal(s.recycled, 3);
      assert.equal(s.created, 4);
      assert.equal(s.poisonedRecycled, 1);
    });
  });

  test("under concurrent load with failures, no run ever gets a dirty or poisoned sandbox", async () => {
    const snap = await counterSnapshot(7);
    await withPool(snap, { size: 3, timeoutMs: 30 }, async (pool) => {
      const kinds = ["ok", "fault", "timeout", "ok", "abort", "close"] as const;
      const outcomes = await Promise.all(Array.from({ length: 60 }, (_, i) => pool.run(async (sb) => {
        assertClean(sb, 7);
        sb.callSync("touch_pages", 4, 9);
        sb.callSync("bump");
        switch (kinds[i % kinds.length]!) {
          case "ok":
            return (await sb.call("bump")) as number;
          case "fault":
            return sb.call("null_write");
          case "timeout":
            return sb.call("spin_forever");
          case "abort":
            return sb.callSync("abort_now");
          case "close":
            sb.close();
            return "closed";
        }
      }).then((v) => v, (error: unknown) => (error as VmletError).code)));
      assert.deepEqual(outcomes, Array.from({ length: 60 }, (_, i) => ({ ok: 9, fault: "GUEST_FAULT", timeout: "TIMEOUT", abort: "GUEST_ABORTED", close: "closed" })[kinds[i % kinds.length]!]));
      await settled(pool);
      const s = pool.stats();
      assert.equal(s.poisonedRecycled, 30);
      assert.equal(s.recycled, 10);
      assert.ok(s.created <= 3 + 10, `created ${s.created}`);
      assert.equal(s.busy, 0);
      assert.equal(s.waiting, 0);
    });
  });
});

describe("waiting", () => {
  test("with size 1, runs are served in the order they were made", async () => {
    const snap = await counterSnapshot(0);
    await withPool(snap, { size: 1 }, async (pool) => {
      const order: number[] = [];
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const runs = Array.from({ length: 8 }, (_, i) => pool.run(async (sb) => {
        order.push(i);
        assertClean(sb, 0);
        sb.callSync("bump");
        await (i === 0 ? gate : sleep(1));
        return i;
      }));
      while (pool.stats().busy === 0) await sleep(1);
      await sleep(20);
      assert.equal(pool.stats().waiting, 7);
      assert.equal(pool.stats().busy, 1);
      release();
      assert.deepEqual(await Promise.all(runs), [0, 1, 2, 3, 4, 5, 6, 7]);
      assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7]);
      const s = pool.stats();
      assert.equal(s.created, 1);
      assert.equal(s.waiting, 0);
      assert.ok(s.waitMsP99 >= 15, `the waiters waited while the first run held the sandbox: p99 ${s.waitMsP99}`);
    });
  });

  test("acquireTimeoutMs rejects a waiting run with PoolTimeoutError, fn never runs, and the line moves on", async () => {
    const snap = await counterSnapshot(0);
    await withPool(snap, { size: 1, acquireTimeoutMs: 30 }, async (pool) => {
      const holder = pool.run(() => sleep(400).then(() => "held"));
      let ranLate = false;
      const started = performance.now();
      const error = await rejectsWithCode(pool.run(() => {
        ranLate = true;
      }), "POOL_TIMEOUT");
      const waited = performance.now() - started;
      assert.ok(error instanceof PoolTimeoutError);
      assert.equal(error.acquireTimeoutMs, 30);
      assert.match(error.message, /acquireTimeoutMs 30 ms/);
      assert.ok(waited >= 25 && waited < 350, `rejected after ${waited.toFixed(1)} ms`);
      assert.equal(pool.stats().waiting, 0);
      assert.equal(await holder, "held");
      assert.equal(ranLate, false);
      assert.equal(await pool.run((sb) => sb.callSync("bump")), 1);
    });
  });
});

describe("close()", () => {
  test("waits for in-flight runs, rejects waiting and later runs with PoolClosedError, and frees every VM", async () => {
    const snap = await counterSnapshot(0);
    const pool = new SandboxPool(snap, { size: 2, hostFunctions });
    const handedOut: Sandbox[] = [];
    const events: string[] = [];
    const inFlight = [0, 1].map((i) => pool.run(async (sb) => {
      handedOut.push(sb);
      await sleep(40);
      events.push(`run ${i} done`);
      return sb.callSync("bump");
    }));
    const waiting = pool.run(() => assert.fail("a waiting run must not start after close()"));
    await sleep(5);
    assert.equal(pool.stats().busy, 2);
    const closing = pool.close();
    assert.equal(pool.close(), closing, "close() is idempotent");
    assert.equal(pool.closed, true);
    const closed = closing.then(() => events.push("closed"));
    const waitingError = await rejectsWithCode(waiting, "POOL_CLOSED");
    assert.ok(waitingError instanceof PoolClosedError);
    await rejectsWithCode(pool.run(() => 1), "POOL_CLOSED");
    assert.deepEqual(await Promise.all(inFlight), [1, 1], "in-flight runs finish normally");
    await closed;
    assert.deepEqual(events, ["run 0 done", "run 1 done", "closed"]);
    assert.equal(handedOut.length, 2);
    for (const sb of handedOut) assert.equal(sb.closed, true, "close() frees every VM");
    const s = pool.stats();
    assert.equal(s.idle + s.busy + s.restoring + s.waiting, 0);
    await rejectsWithCode(pool.run(() => 1), "POOL_CLOSED");
  });

  test("close() of an idle pool closes its idle sandboxes at once; of a fresh pool it creates none", async () => {
    const snap = await counterSnapshot(0);
    const fresh = new SandboxPool(snap, { size: 4, hostFunctions });
    await fresh.close();
    assert.equal(fresh.stats().created, 0);
    const pool = new SandboxPool(snap, { size: 4, hostFunctions });
    const sandboxes = await Promise.all([0, 1, 2].map(() => pool.run(async (sb) => {
      await sleep(5);
      return sb;
    })));
    await settled(pool);
    assert.equal(pool.stats().idle, 3);
    await pool.close();
    for (const sb of sandboxes) assert.equal(sb.closed, true);
    assert.equal(pool.stats().idle, 0);
  });
});

describe("stats()", () => {
  test("counts creations, restores, busy, idle and waiting", async () => {
    const snap = await counterSnapshot(0);
    await withPool(snap, { size: 2, timeoutMs: 50 }, async (pool) => {
      assert.deepEqual(pool.stats(), {
        size: 2, idle: 0, busy: 0, restoring: 0, created: 0, restored: 0, recycled: 0, poisonedRecycled: 0, waiting: 0, waitMsP50: 0, waitMsP99: 0,
      });
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const held = [0, 1, 2].map(() => pool.run(() => gate));
      await sleep(5);
      let s = pool.stats();
      assert.equal(s.busy, 2);
      assert.equal(s.waiting, 1);
      assert.equal(s.created, 2, "lazily created up to size, no more");
      release();
      await Promise.all(held);
      await settled(pool);
      s = pool.stats();
      assert.equal(s.busy, 0);
      assert.equal(s.idle, 2);
      assert.equal(s.restoring, 0);
      assert.equal(s.restored, 3);
      assert.equal(s.created, 2);
      // Sequential runs reuse one warm sandbox rather than creating more.
      for (let i = 0; i < 10; i++) await pool.run((sb) => sb.callSync("bump"));
      await rejectsWithCode(pool.run((sb) => sb.call("spin_forever")), "TIMEOUT");
      await settled(pool);
      s = pool.stats();
      assert.equal(s.created, 2);
      assert.equal(s.restored, 14);
      assert.equal(s.poisonedRecycled, 1);
      assert.equal(s.recycled, 0);
      assert.ok(s.waitMsP50 >= 0 && s.waitMsP99 >= s.waitMsP50);
    });
  });

  test("sandboxes are created lazily: a pool that never runs creates none", async () => {
    const snap = await counterSnapshot(0);
    await withPool(snap, { size: 8 }, async (pool) => {
      assert.equal(pool.stats().created, 0);
      await pool.run(() => undefined);
      assert.equal(pool.stats().created, 1);
    });
  });
});

describe("several pools", () => {
  test("pools of different snapshots (two states of one guest, and another guest) coexist", async () => {
    const [three, ten, demo] = await Promise.all([counterSnapshot(3), counterSnapshot(10), demoSnapshot()]);
    const a = new SandboxPool(three, { size: 2, hostFunctions });
    const b = new SandboxPool(ten, { size: 2, hostFunctions });
    const c = new SandboxPool(demo, { size: 2 });
    try {
      const results = await Promise.all(Array.from({ length: 30 }, (_, i) => {
        switch (i % 3) {
          case 0:
            return a.run(async (sb) => (await sb.call("bump")) as number);
          case 1:
            return b.run(async (sb) => (await sb.call("bump")) as number);
          default:
            return c.run(async (sb) => (await sb.call("add", i, 1)) as number);
        }
      }));
      assert.deepEqual(results, Array.from({ length: 30 }, (_, i) => [4, 11, i + 1][i % 3]));
      assert.equal(await c.run((sb) => sb.callSync("echo", "demo")), "demo");
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
  });
});

describe("options", () => {
  test("invalid or unknown options are InvalidConfigError naming the option", async () => {
    const snap = await counterSnapshot(0);
    const bad: Array<[unknown, RegExp]> = [
      [{ size: 0, hostFunctions }, /size must be an integer from 1 to 1024/],
      [{ size: 2.5, hostFunctions }, /size/],
      [{ size: "4", hostFunctions }, /size/],
      [{ size: 2, hostFunctions, acquireTimeoutMs: -1 }, /acquireTimeoutMs/],
      [{ size: 2, hostFunctions, timeoutMs: Number.NaN }, /timeoutMs/],
      [{ size: 2, hostFunctions, maxGuestLogLevel: "loud" }, /maxGuestLogLevel/],
      [{ size: 2, hostFunctions, guestLogger: "stderr" }, /guestLogger/],
      [{ size: 2, hostFunctions: "none" }, /hostFunctions/],
      [{ size: 2, hostFunctions, timeout: 5 }, /unknown SandboxPool option "timeout"/],
      [{ size: 2, hostFunctions, heapSize: 1 << 20 }, /unknown SandboxPool option "heapSize"/],
      ["8", /options must be an object/],
    ];
    for (const [options, message] of bad) {
      assert.throws(() => new SandboxPool(snap, options as SandboxPoolOptions), (error: unknown) => error instanceof InvalidConfigError && message.test(error.message), JSON.stringify(options));
    }
    assert.throws(() => new SandboxPool({} as Snapshot, { size: 1 }), InvalidConfigError);
    assert.throws(() => new SandboxPool(snap, { size: 1 }), HostFunctionsIncompatibleError, "the snapshot needs host_add_one");
    const pool = new SandboxPool(snap, { hostFunctions });
    try {
      assert.ok(pool.size >= 1, "size defaults to the number of CPUs");
      await rejectsWithCode(pool.run("bump" as unknown as () => void), "INVALID_CONFIG");
    } finally {
      await pool.close();
    }
  });
});

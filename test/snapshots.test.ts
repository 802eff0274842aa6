/**
 * In-memory snapshots: state round trips, restore after every kind of failure, restore
 * cost ∝ dirty pages (counted, not timed), host-function and config rules, log level
 * and entropy after load, and many sandboxes from one snapshot staying isolated.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  HostFunctionsIncompatibleError, InvalidConfigError, PoisonedError, Sandbox, SnapshotMismatchError,
  type GuestLogRecord, type HostFunctionDefinition, type Snapshot,
} from "../src/index.js";

import { addOne, assertPreparedState, buildSnapshotGuest, prepared } from "./snapshot-guest.js";

const build = buildSnapshotGuest;
const assertSnapshotState = assertPreparedState;

describe("state round trips", () => {
  test("restore brings back memory, heap and FPU state after changes", async () => {
    const { sb, snap } = await prepared();
    try {
      const roundedDown = sb.callSync("third") as number;
      sb.callSync("bump");
      sb.callSync("set_value", -1);
      sb.callSync("heap_fill", 100, 9);
      sb.callSync("set_rounding", 2); // round toward +∞
      sb.callSync("touch_pages", 10, 5);
      assert.notEqual(sb.callSync("third"), roundedDown, "the rounding mode changed the result");
      sb.restore(snap);
      assertSnapshotState(sb);
      assert.equal(sb.callSync("third"), roundedDown);
    } finally {
      sb.close();
    }
  });

  test("a sandbox from the snapshot starts in exactly the snapshot's state", async () => {
    const { sb, snap } = await prepared();
    const copy = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
    try {
      assertSnapshotState(copy);
      assert.equal(copy.callSync("call_host", 41), 42, "host calls work after load");
      assert.deepEqual(copy.functions, sb.functions);
    } finally {
      copy.close();
      sb.close();
    }
  });

  test("a snapshot of an unchanged sandbox is the same snapshot; a call makes a new one", async () => {
    const { sb, snap } = await prepared();
    try {
      assert.equal(sb.snapshot(), snap);
      sb.callSync("bump");
      const next = sb.snapshot();
      assert.notEqual(next, snap);
      assert.equal(next.generation, snap.generation + 1);
      sb.restore(snap);
      assert.equal(sb.callSync("get_counter"), 3);
      sb.restore(next);
      assert.equal(sb.callSync("get_counter"), 4, "a second snapshot of the same lineage restores too");
    } finally {
      sb.close();
    }
  });
});

test("a later snapshot stores the base's data plus the written pages, never the zero pages", async () => {
  const { sb, snap } = await prepared(64 << 20);
  try {
    sb.callSync("bump");
    sb.callSync("touch_pages", 8, 9);
    const next = sb.snapshot();
    assert.ok(next.pagesStored >= snap.pagesStored + 8 && next.pagesStored <= snap.pagesStored + 16,
      `first ${snap.pagesStored} pages, second ${next.pagesStored} (a 64 MiB guest has ${snap.memorySize / 4096})`);
    sb.restore(snap);
    assert.equal(sb.callSync("scratch_sum"), 0);
    sb.restore(next);
    assert.equal(sb.callSync("scratch_sum"), 8 * 9);
    assert.equal(sb.callSync("get_counter"), 4);
    const copy = await Sandbox.fromSnapshot(next, { hostFunctions: [addOne] });
    assert.equal(copy.callSync("scratch_sum"), 8 * 9);
    assert.equal(copy.callSync("heap_check", 7), true);
    copy.close();
  } finally {
    sb.close();
  }
});

test("registering a host function or changing the log level makes the next snapshot a new one", async () => {
  const { sb, snap } = await prepared();
  try {
    sb.setMaxGuestLogLevel("debug");
    const withLevel = sb.snapshot();
    assert.notEqual(withLevel, snap);
    sb.registerHostFunction("extra", [], "void", () => undefined);
    const withExtra = sb.snapshot();
    assert.notEqual(withExtra, withLevel);
    assert.ok(withExtra.hostFunctions.includes("extra() -> void"));
  } finally {
    sb.close();
  }
});

describe("restore after failures", () => {
  const failures: Array<[string, (sb: Sandbox) => Promise<unknown>, string]> = [
    ["page fault", async (sb) => sb.callSync("null_write"), "GUEST_FAULT"],
    ["divide error", async (sb) => sb.callSync("divide_by_zero"), "GUEST_FAULT"],
    ["invalid opcode", async (sb) => sb.callSync("undefined_instruction"), "GUEST_FAULT"],
    ["stack overflow", async (sb) => sb.callSync("stack_overflow"), "GUEST_FAULT"],
    ["abort", async (sb) => sb.callSync("abort_now"), "GUEST_ABORTED"],
    ["timeout (sync)", async (sb) => sb.callSync("spin_forever", { timeoutMs: 20 }), "TIMEOUT"],
    ["timeout (async)", async (sb) => sb.call("spin_forever", { timeoutMs: 20 }), "TIMEOUT"],
    ["kill", async (sb) => {
      const running = sb.call("spin_forever");
      setTimeout(() => sb.kill(), 10);
      return running;
    }, "CANCELLED"],
  ];
  for (const [name, fail, code] of failures) {
    test(`after a ${name} the sandbox is poisoned, and restore makes it usable in the snapshot's state`, async () => {
      const { sb, snap } = await prepared();
      try {
        await assert.rejects(fail(sb), (e: unknown) => (e as { code?: string }).code === code);
        assert.throws(() => sb.callSync("get_counter"), PoisonedError);
        assert.throws(() => sb.snapshot(), PoisonedError, "a poisoned sandbox cannot be snapshotted");
        sb.restore(snap);
        assert.equal(sb.poisoned, undefined);
        assertSnapshotState(sb);
        assert.equal(await sb.call("bump"), 4, "async calls work too");
      } finally {
        sb.close();
      }
    });
  }
});

describe("restore cost follows dirty pages, not memory size", () => {
  test("pages copied are the pages written, for a 4 MiB and a 512 MiB guest alike", async () => {
    const small = await build(1 << 20);
    const large = await build(508 << 20);
    try {
      assert.ok(large.memorySize >= 500 * 2 ** 20, `large guest is ${large.memorySize} bytes`);
      const snaps = [small.snapshot(), large.snapshot()] as const;
      const copied = (sb: Sandbox, snap: Snapshot, k: number): number => {
        sb.callSync("touch_pages", k, 1);
        return sb.restore(snap).pagesCopied;
      };
      for (const k of [1, 16, 256]) {
        const a = copied(small, snaps[0], k);
        const b = copied(large, snaps[1], k);
        assert.equal(a, b, `k=${k}: same pages copied whatever the memory size`);
        assert.ok(a >= k && a <= k + 8, `k=${k}: ${a} pages copied = the k scratch pages + stack/buffers/control block`);
      }
      const again = [small.restore(snaps[0]).pagesCopied, large.restore(snaps[1]).pagesCopied];
      assert.equal(again[0], again[1], "an immediate second restore copies the same in both");
      // Pages left writable (the dirty ring's, or the hot pages of the dirty bitmap) are
      // copied again: never more than the pages written since the last write-protection.
      assert.ok(again[0]! <= 256 + 8, `an immediate second restore copies at most the pages kept writable (${again[0]})`);
    } finally {
      small.close();
      large.close();
    }
  });
});

test("repeated cycles with changing write sets always restore exactly (hot pages stay correct)", async () => {
  const { sb, snap } = await prepared();
  try {
    for (let cycle = 0; cycle < 40; cycle++) {
      const pages = [1, 3, 16, 64, 200, 256][cycle % 6]!;
      sb.callSync("touch_pages", pages, (cycle % 250) + 1);
      sb.callSync("bump");
      if (cycle % 5 === 0) sb.callSync("heap_fill", 3000, cycle);
      sb.restore(snap);
      assert.equal(sb.callSync("scratch_sum"), 0, `cycle ${cycle}`);
      assert.equal(sb.callSync("get_counter"), 3, `cycle ${cycle}`);
      assert.equal(sb.callSync("heap_check", 7), true, `cycle ${cycle}`);
      sb.restore(snap);
    }
  } finally {
    sb.close();
  }
});

describe("host-function rules", () => {
  test("fromSnapshot needs every snapshot host function with the same signature; extras are fine", async () => {
    const { sb, snap } = await prepared();
    try {
      await assert.rejects(Sandbox.fromSnapshot(snap, {}), (e: unknown) =>
        e instanceof HostFunctionsIncompatibleError && e.missing.length === 1 && e.missing[0] === "host_add_one(i32) -> i32");
      const wrong = { name: "host_add_one", params: ["i64"], returns: "i32", impl: () => 0 } as unknown as HostFunctionDefinition;
      await assert.rejects(Sandbox.fromSnapshot(snap, { hostFunctions: [wrong] }), (e: unknown) =>
        e instanceof HostFunctionsIncompatibleError && e.mismatched.length === 1 && /offered host_add_one\(i64\) -> i32/.test(e.mismatched[0]!));
      const extra = { name: "unused", params: [], returns: "void", impl: () => undefined } as unknown as HostFunctionDefinition;
      const ok = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne, extra] });
      assert.equal(ok.callSync("call_host", 1), 2);
      ok.close();
    } finally {
      sb.close();
    }
  });

  test("restore refuses when a snapshot host function was replaced with another signature, and changes nothing", async () => {
    const { sb, snap } = await prepared();
    try {
      sb.callSync("bump");
      sb.registerHostFunction("host_add_one", ["i32", "i32"], "i32", (a, b) => a + b);
      assert.throws(() => sb.restore(snap), HostFunctionsIncompatibleError);
      assert.equal(sb.callSync("get_counter"), 4, "the sandbox was left as it was");
      sb.registerHostFunction("host_add_one", ["i32"], "i32", (x) => x + 1);
      sb.restore(snap);
      assert.equal(sb.callSync("get_counter"), 3);
    } finally {
      sb.close();
    }
  });

  test("host functions registered after the snapshot are kept by restore, and snapshots record the set", async () => {
    const { sb, snap } = await prepared();
    try {
      sb.registerHostFunction("later", [], "void", () => undefined);
      sb.restore(snap);
      assert.ok(sb.hostFunctions.some((f) => f.startsWith("later(")));
      assert.deepEqual(snap.hostFunctions, ["host_add_one(i32) -> i32"]);
      sb.callSync("bump");
      assert.ok(sb.snapshot().hostFunctions.includes("later() -> void"));
    } finally {
      sb.close();
    }
  });
});

describe("configs and lineage", () => {
  test("fields that come from the snapshot are rejected for fromSnapshot, as are unknown fields", async () => {
    const { sb, snap } = await prepared();
    try {
      for (const field of ["guest", "heapSize", "stackSize", "inputSize", "outputSize", "initTimeoutMs", "nonsense"]) {
        await assert.rejects(Sandbox.fromSnapshot(snap, { hostFunctions: [addOne], [field]: 1 } as never), (e: unknown) =>
          e instanceof InvalidConfigError && e.message.includes(`"${field}"`), field);
      }
    } finally {
      sb.close();
    }
  });

  test("a snapshot from another guest build is refused by restore, leaving the sandbox unchanged", async () => {
    const a = await prepared();
    const b = await prepared();
    try {
      a.sb.callSync("bump");
      assert.throws(() => a.sb.restore(b.snap), SnapshotMismatchError);
      assert.equal(a.sb.callSync("get_counter"), 4);
      assert.throws(() => a.sb.restore({} as Snapshot), InvalidConfigError);
    } finally {
      a.sb.close();
      b.sb.close();
    }
  });

  test("restore is refused while a call runs", async () => {
    const { sb, snap } = await prepared();
    try {
      const running = sb.call("spin_forever", { timeoutMs: 100 });
      assert.throws(() => sb.restore(snap), (e: unknown) => (e as { code?: string }).code === "SANDBOX_BUSY");
      await assert.rejects(running);
      sb.restore(snap);
      assert.equal(sb.callSync("get_counter"), 3);
    } finally {
      sb.close();
    }
  });
});

describe("log level and entropy after load", () => {
  const levels = (records: GuestLogRecord[]): string[] => records.map((r) => r.level);

  test("fromSnapshot honours its maxGuestLogLevel, and defaults to the snapshot's", async () => {
    const { sb, snap } = await prepared(); // built with the default level, info
    try {
      const seen: GuestLogRecord[] = [];
      const debug = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne], maxGuestLogLevel: "debug", guestLogger: (r) => seen.push(r) });
      for (const level of [1, 3, 4, 5]) debug.callSync("log_at", level);
      assert.deepEqual(levels(seen), ["error", "info", "debug"]);
      seen.length = 0;
      const inherited = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne], guestLogger: (r) => seen.push(r) });
      for (const level of [1, 3, 4]) inherited.callSync("log_at", level);
      assert.deepEqual(levels(seen), ["error", "info"]);
      debug.close();
      inherited.close();
    } finally {
      sb.close();
    }
  });

  test("the log level set at run time survives restore", async () => {
    const seen: GuestLogRecord[] = [];
    const sb = await build(1 << 20, (b) => b.maxGuestLogLevel("error").guestLogger((r) => seen.push(r)));
    try {
      const snap = sb.snapshot();
      sb.setMaxGuestLogLevel("trace");
      sb.restore(snap); // the snapshot's control block said "error"
      sb.callSync("log_at", 5);
      assert.deepEqual(levels(seen), ["trace"]);
    } finally {
      sb.close();
    }
  });

  test("sandboxes from one snapshot, and each restore, draw different random numbers", async () => {
    const { sb, snap } = await prepared();
    const copies = await Promise.all([1, 2, 3].map(() => Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] })));
    try {
      const firsts = copies.map((c) => c.callSync("random_u64"));
      assert.equal(new Set(firsts).size, firsts.length, "no two sandboxes repeat");
      const afterRestore = [1, 2, 3].map(() => {
        sb.restore(snap);
        return sb.callSync("random_u64");
      });
      assert.equal(new Set([...afterRestore, ...firsts]).size, 6, "every restore reseeds");
    } finally {
      for (const c of copies) c.close();
      sb.close();
    }
  });
});

describe("many sandboxes from one snapshot", () => {
  test("100 sandboxes from one snapshot stay isolated from each other", async () => {
    const { sb, snap } = await prepared();
    const all: Sandbox[] = [];
    try {
      for (let i = 0; i < 100; i++) all.push(await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] }));
      all.forEach((s, i) => {
        for (let n = 0; n < i % 7; n++) s.callSync("bump");
        s.callSync("heap_fill", 1000, i);
      });
      all.forEach((s, i) => {
        assert.equal(s.callSync("get_counter"), 3 + (i % 7), `sandbox ${i} counter`);
        assert.equal(s.callSync("heap_check", i), true, `sandbox ${i} heap`);
      });
      assertSnapshotState(sb);
    } finally {
      for (const s of all) s.close();
      sb.close();
    }
  });
});

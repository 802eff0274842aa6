/**
 * restore(snapshot, { deferred: true }): the native part of the restore runs inside the
 * next run. Everything here checks state and page counts, never time: the sandbox must
 * behave exactly as after an eager restore, and anything that observes the state (a
 * snapshot, another restore, a report read, a fault report, close) must see or settle it.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InvalidConfigError, Sandbox, SandboxBuilder, type HostFunctionDefinition, type Snapshot } from "../src/index.js";
import { guestPath } from "./helpers.js";

const MIB = 2 ** 20;
const addOne: HostFunctionDefinition = { name: "host_add_one", params: ["i32"], returns: "i32", impl: (x: number) => x + 1 } as unknown as HostFunctionDefinition;

async function snapshotOf(heapSize: number): Promise<Snapshot> {
  const sb = await new SandboxBuilder().guest(guestPath("snapshot")).heapSize(heapSize).hostFunction("host_add_one", ["i32"], "i32", (x) => x + 1).build();
  try {
    sb.callSync("bump");
    sb.callSync("bump");
    return sb.snapshot(); // counter 2
  } finally {
    sb.close();
  }
}

describe("deferred restore: same state and page counts as an eager one", () => {
  for (const [label, heap] of [["16 MiB", 12 * MIB], ["1 GiB", 1000 * MIB]] as const) {
    test(`${label}: k = 1, 16, 256 pages, several cycles`, async () => {
      const snap = await snapshotOf(heap);
      const eager = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
      const deferred = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
      try {
        for (const k of [1, 16, 256, 16, 1, 1]) {
          for (const sb of [eager, deferred]) {
            assert.equal(sb.callSync("touch_pages", k, 5), k);
            sb.callSync("bump");
          }
          const e = eager.restore(snap);
          const d = deferred.restore(snap, { deferred: true });
          assert.equal(d.remapped, false);
          assert.equal(deferred.callSync("get_counter"), 2, "counter back to the snapshot's");
          assert.equal(eager.callSync("get_counter"), 2);
          assert.equal(d.pagesCopied, e.pagesCopied, `k=${k}: pages copied`);
          assert.ok(d.pagesCopied >= k, `k=${k}: at least the k scratch pages (${d.pagesCopied})`);
          assert.equal(deferred.callSync("scratch_sum"), 0, "scratch pages are the snapshot's");
        }
      } finally {
        eager.close();
        deferred.close();
      }
    });
  }

  test("async call after a deferred restore; host calls and the MXCSR state come back", async () => {
    const sb = await new SandboxBuilder().guest(guestPath("snapshot")).hostFunction("host_add_one", ["i32"], "i32", (x) => x + 1).build();
    sb.callSync("bump");
    const snap = sb.snapshot();
    for (let i = 0; i < 3; i++) {
      sb.callSync("set_rounding", 1);
      sb.callSync("touch_pages", 20, 3);
      sb.restore(snap, { deferred: true });
      assert.equal(await sb.call("get_counter"), 1);
      assert.equal(await sb.call("get_rounding"), 0, "XSAVE (MXCSR) restored");
      assert.equal(await sb.call("call_host", 41), 42);
      assert.equal(await sb.call("scratch_sum"), 0);
    }
    sb.close();
  });
});

describe("deferred restore: what flushes it", () => {
  test("reading pagesCopied before the next call runs it then", async () => {
    const snap = await snapshotOf(1 * MIB);
    const sb = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
    sb.callSync("touch_pages", 16, 1);
    const report = sb.restore(snap, { deferred: true });
    assert.ok(report.pagesCopied >= 16);
    assert.equal(sb.callSync("get_counter"), 2);
    assert.equal(sb.callSync("scratch_sum"), 0);
    sb.close();
  });

  test("snapshot() after a deferred restore captures the restored state", async () => {
    const snap = await snapshotOf(1 * MIB);
    const sb = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
    sb.callSync("bump");
    sb.callSync("touch_pages", 8, 9);
    const report = sb.restore(snap, { deferred: true });
    assert.equal(sb.snapshot(), snap, "nothing ran since the restore: the same snapshot");
    sb.registerHostFunction("extra", [], "void", () => undefined); // counts as a change
    const later = sb.snapshot(); // must flush the pending restore first
    assert.notEqual(later, snap);
    assert.ok(report.pagesCopied >= 8);
    const copy = await Sandbox.fromSnapshot(later, { hostFunctions: [addOne, { name: "extra", params: [], returns: "void", impl: () => undefined } as unknown as HostFunctionDefinition] });
    assert.equal(copy.callSync("get_counter"), 2, "the later snapshot has the restored counter");
    assert.equal(copy.callSync("scratch_sum"), 0, "and the restored scratch pages");
    copy.close();
    assert.equal(sb.callSync("get_counter"), 2);
    sb.close();
  });

  test("a second restore while one is pending: both reports settle, state is right", async () => {
    const snap = await snapshotOf(1 * MIB);
    const sb = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
    sb.callSync("touch_pages", 32, 2);
    const first = sb.restore(snap, { deferred: true });
    const second = sb.restore(snap, { deferred: true });
    const third = sb.restore(snap);
    assert.equal(sb.callSync("get_counter"), 2);
    assert.ok(first.pagesCopied >= 32, `first restore copied the scratch pages (${first.pagesCopied})`);
    // The later ones copy at most what stayed writable (the same pages), never more.
    assert.ok(second.pagesCopied <= first.pagesCopied, `the second found no more to do (${second.pagesCopied})`);
    assert.ok(third.pagesCopied <= first.pagesCopied);
    sb.close();
  });

  test("a restore to another snapshot (remap) while one is pending", async () => {
    const sb = await new SandboxBuilder().guest(guestPath("snapshot")).build();
    sb.callSync("bump");
    const one = sb.snapshot();
    sb.callSync("bump");
    const two = sb.snapshot();
    sb.callSync("touch_pages", 4, 1);
    const pending = sb.restore(two, { deferred: true });
    assert.equal(sb.restore(one, { deferred: true }).remapped, true);
    assert.ok(pending.pagesCopied >= 4);
    assert.equal(sb.callSync("get_counter"), 1);
    sb.close();
  });

  test("close() with a restore pending drops it cleanly", async () => {
    const snap = await snapshotOf(1 * MIB);
    const sb = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
    sb.callSync("touch_pages", 4, 1);
    const report = sb.restore(snap, { deferred: true });
    sb.close();
    assert.equal(sb.closed, true);
    assert.equal(report.pagesCopied, 0, "it never ran");
    const ran = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
    ran.callSync("touch_pages", 4, 1);
    const done = ran.restore(snap, { deferred: true });
    ran.callSync("get_counter");
    ran.close();
    assert.ok(done.pagesCopied >= 4, "a restore that ran keeps its count after close");
  });

  test("a fault after a deferred restore is reported, and the sandbox restores again", async () => {
    const snap = await snapshotOf(1 * MIB);
    const sb = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
    sb.callSync("touch_pages", 4, 1);
    sb.restore(snap, { deferred: true });
    assert.throws(() => sb.callSync("null_write"), { code: "GUEST_FAULT" });
    sb.restore(snap, { deferred: true }); // poisoned: the vCPU is reset, the pages later
    assert.equal(sb.poisoned, undefined);
    assert.equal(sb.callSync("get_counter"), 2);
    sb.close();
  });

  test("fresh seeds and the log level after deferred restores", async () => {
    const snap = await snapshotOf(1 * MIB);
    const sb = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
    const draws = new Set<unknown>();
    for (let i = 0; i < 4; i++) {
      sb.restore(snap, { deferred: true });
      draws.add(sb.callSync("random_u64"));
    }
    assert.equal(draws.size, 4, "no restore repeats another's draw");
    sb.close();
  });

  test("options are checked", async () => {
    const snap = await snapshotOf(1 * MIB);
    const sb = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
    assert.throws(() => sb.restore(snap, { deferred: "yes" as unknown as boolean }), InvalidConfigError);
    assert.throws(() => sb.restore(snap, null as unknown as undefined), InvalidConfigError);
    sb.close();
  });
});

describe("deferred restore: host writes before the run", () => {
  test("a call message of many pages after a deferred restore", async () => {
    const sb = await new SandboxBuilder().guest(guestPath("types")).inputSize(256 * 1024).outputSize(256 * 1024).build();
    const big = new Uint8Array(40_000).map((_, i) => (i * 7) & 0xff);
    sb.callSync("echo_bytes", big);
    const snap = sb.snapshot();
    for (const size of [10, 5_000, 40_000, 200_000]) {
      const payload = new Uint8Array(size).map((_, i) => (i * 13 + size) & 0xff);
      sb.callSync("echo_bytes", new Uint8Array(size)); // dirties the buffers
      sb.restore(snap, { deferred: true });
      assert.deepEqual(sb.callSync("echo_bytes", payload), payload, `${size} bytes`);
      sb.restore(snap, { deferred: true });
      assert.equal(sb.callSync("echo_string", "x".repeat(size)), "x".repeat(size));
    }
    sb.close();
  });

  test("a failed argument write while a restore is pending leaves the restore intact", async () => {
    const sb = await new SandboxBuilder().guest(guestPath("types")).build();
    const snap = sb.snapshot();
    sb.callSync("echo_string", "dirty");
    sb.restore(snap, { deferred: true });
    assert.throws(() => sb.callSync("echo_string", 42 as unknown as string), { code: "ARGUMENT_MISMATCH" });
    assert.equal(sb.callSync("echo_string", "clean"), "clean");
    sb.close();
  });
});

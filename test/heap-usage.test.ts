/**
 * sb.stats().heap: the guest heap's bytes in use and peak, as the SDK's allocator publishes
 * them in the control block. They follow malloc and free, come back with restore() (also a
 * deferred one that has not run yet) and fromSnapshot(), and a guest that writes nonsense
 * there gets figures clamped to its heap size.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { CB, CONTROL_BLOCK_ADDRESS } from "../src/abi/constants.js";
import { Sandbox, SandboxBuilder } from "../src/index.js";
import { guestPath } from "./helpers.js";

const HEAP_SIZE = 4 << 20;

async function hostile(): Promise<Sandbox> {
  return new SandboxBuilder().guest(guestPath("hostile")).heapSize(HEAP_SIZE).build();
}

test("heap.used grows with what the guest keeps allocated; peak never falls below it", async () => {
  const sb = await hostile();
  try {
    const start = sb.stats().heap;
    assert.ok(start.size > HEAP_SIZE - 64 * 1024 && start.size <= HEAP_SIZE, `size ${start.size}`);
    assert.ok(start.peak >= start.used);
    for (let i = 1; i <= 3; i++) {
      assert.notEqual(sb.callSync("leave_in_heap", 7n), 0n);
      const now = sb.stats().heap;
      assert.ok(now.used >= start.used + i * 4096 && now.used <= start.used + i * (4096 + 64), `used ${now.used} after ${i} blocks`);
      assert.equal(now.peak, now.used, "nothing was freed: the peak is now");
    }
  } finally {
    sb.close();
  }
});

test("restore() and fromSnapshot() report the snapshot's heap, a deferred restore before it has run too", async () => {
  const sb = await hostile();
  try {
    sb.callSync("leave_in_heap", 1n);
    const snapshot = sb.snapshot();
    const atSnapshot = sb.stats().heap;
    for (let i = 0; i < 4; i++) sb.callSync("leave_in_heap", 2n);
    assert.ok(sb.stats().heap.used > atSnapshot.used);
    sb.restore(snapshot);
    assert.deepEqual(sb.stats().heap, atSnapshot);
    for (let i = 0; i < 4; i++) sb.callSync("leave_in_heap", 3n);
    sb.restore(snapshot, { deferred: true });
    assert.deepEqual(sb.stats().heap, atSnapshot, "memory still holds the calls' heap until the restore runs; stats show the snapshot's");
    assert.equal(sb.callSync("ok"), 1);
    assert.deepEqual(sb.stats().heap, atSnapshot);
    const resumed = await Sandbox.fromSnapshot(snapshot);
    try {
      assert.deepEqual(resumed.stats().heap, atSnapshot);
    } finally {
      resumed.close();
    }
  } finally {
    sb.close();
  }
});

test("figures a guest forged in its control block are clamped to the heap size", async () => {
  const sb = await hostile();
  try {
    const size = sb.stats().heap.size;
    sb.callSync("fill", BigInt(CONTROL_BLOCK_ADDRESS + CB.heapUsed), 16, 0xff);
    assert.deepEqual(sb.stats().heap, { used: size, peak: size, size });
    sb.callSync("fill", BigInt(CONTROL_BLOCK_ADDRESS + CB.heapPeak), 8, 0);
    assert.deepEqual(sb.stats().heap, { used: size, peak: size, size }, "a peak below used reads as used");
  } finally {
    sb.close();
  }
});

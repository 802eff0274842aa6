/**
 * How a restore learns the pages the guest wrote: KVM's dirty ring where the kernel has
 * one (this machine's has), else the dirty bitmap. Both must restore exactly, also when a
 * call writes more pages than the ring holds. The ring's policy — pages it reported stay
 * writable and are copied on every restore, until there are too many or they have been
 * kept for a while — is checked by counting pages copied, never by time.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "./kvm.js";
import { Sandbox, SandboxBuilder, type Snapshot } from "../src/index.js";
import { setDirtyRingAllowed } from "../src/hypervisor/kvm/vm.js";
import { setVmParking } from "../src/sandbox/parked-vms.js";
import { guestPath } from "./helpers.js";
import { addOne } from "./snapshot-guest.js";

const MIB = 2 ** 20;
const PAGE = 4096;
/** The ring holds 4096 entries (src/hypervisor/kvm/vm.ts); this many pages overflow it twice. */
const BEYOND_RING = 32 * MIB;
/** native/vcpu_restore.c: RING_MAX_WRITABLE, RING_RELEARN_EVERY (the first relearning period). */
const RING_MAX_WRITABLE = 512;
const RING_RELEARN_EVERY = 32;

/** How many times the sandbox's dirty ring re-protected its pages (a native count). */
function ringResets(sb: Sandbox): number {
  return (sb as unknown as { vm: { dirtyRingResets: number } }).vm.dirtyRingResets;
}

/** The dirty-page mode the sandbox's VM uses (native enum dirty_mode: 1 manual bitmap, 2 ring). */
function dirtyMode(sb: Sandbox): number {
  return (sb as unknown as { vm: { dirtyTracker: { mode: number } } }).vm.dirtyTracker.mode;
}

async function heapSnapshot(heapSize: number, fill: number, seed: number): Promise<{ sb: Sandbox; snap: Snapshot }> {
  const sb = await new SandboxBuilder().guest(guestPath("snapshot")).heapSize(heapSize).hostFunction("host_add_one", ["i32"], "i32", (x) => x + 1).build();
  assert.equal(sb.callSync("heap_fill", fill, seed), true);
  return { sb, snap: sb.snapshot() };
}

for (const mode of ["ring", "bitmap"] as const) {
  describe(`dirty pages from the ${mode}`, () => {
    before(() => {
      setDirtyRingAllowed(mode === "ring");
      setVmParking(false); // a parked VM would keep the mode it was made with
    });
    after(() => {
      setDirtyRingAllowed(true);
      setVmParking(true);
    });

    test(`sandboxes use the ${mode}`, async () => {
      const { sb, snap } = await heapSnapshot(MIB, PAGE, 1);
      const other = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
      try {
        assert.equal(dirtyMode(sb), mode === "ring" ? 2 : 1);
        assert.equal(dirtyMode(other), mode === "ring" ? 2 : 1);
      } finally {
        sb.close();
        other.close();
      }
    });

    for (const deferred of [false, true]) {
      test(`a call writing more pages than the ring holds is restored exactly${deferred ? " (deferred restore)" : ""}`, async () => {
        const { sb, snap } = await heapSnapshot(BEYOND_RING + 8 * MIB, BEYOND_RING, 1);
        try {
          for (let round = 2; round < 4; round++) {
            assert.equal(sb.callSync("heap_fill", BEYOND_RING, round), true);
            assert.equal(sb.callSync("heap_check", round), true, "the guest ran on through the full ring");
            const report = sb.restore(snap, { deferred });
            assert.equal(sb.callSync("heap_check", 1), true, `round ${round}: every page of the snapshot is back`);
            assert.ok(report.pagesCopied >= BEYOND_RING / PAGE, `round ${round}: ${report.pagesCopied} pages copied`);
          }
        } finally {
          sb.close();
        }
      });
    }

    test("a sandbox from the snapshot also restores a call that overflowed the ring", async () => {
      const { sb, snap } = await heapSnapshot(BEYOND_RING + 8 * MIB, BEYOND_RING, 1);
      sb.close();
      const other = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
      try {
        assert.equal(other.callSync("heap_fill", BEYOND_RING, 9), true);
        other.restore(snap);
        assert.equal(other.callSync("heap_check", 1), true);
        assert.equal(other.callSync("scratch_sum"), 0);
      } finally {
        other.close();
      }
    });

    test("a snapshot after many writes holds them all (pages written before a ring reset included)", async () => {
      const { sb } = await heapSnapshot(BEYOND_RING + 8 * MIB, BEYOND_RING, 1);
      try {
        assert.equal(sb.callSync("heap_fill", BEYOND_RING, 5), true);
        const second = sb.snapshot();
        assert.equal(sb.callSync("heap_fill", BEYOND_RING, 6), true);
        sb.restore(second);
        assert.equal(sb.callSync("heap_check", 5), true);
      } finally {
        sb.close();
      }
    });
  });
}

describe("the ring's policy: which pages stay writable", () => {
  test("pages the guest stopped writing are write-protected again after a while", async () => {
    const { sb, snap } = await heapSnapshot(MIB, PAGE, 1);
    try {
      assert.equal(dirtyMode(sb), 2);
      sb.callSync("touch_pages", 256, 3);
      assert.ok(sb.restore(snap).pagesCopied >= 256);
      // Still writable: copied again although nothing wrote them.
      const kept = sb.restore(snap).pagesCopied;
      assert.ok(kept >= 256, `pages kept writable are copied on the next restore (${kept})`);
      let last = kept;
      for (let i = 0; i < RING_RELEARN_EVERY + 2; i++) {
        sb.callSync("get_counter");
        last = sb.restore(snap).pagesCopied;
      }
      assert.ok(last < 32, `after ${RING_RELEARN_EVERY} restores only the pages still written are copied (${last})`);
      assert.equal(sb.callSync("scratch_sum"), 0);
    } finally {
      sb.close();
    }
  });

  test("a steady working set is relearned ever more rarely; pages written once are shed at the next relearn", async () => {
    const { sb, snap } = await heapSnapshot(MIB, PAGE, 1);
    try {
      const start = ringResets(sb);
      for (let i = 0; i < 400; i++) {
        sb.callSync("touch_pages", 16, 1 + (i % 200));
        sb.restore(snap);
      }
      const steady = ringResets(sb) - start;
      // Periods 32, 64, 128, 256: resets after restores 32, 96, 224 (a fixed period: 12).
      assert.ok(steady >= 2 && steady <= 4, `${steady} relearns in 400 restores of the same 16 pages`);
      // One request writes many other pages: they are re-protected at once, not after the long period.
      sb.callSync("touch_pages", 256, 7);
      assert.ok(sb.restore(snap).pagesCopied >= 256);
      sb.callSync("touch_pages", 16, 8);
      const after = sb.restore(snap).pagesCopied;
      assert.ok(after < 64, `the restore after the one-off copies the working set only (${after})`);
      assert.equal(sb.callSync("scratch_sum"), 0);
    } finally {
      sb.close();
    }
  });

  test("pages written only now and then keep the short period (each relearn sheds them)", async () => {
    const { sb, snap } = await heapSnapshot(MIB, PAGE, 1);
    try {
      const start = ringResets(sb);
      for (let i = 0; i < 200; i++) {
        sb.callSync("touch_pages", i % 10 === 0 ? 64 : 1, 1 + (i % 200)); // 63 pages written in one cycle of ten
        sb.restore(snap);
      }
      const resets = ringResets(sb) - start;
      // A steady set would be relearned twice in 200 restores (after 32 and 96); a fixed period of 32 gives 6.
      assert.ok(resets >= 4, `${resets} relearns in 200 restores`);
      assert.equal(sb.callSync("scratch_sum"), 0);
    } finally {
      sb.close();
    }
  });

  test(`more than ${RING_MAX_WRITABLE} writable pages are write-protected at once`, async () => {
    const { sb, snap } = await heapSnapshot(8 * MIB, PAGE, 1);
    try {
      assert.equal(sb.callSync("heap_fill", 4 * MIB, 2), true);
      assert.ok(sb.restore(snap).pagesCopied >= (4 * MIB) / PAGE);
      sb.callSync("get_counter");
      const next = sb.restore(snap).pagesCopied;
      assert.ok(next < 32, `the next restore copies only what the call wrote (${next})`);
      assert.equal(sb.callSync("heap_check", 1), true);
    } finally {
      sb.close();
    }
  });
});

/**
 * On the process backend, memory the guest never touches costs nothing per sandbox: the
 * child's write tracking gives it no page-table entries (src/hypervisor/process/
 * write-tracking.ts), so takes, restores and the child's exit scale with what the guest
 * used, and sandboxes of one snapshot share one walk of its page tables (page-walk.ts).
 * Restores through the log stay exact when the guest first touches pages nothing
 * protected yet.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, describe, test } from "node:test";
import { backendInfo, Sandbox, type Snapshot } from "../src/index.js";
import { setProcessRestoreMode, type ProcessMachine } from "../src/hypervisor/process/process-machine.js";
import { setVmParking } from "../src/sandbox/parked-vms.js";
import { intersectRanges } from "../src/mem/range-lists.js";
import { addOne, buildSnapshotGuest } from "./snapshot-guest.js";

const PAGE = 4096;
const MIB = 2 ** 20;
const skip = backendInfo().name === "process" ? false : "the process backend's write tracking (this run uses another backend)";
if (skip) console.log(`# skipped: ${skip}`);

function machineOf(sb: Sandbox): ProcessMachine {
  return (sb as unknown as { vm: ProcessMachine }).vm;
}

/** The child's page tables, KiB (VmPTE in /proc/<pid>/status). */
function childPageTablesKib(sb: Sandbox): number {
  const status = readFileSync(`/proc/${machineOf(sb).childPid}/status`, "latin1");
  return Number(/VmPTE:\s+(\d+) kB/.exec(status)![1]);
}

/** Pages where memory and the image differ (the host fields a restore writes are in the scratch-free control block: none of these tests' pages). */
function differingPages(sb: Sandbox, snap: Snapshot, from: number, to: number): number[] {
  const memory = machineOf(sb).memory, image = snap.image.view;
  const out: number[] = [];
  for (let at = from; at < to; at += PAGE) if (!Buffer.from(memory.buffer, memory.byteOffset + at, PAGE).equals(Buffer.from(image.buffer, image.byteOffset + at, PAGE))) out.push(at / PAGE);
  return out;
}

test("intersectRanges keeps the parts of one range list inside the other", () => {
  assert.deepEqual(intersectRanges([0, 10, 20, 30], [5, 25]), [5, 10, 20, 25]);
  assert.deepEqual(intersectRanges([0, 10], []), []);
  assert.deepEqual(intersectRanges([0, 10, 10, 20], [0, 20]), [0, 10, 10, 20]);
  assert.deepEqual(intersectRanges([5, 6], [0, 5, 6, 9]), []);
});

describe("process backend: untouched memory", { skip }, () => {
  after(() => setProcessRestoreMode("auto"));

  test("write tracking gives the child no page tables over memory the guest never touched", async () => {
    setProcessRestoreMode("log");
    const built = await buildSnapshotGuest(256 * MIB);
    const snap = built.snapshot();
    built.close();
    const sb = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
    try {
      for (const k of [16, 256, 1]) {
        sb.callSync("touch_pages", k, 3);
        machineOf(sb).takeDirtyPages();
        sb.restore(snap);
        assert.equal(machineOf(sb).restoredFromLog, true, `k=${k}: restored from the log`);
      }
      // Protecting every writable page put a marker entry on each: 128 page tables (512 KiB) for 256 MiB.
      const kib = childPageTablesKib(sb);
      assert.ok(kib < 128, `the child's page tables: ${kib} KiB`);
    } finally {
      sb.close();
      setProcessRestoreMode("auto");
    }
  });

  test("log restores are exact when the guest first touches heap pages the image has no data for", async () => {
    setProcessRestoreMode("log");
    const built = await buildSnapshotGuest(64 * MIB);
    const snap = built.snapshot();
    built.close();
    const sb = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
    try {
      const heap = (sb as unknown as { parts: { layout: { heap: { address: number; size: number } } } }).parts.layout.heap;
      sb.restore(snap); // the log is trusted from here (a new child's first restore compares)
      for (const [bytes, seed] of [[4 * MIB, 1], [40_000, 2], [9 * MIB, 3], [0, 4]] as const) {
        if (bytes > 0) assert.equal(sb.callSync("heap_fill", bytes, seed), true);
        assert.equal(sb.callSync("heap_check", seed), bytes > 0);
        sb.restore(snap);
        assert.equal(machineOf(sb).restoredFromLog, true, `${bytes} bytes: restored from the log`);
        assert.deepEqual(differingPages(sb, snap, heap.address, heap.address + heap.size), [], `${bytes} bytes: the heap equals the image`);
        assert.equal(sb.callSync("heap_check", seed), false, "the heap block is gone");
        sb.restore(snap);
      }
    } finally {
      sb.close();
      setProcessRestoreMode("auto");
    }
  });

  test("sandboxes of one snapshot share one walk of its page tables", async () => {
    const built = await buildSnapshotGuest(16 * MIB);
    const snap = built.snapshot();
    built.close();
    setVmParking(false); // two new machines, not one reused
    const a = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
    const b = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
    try {
      const present = (sb: Sandbox): Uint8Array => (machineOf(sb) as unknown as { present: Uint8Array }).present;
      assert.equal(present(a), present(b), "one walk, kept for the image");
      assert.equal(a.callSync("get_counter"), 0);
      assert.equal(b.callSync("bump"), 1);
    } finally {
      a.close();
      b.close();
      setVmParking(true);
    }
  });
});

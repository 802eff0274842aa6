/**
 * The process backend's write log (src/hypervisor/process/write-tracking.ts): dirty pages
 * from the child's userfaultfd write protection, read with PAGEMAP_SCAN. Every restore
 * must leave memory equal to the snapshot's image byte for byte, through the log or the
 * full compare it falls back to, including after host writes and a replaced child.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { backendInfo, Sandbox, type Snapshot } from "../src/index.js";
import { setProcessRestoreMode, type ProcessMachine } from "../src/hypervisor/process/process-machine.js";
import { CB } from "../src/abi/constants.js";
import { addOne, buildSnapshotGuest } from "./snapshot-guest.js";

const PAGE = 4096;
const skip = backendInfo().name === "process" ? false : "the process backend's write log (this run uses another backend)";
if (skip) console.log(`# skipped: ${skip}`);

function machineOf(sb: Sandbox): ProcessMachine {
  return (sb as unknown as { vm: ProcessMachine }).vm;
}

function pagesOf(bitmap: BigUint64Array): number[] {
  const pages: number[] = [];
  bitmap.forEach((word, i) => {
    for (let bit = 0; word !== 0n; bit++, word >>= 1n) if (word & 1n) pages.push(i * 64 + bit);
  });
  return pages;
}

/** The bytes restore() writes as the host after the copies (Sandbox.applyHostFields: log level, XSAVE mask, RNG seed and generation, FPU fix mark). */
function hostFieldBytes(sb: Sandbox): Array<[number, number]> {
  const inner = sb as unknown as { parts: { layout: { controlBlock: number } }; facts?: { fixMarkAt?: number } };
  const cb = inner.parts.layout.controlBlock;
  const fields: Array<[number, number]> = [[cb + CB.maxLogLevel, 4], [cb + CB.fpuXsaveMask, 4], [cb + CB.rngSeed, 8], [cb + CB.rngGeneration, 8]];
  if (inner.facts?.fixMarkAt !== undefined) fields.push([inner.facts.fixMarkAt, 4]);
  return fields;
}

/** Pages where memory and the snapshot's image differ, beyond the host fields every restore writes. */
function differingPages(sb: Sandbox, snap: Snapshot): number[] {
  const memory = Buffer.from(machineOf(sb).memory);
  const image = Buffer.from(snap.image.view);
  for (const [at, length] of hostFieldBytes(sb)) memory.copy(image, at, at, at + length);
  const out: number[] = [];
  for (let at = 0; at < memory.byteLength; at += PAGE) if (!memory.subarray(at, at + PAGE).equals(image.subarray(at, at + PAGE))) out.push(at / PAGE);
  return out;
}

/** The guest page of scratch page 0 (guests/snapshot.c): the first page touch_pages(1) changes. */
function scratchPage(sb: Sandbox, snap: Snapshot): number {
  sb.callSync("touch_pages", 1, 0xab);
  const page = differingPages(sb, snap).find((p) => machineOf(sb).memory[p * PAGE] === 0xab);
  sb.restore(snap);
  assert.ok(page !== undefined, "touch_pages(1) changed a page starting with its byte");
  return page;
}

for (const mode of ["log", "compare"] as const) {
  describe(`process restores (${mode})`, { skip }, () => {
    before(() => setProcessRestoreMode(mode));
    after(() => setProcessRestoreMode("auto"));

    test("repeated restores with changing write sets leave memory equal to the image", async () => {
      const sb = await buildSnapshotGuest(4 << 20);
      try {
        const snap = sb.snapshot();
        for (const k of [1, 16, 256, 3, 0, 200, 7, 256, 1]) {
          sb.callSync("touch_pages", k, k + 1);
          sb.callSync("bump");
          const report = sb.restore(snap);
          assert.deepEqual(differingPages(sb, snap), [], `k=${k}: memory equals the image`);
          if (mode === "log") assert.equal(machineOf(sb).restoredFromLog, true, `k=${k}: restored from the log`);
          assert.ok(report.pagesCopied >= k, `k=${k}: at least the scratch pages (${report.pagesCopied})`);
          assert.equal(sb.callSync("get_counter"), 0);
          assert.equal(sb.callSync("scratch_sum"), 0);
          sb.restore(snap);
        }
      } finally {
        sb.close();
      }
    });

    test("pages the host wrote are put back too", async () => {
      const sb = await buildSnapshotGuest(4 << 20);
      try {
        const snap = sb.snapshot();
        for (let round = 0; round < 3; round++) {
          sb.callSync("heap_fill", 50_000 + round * 10_000, round + 5); // large arguments and results go through host-written pages
          sb.callSync("touch_pages", round * 8 + 1, 9);
          sb.restore(snap);
          assert.deepEqual(differingPages(sb, snap), [], `round ${round}`);
        }
      } finally {
        sb.close();
      }
    });

    test("a restore after the child was killed (timeout) is exact", async () => {
      const sb = await buildSnapshotGuest(4 << 20);
      try {
        const snap = sb.snapshot();
        sb.callSync("touch_pages", 64, 3);
        const pid = machineOf(sb).childPid;
        process.kill(pid!, "SIGKILL"); // the sandbox finds its process gone at the next call
        assert.throws(() => sb.callSync("bump"));
        sb.restore(snap);
        assert.notEqual(machineOf(sb).childPid, pid, "a new child");
        assert.equal(machineOf(sb).restoredFromLog, false, "a new child's first restore compares");
        assert.deepEqual(differingPages(sb, snap), []);
        sb.callSync("touch_pages", 32, 4);
        sb.restore(snap);
        assert.equal(machineOf(sb).restoredFromLog, mode === "log");
        assert.deepEqual(differingPages(sb, snap), []);
        assert.equal(sb.callSync("scratch_sum"), 0);
      } finally {
        sb.close();
      }
    });
  });
}

describe("process dirty pages", { skip }, () => {
  after(() => setProcessRestoreMode("auto"));

  test("takeDirtyPages reports exactly the pages the guest wrote", async () => {
    setProcessRestoreMode("log");
    const sb = await buildSnapshotGuest(4 << 20);
    try {
      const snap = sb.snapshot();
      const first = scratchPage(sb, snap);
      const vm = machineOf(sb);
      vm.takeDirtyPages();
      for (const k of [1, 5, 40]) {
        sb.callSync("touch_pages", k, 0x5a);
        const dirty = pagesOf(vm.takeDirtyPages());
        for (let i = 0; i < k; i++) assert.ok(dirty.includes(first + i), `k=${k}: scratch page ${i} is dirty`);
        assert.ok(!dirty.includes(first + k), `k=${k}: the next scratch page is not`);
        assert.ok(dirty.length < k + 32, `k=${k}: a handful of other pages (stack, messages): ${dirty.length}`);
        assert.deepEqual(pagesOf(vm.takeDirtyPages()), [], "nothing written since");
        sb.restore(snap);
        vm.takeDirtyPages();
      }
    } finally {
      sb.close();
    }
  });

  test("snapshots over a base copy the written pages and stay exact", async () => {
    setProcessRestoreMode("log");
    const sb = await buildSnapshotGuest(4 << 20);
    try {
      sb.snapshot();
      sb.callSync("touch_pages", 12, 0x11);
      sb.callSync("bump");
      const second = sb.snapshot();
      sb.callSync("touch_pages", 200, 0x22);
      sb.restore(second);
      assert.deepEqual(differingPages(sb, second), []);
      assert.equal(sb.callSync("scratch_sum"), 12 * 0x11);
      assert.equal(sb.callSync("get_counter"), 1);
    } finally {
      sb.close();
    }
  });

  test("children without write tracking compare every page, with the same results", async () => {
    setProcessRestoreMode("log", false);
    const sb = await buildSnapshotGuest(4 << 20);
    try {
      const snap = sb.snapshot();
      const vm = machineOf(sb);
      sb.callSync("touch_pages", 30, 6);
      assert.equal(pagesOf(vm.takeDirtyPages()).length, vm.memory.byteLength / PAGE, "every page when there is no log");
      sb.restore(snap);
      assert.equal(vm.restoredFromLog, false);
      for (const k of [1, 100]) {
        sb.callSync("touch_pages", k, 8);
        sb.restore(snap);
        assert.equal(vm.restoredFromLog, false);
        assert.deepEqual(differingPages(sb, snap), []);
      }
    } finally {
      sb.close();
      setProcessRestoreMode("auto");
    }
  });
});

describe("when a child's write log is first taken", { skip }, () => {
  const logOf = (sb: Sandbox): { untaken: boolean } => (machineOf(sb) as unknown as { child: { log: { untaken: boolean } } }).child.log;

  test("not while a built sandbox only runs calls: its first snapshot takes it, and the restore after reads it", async () => {
    setProcessRestoreMode("log");
    const sb = await buildSnapshotGuest(4 << 20);
    try {
      sb.callSync("touch_pages", 3, 1);
      assert.equal(logOf(sb).untaken, true, "build and calls protect nothing in the child");
      const snap = sb.snapshot();
      assert.equal(logOf(sb).untaken, false, "snapshot() took the log");
      sb.callSync("touch_pages", 2, 9);
      sb.restore(snap);
      assert.equal(machineOf(sb).restoredFromLog, true);
      assert.deepEqual(differingPages(sb, snap), []);
    } finally {
      sb.close();
      setProcessRestoreMode("auto");
    }
  });

  test("a new child's first restore compares, takes the log, and the next restore reads only what the guest wrote", async () => {
    setProcessRestoreMode("log");
    const sb = await buildSnapshotGuest(4 << 20);
    try {
      const snap = sb.snapshot();
      const restored = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
      try {
        assert.equal(logOf(restored).untaken, true);
        restored.callSync("touch_pages", 4, 3);
        restored.restore(snap);
        assert.equal(machineOf(restored).restoredFromLog, false, "a new child's first restore compares");
        assert.equal(logOf(restored).untaken, false, "and takes the log");
        restored.callSync("touch_pages", 2, 5);
        const second = restored.restore(snap);
        assert.equal(machineOf(restored).restoredFromLog, true);
        assert.deepEqual(differingPages(restored, snap), []);
        restored.callSync("touch_pages", 2, 6);
        const steady = restored.restore(snap);
        // Without the take after the first restore, the second would copy every page the child had touched since it started.
        assert.ok(second.pagesCopied <= steady.pagesCopied, `the second restore copied ${second.pagesCopied} pages, a steady one ${steady.pagesCopied}`);
        assert.deepEqual(differingPages(restored, snap), []);
      } finally {
        restored.close();
      }
    } finally {
      sb.close();
      setProcessRestoreMode("auto");
    }
  });
});

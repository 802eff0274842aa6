/**
 * A snapshot's working set (src/snapshot/working-set.ts): recorded from the first call of a
 * sandbox made from it, populated by a new process-backend child at start, saved with the
 * snapshot (config blob `workingSet`), and never trusted: a malformed one in a layout is
 * SNAPSHOT_INVALID, and whatever is populated, restores stay exact.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { backendInfo, Sandbox, Snapshot } from "../src/index.js";
import { setProcessRestoreMode, setWorkingSetPrefault, type ProcessMachine } from "../src/hypervisor/process/process-machine.js";
import { setVmParking } from "../src/sandbox/parked-vms.js";
import { decodeConfigBlob, encodeConfig } from "../src/snapshot/file/config-blob.js";
import type { WorkingSet } from "../src/snapshot/working-set.js";
import { SnapshotInvalidError } from "../src/snapshot/file/errors.js";
import { addOne, prepared } from "./snapshot-guest.js";

const onProcess = backendInfo().name === "process";
const skip = onProcess ? false : "the process backend's children populate working sets";
const root = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-working-set-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const HEAP = 1 << 20; // 256 pages of heap data in the snapshot
const machineOf = (sb: Sandbox): ProcessMachine => (sb as unknown as { vm: ProcessMachine }).vm;

/** The snapshot guest with HEAP bytes of heap data (seed 3), snapshotted; the builder sandbox closed. */
async function heapSnapshot(): Promise<Snapshot> {
  const { sb } = await prepared(8 << 20);
  assert.equal(sb.callSync("heap_fill", HEAP, 3), true);
  const snap = sb.snapshot();
  sb.close();
  return snap;
}

const pagesIn = (ranges: ArrayLike<number>): number[] => {
  const pages: number[] = [];
  for (let i = 0; i < ranges.length; i += 2) for (let p = ranges[i]!; p < ranges[i + 1]!; p++) pages.push(p);
  return pages;
};

/** Which of `pages` the process `pid` maps now (bit 63 of its /proc/<pid>/pagemap entries). */
function presentPages(pid: number, pages: readonly number[]): number[] {
  const fd = fs.openSync(`/proc/${pid}/pagemap`, "r");
  try {
    const entry = Buffer.alloc(8);
    return pages.filter((page) => {
      fs.readSync(fd, entry, 0, 8, page * 8);
      return (entry.readBigUInt64LE(0) >> 63n) === 1n;
    });
  } finally {
    fs.closeSync(fd);
  }
}

/** Pages of the sandbox's memory that differ from the image (the page of the host's own control-block fields left out). */
function pagesDifferingFromImage(sb: Sandbox, snap: Snapshot): number[] {
  const { memory, layout } = (sb as unknown as { parts: { memory: { bytes: Uint8Array }; layout: { controlBlock: number } } }).parts;
  const image = snap.image.view;
  const hostFieldsPage = Math.floor(layout.controlBlock / 4096);
  const differing: number[] = [];
  for (let page = 0; page < image.byteLength / 4096; page++) {
    const at = page * 4096;
    if (page !== hostFieldsPage && Buffer.compare(memory.bytes.subarray(at, at + 4096), image.subarray(at, at + 4096)) !== 0) differing.push(page);
  }
  return differing;
}

test("the first call of a snapshot's sandbox records its working set, and a new child starts with those pages mapped (and without the populate it does not)", { skip }, async () => {
  const snap = await heapSnapshot();
  setVmParking(false);
  try {
    const first = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
    assert.equal(snap.image.workingSet, undefined, "nothing recorded before a call");
    assert.equal(first.callSync("heap_check", 3), true); // reads every heap page
    first.close();
    const set = snap.image.workingSet as WorkingSet | undefined;
    assert.ok(set, "recorded after the first call");
    const touched = pagesIn(set.touched);
    assert.ok(touched.length >= HEAP / 4096, `the heap's ${HEAP / 4096} pages are in it (${touched.length} pages)`);
    assert.ok(set.touched.length / 2 <= 128, "a few ranges, merged");
    const written = pagesIn(set.written);
    assert.ok(written.length < HEAP / 4096 / 4, `heap_check only reads the heap: ${written.length} of ${touched.length} pages recorded as written`);

    const populated = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
    assert.deepEqual(presentPages(machineOf(populated).childPid!, touched).length, touched.length, "every page of the working set is mapped before the first call");
    assert.equal(populated.callSync("heap_check", 3), true);
    populated.close();

    setWorkingSetPrefault(false);
    const plain = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
    assert.ok(presentPages(machineOf(plain).childPid!, touched).length < touched.length / 4, "without the populate a new child maps (almost) none of it");
    plain.close();
  } finally {
    setWorkingSetPrefault(true);
    setVmParking(true);
  }
});

for (const mode of ["log", "compare"] as const) {
  test(`restores after a start that populated the working set (written pages writable) are byte-exact (restores: ${mode})`, { skip }, async () => {
    const snap = await heapSnapshot();
    setVmParking(false);
    setProcessRestoreMode(mode);
    try {
      const recorder = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
      assert.equal(recorder.callSync("heap_fill", HEAP, 5), true); // writes the heap: its pages are in `written`
      recorder.close();
      const written = pagesIn(snap.image.workingSet!.written);
      assert.ok(written.length >= HEAP / 4096, `the heap's pages were recorded as written (${written.length})`);

      const sb = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
      try {
        for (const seed of [11, 13]) {
          assert.equal(sb.callSync("heap_fill", HEAP, seed), true);
          sb.callSync("bump");
          sb.restore(snap);
          if (mode === "log" && seed === 13) assert.equal(machineOf(sb).restoredFromLog, true, "the second restore read the write log");
          assert.deepEqual(pagesDifferingFromImage(sb, snap), [], `after the restore from seed ${seed}`);
          assert.equal(sb.callSync("heap_check", 3), true);
          assert.equal(sb.callSync("get_counter"), 3);
        }
      } finally {
        sb.close();
      }
    } finally {
      setProcessRestoreMode("auto");
      setVmParking(true);
    }
  });
}

test("a saved snapshot keeps its working set; a layout without one loads and records one", { skip }, async () => {
  const snap = await heapSnapshot();
  await snap.save(root, "before");
  setVmParking(false);
  try {
    const sb = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
    sb.callSync("heap_check", 3);
    sb.close();
    await snap.save(root, "after");
    const loaded = await Snapshot.load(root, "after");
    assert.deepEqual(loaded.image.workingSet, snap.image.workingSet, "loaded as saved");
    const old = await Snapshot.load(root, "before");
    assert.equal(old.image.workingSet, undefined, "a layout without one");
    const fromOld = await Sandbox.fromSnapshot(old, { hostFunctions: [addOne] });
    assert.equal(fromOld.callSync("heap_check", 3), true);
    fromOld.close();
    assert.ok(old.image.workingSet, "recorded by its first sandbox");
  } finally {
    setVmParking(true);
  }
});

test("a malformed or oversized working set in a config blob is SNAPSHOT_INVALID", async () => {
  const { sb, snap } = await prepared();
  sb.close();
  const pages = snap.state.layout.memorySize / 4096;
  const config = (workingSet: unknown): Uint8Array => Buffer.from(JSON.stringify({ ...encodeConfig(snap.state), workingSet }));
  const good = { touched: [[16, 20], [30, 31]], written: [[16, 17]] };
  assert.deepEqual(decodeConfigBlob(config(good)).workingSet, { touched: Uint32Array.from([16, 20, 30, 31]), written: Uint32Array.from([16, 17]) });
  assert.equal(decodeConfigBlob(config(undefined)).workingSet, undefined, "optional");
  const hostile: Array<[string, unknown]> = [
    ["not an object", [1, 2]],
    ["a list missing", { touched: [[1, 2]] }],
    ["beyond guest memory", { touched: [[0, pages + 1]], written: [] }],
    ["an empty range", { touched: [[5, 5]], written: [] }],
    ["unsorted", { touched: [[10, 12], [2, 4]], written: [] }],
    ["overlapping", { touched: [[2, 10], [8, 12]], written: [] }],
    ["a pair of three", { touched: [[2, 3, 4]], written: [] }],
    ["a fraction", { touched: [[2.5, 4]], written: [] }],
    ["too many ranges", { touched: Array.from({ length: 129 }, (_, i) => [2 * i, 2 * i + 1]), written: [] }],
  ];
  for (const [what, value] of hostile) {
    assert.throws(() => decodeConfigBlob(config(value)), (e: unknown) => e instanceof SnapshotInvalidError && /workingSet/.test(e.message), what);
  }
});

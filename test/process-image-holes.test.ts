/**
 * A snapshot image is a memfd whose holes read as zeros, mapped shared and read-only as the
 * source of restores: reading a hole through that mapping allocates it. The process backend
 * must never do that, or an image (and every sandbox its compare restores visit) would grow
 * by each page any guest wrote: neither a restore through the write log, nor the working-set
 * recording of a first call, may add data to the image.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { backendInfo, Sandbox, type Snapshot } from "../src/index.js";
import { imageFileOf } from "../src/mem/image-files.js";
import { loadAddon } from "../src/native/addon.js";
import { setProcessRestoreMode } from "../src/hypervisor/process/process-machine.js";
import { setVmParking } from "../src/sandbox/parked-vms.js";
import { addOne, buildSnapshotGuest } from "./snapshot-guest.js";

const skip = backendInfo().name === "process" ? false : "the process backend's restores (this run uses another backend)";
if (skip) console.log(`# skipped: ${skip}`);

const HEAP = 32 << 20;

/** Bytes the image file holds data for, read from the file now (not the image's cached ranges). */
function imageDataBytes(snap: Snapshot): number {
  const view = snap.image.view;
  const ranges = loadAddon().dataRanges(imageFileOf(view)!, view.byteLength);
  let bytes = 0;
  for (let i = 0; i < ranges.length; i += 2) bytes += ranges[i + 1]! - ranges[i]!;
  return bytes;
}

/** Pages where guest memory differs from the image, reading the image only where it holds data (zeros elsewhere). */
function pagesOffImage(sb: Sandbox, snap: Snapshot): number[] {
  const memory = (sb as unknown as { vm: { memory: Uint8Array } }).vm.memory;
  const view = snap.image.view;
  const data = loadAddon().dataRanges(imageFileOf(view)!, view.byteLength);
  const controlBlock = (sb as unknown as { parts: { layout: { controlBlock: number } } }).parts.layout.controlBlock;
  const off: number[] = [];
  const zero = new Uint8Array(4096);
  for (let at = 0; at < memory.byteLength; at += 4096) {
    if (at === controlBlock) continue; // the host's fields (RNG seed, …) differ after every restore
    let inData = false;
    for (let i = 0; i < data.length && !inData; i += 2) inData = data[i]! <= at && at < data[i + 1]!;
    const expected = inData ? view.subarray(at, at + 4096) : zero;
    if (Buffer.compare(memory.subarray(at, at + 4096), expected) !== 0) off.push(at / 4096);
  }
  return off;
}

test("a first call that writes most of the heap leaves the image's holes alone (working-set recording)", { skip }, async () => {
  const built = await buildSnapshotGuest(HEAP + (4 << 20));
  const snap = built.snapshot();
  built.close();
  const before = imageDataBytes(snap);
  setVmParking(false); // a new child, whose write log was never taken
  try {
    const sb = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
    assert.equal(sb.callSync("heap_fill", HEAP, 9), true);
    sb.close();
    assert.ok(snap.image.workingSet, "the first call recorded a working set");
    assert.equal(imageDataBytes(snap), before, "the image holds the data it held");
  } finally {
    setVmParking(true);
  }
});

for (const mode of ["log", "auto"] as const) {
  test(`restores through the write log (${mode}) zero the guest's pages where the image has holes, and leave the image as it was`, { skip }, async () => {
    setProcessRestoreMode(mode);
    try {
      const sb = await buildSnapshotGuest(HEAP + (4 << 20));
      try {
        const snap = sb.snapshot();
        const before = imageDataBytes(snap);
        for (let round = 0; round < 3; round++) {
          assert.equal(sb.callSync("heap_fill", HEAP, round + 1), true);
          sb.restore(snap);
          assert.deepEqual(pagesOffImage(sb, snap), [], "memory equals the image again");
        }
        assert.equal(imageDataBytes(snap), before);
      } finally {
        sb.close();
      }
    } finally {
      setProcessRestoreMode("auto");
    }
  });
}

/**
 * Tripwire for the on-disk snapshot format. Every value here is part of the format:
 * saved snapshots (and the goldens in test/golden) depend on it. If this test fails
 * because you changed one, read docs/snapshot-versioning.md: either keep a loader path
 * for the old value, or make a deliberate break (bump SNAPSHOT_FORMAT_VERSION and/or
 * ABI_VERSION, regenerate the goldens with `npm run golden:regenerate`), then update
 * the pins here in the same commit.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import * as abi from "../src/abi/constants.js";
import { SYSTEM } from "../src/mem/layout.js";
import * as format from "../src/snapshot/file/format.js";
import * as diff from "../src/snapshot/file/diff-layer.js";
import { SNAPSHOT_STATE_VERSION } from "../src/snapshot/snapshot.js";
import { encodeConfig } from "../src/snapshot/file/config-blob.js";

const READ = "a snapshot-format constant changed: read docs/snapshot-versioning.md before updating this pin";

test("format and ABI versions", () => {
  assert.equal(format.SNAPSHOT_FORMAT_VERSION, 1, READ);
  assert.equal(SNAPSHOT_STATE_VERSION, 1, READ);
  assert.equal(abi.ABI_VERSION, 1, READ);
  assert.equal(format.OCI_LAYOUT_VERSION, "1.0.0", READ);
});

test("media types, file names and annotation keys", () => {
  assert.deepEqual(format.MEDIA_TYPE, {
    index: "application/vnd.oci.image.index.v1+json",
    manifest: "application/vnd.oci.image.manifest.v1+json",
    artifact: "application/vnd.vmlet.snapshot.v1",
    config: "application/vnd.vmlet.snapshot.config.v1+json",
    memory: "application/vnd.vmlet.snapshot.memory.v1",
    memoryDiff: "application/vnd.vmlet.snapshot.memory-diff.v1",
    guestElf: "application/vnd.vmlet.snapshot.guest-elf.v1",
  }, READ);
  assert.deepEqual([format.OCI_LAYOUT_FILE, format.INDEX_FILE, format.BLOBS_DIR, format.LOCK_FILE, format.TEMP_PREFIX],
    ["oci-layout", "index.json", "blobs/sha256", ".vmlet.lock", ".tmp-"], READ);
  assert.equal(format.ANNOTATION.refName, "org.opencontainers.image.ref.name", READ);
});

test("the diff layer's binary format and the chain limit", () => {
  assert.deepEqual([diff.DIFF_MAGIC, diff.DIFF_VERSION, diff.DIFF_HEADER_BYTES, format.MAX_MEMORY_LAYERS], ["VMLETDIF", 1, 128, 64], READ);
  const prefix = diff.encodeDiffPrefix({ memorySize: 0x200000, pageCount: 2, base: `sha256:${"0".repeat(64)}` }, Uint32Array.of(3, 511));
  assert.equal(Buffer.from(prefix.subarray(0, 136)).toString("hex"),
    "564d4c4554444946" + "01000000" + "00100000" + "0000200000000000" + "0200000000000000" +
    Buffer.from(`sha256:${"0".repeat(64)}`).toString("hex") + "00".repeat(25) + "03000000" + "ff010000", READ);
  assert.deepEqual(diff.diffGeometry(2), { dataOffset: 4096, size: 3 * 4096 }, READ);
});

test("guest ports and memory layout constants a snapshot's memory depends on", () => {
  assert.deepEqual([abi.PORT_READY, abi.PORT_HOST_CALL, abi.PORT_LOG, abi.PORT_ABORT, abi.PORT_FAULT_BASE], [0x10, 0x11, 0x12, 0x13, 0x20], READ);
  assert.deepEqual([abi.CONTROL_BLOCK_ADDRESS, abi.IMAGE_BASE, abi.CONTROL_MAGIC, abi.MESSAGE_MAGIC], [0x10000, 0x100000, 0x544c4d56, 0x4d4c4d56], READ);
  assert.deepEqual(SYSTEM, { gdt: 0x1000, tss: 0x1100, idt: 0x2000, stubs: 0x3000, ring0Stack: { start: 0x5000, top: 0x8000 }, istStack: { start: 0x9000, top: 0xa000 } }, READ);
  assert.deepEqual(abi.CB, {
    magic: 0x00, abiVersion: 0x04, inputAddress: 0x08, inputSize: 0x10, outputSize: 0x14, outputAddress: 0x18, heapAddress: 0x20,
    heapSize: 0x28, maxLogLevel: 0x30, fpuXsaveMask: 0x34, rngSeed: 0x38, rngGeneration: 0x40, fnTableAddress: 0x48, fnCount: 0x50, guestAbi: 0x54, heapUsed: 0x58, heapPeak: 0x60, size: 0x68,
  }, READ);
});

test("the config blob's field names", () => {
  const fields = Object.keys(encodeConfig({
    version: 1, lineage: "x", generation: 1,
    layout: { memorySize: 0, regions: [], controlBlock: 0, input: { address: 0, size: 0 }, output: { address: 0, size: 0 }, heap: { address: 0, size: 0 }, stack: { bottom: 0, top: 0 }, pageTables: { address: 0, size: 0 } },
    system: { pml4Address: 0, gdt: { base: 0, limit: 0 }, idt: { base: 0, limit: 0 }, tss: { base: 0, limit: 0, selector: 0 }, userCodeSelector: 0, userDataSelector: 0 },
    cpu: { gprs: new BigUint64Array(16), rip: 0n, rflags: 2n, fsBase: 0n, gsBase: 0n, xsave: new Uint8Array(4096) },
    guestCpu: { vendor: "", features: [] }, takenBy: { name: "kvm", flavour: "pvm" },
    functions: [], hostFunctions: [], maxGuestLogLevel: "info", createdAt: new Date(0),
  }));
  assert.deepEqual(fields, [
    "formatVersion", "abiVersion", "arch", "vmletVersion", "created", "takenBy", "lineage", "generation", "guestCpu", "cpuState",
    "entryPoint", "layout", "system", "functions", "hostFunctions", "maxGuestLogLevel",
  ], READ);
});

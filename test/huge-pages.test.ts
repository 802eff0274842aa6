/**
 * Huge pages (issue 15 part 3; mem/huge-pages.ts): the guest's page tables in their "2m"
 * form (2 MiB leaves over whole aligned 2 MiB ranges of one region), huge-page-advised host
 * memory that maps a snapshot image only where it has data, and the `hugePages` option.
 * A guest must compute exactly the same with and without huge pages, and a restore must
 * still put back exactly the 4 KiB pages written.
 */
import assert from "node:assert/strict";
import { writeSync } from "node:fs";
import { test } from "node:test";
import { IMAGE_BASE } from "../src/abi/constants.js";
import { createSandbox, InvalidConfigError, Sandbox, SandboxBuilder, type SandboxConfig, type Snapshot } from "../src/index.js";
import { walkPageTables } from "../src/hypervisor/process/page-walk.js";
import { GuestMemory } from "../src/mem/guest-memory.js";
import { imageSpans } from "../src/mem/image-spans.js";
import { computeLayout, PAGE, type MemoryLayout } from "../src/mem/layout.js";
import { buildPageTables, pageTableBytes, usesLargeLeaves } from "../src/mem/page-tables.js";
import { findForeignSupervisorPage } from "../src/mem/supervisor-pages.js";
import { writeSystemTables } from "../src/mem/system-tables.js";
import { MemoryImage } from "../src/snapshot/memory-image.js";
import { guestPath } from "./helpers.js";
import { buildSnapshotGuest } from "./snapshot-guest.js";

const MIB = 2 ** 20;
const TWO_MIB = 2 * MIB;
const FRAME_4K = 0x000ffffffffff000n;
const PRESENT = 1n, WRITABLE = 2n, USER = 4n, LARGE = 0x80n, NX = 1n << 63n;

function layoutWithHeap(heapSize: number): MemoryLayout {
  return computeLayout({
    image: [{ start: IMAGE_BASE, size: PAGE, access: "user-rx" }, { start: IMAGE_BASE + PAGE, size: PAGE, access: "user-rw" }],
    imageEnd: IMAGE_BASE + 2 * PAGE, inputSize: PAGE, outputSize: PAGE, heapSize, stackSize: 16 * PAGE,
  });
}

const entry = (memory: Uint8Array, table: number, index: number): bigint => new DataView(memory.buffer, memory.byteOffset + table, PAGE).getBigUint64(index * 8, true);

/** Walks the tables for `address`: the frame it maps to, the leaf's level (1: 4 KiB, 2: 2 MiB) and the leaf entry; undefined when not present. */
function translate(memory: Uint8Array, pml4: number, address: number): { frame: number; level: number; leaf: bigint } | undefined {
  let table = pml4;
  for (const [level, shift] of [[4, 39], [3, 30], [2, 21], [1, 12]] as const) {
    const e = entry(memory, table, Math.floor(address / 2 ** shift) % 512);
    if ((e & PRESENT) === 0n) return undefined;
    if (level === 2 && (e & LARGE) !== 0n) return { frame: Number(e & 0x000fffffffe00000n) + (address % TWO_MIB), level, leaf: e };
    if (level === 1) return { frame: Number(e & FRAME_4K) + (address % PAGE), level, leaf: e };
    table = Number(e & FRAME_4K);
  }
  return undefined;
}

function built(layout: MemoryLayout, form: "4k" | "2m"): { memory: Uint8Array; pml4: number } {
  const memory = new Uint8Array(layout.memorySize); // zero pages, reserved lazily: only the tables are touched
  writeSystemTables(memory);
  return { memory, pml4: buildPageTables(memory, layout, form) };
}

test("2m tables: every aligned 2 MiB of the heap is one user, writable, no-execute leaf mapping itself; its ragged ends stay 4 KiB", () => {
  const layout = layoutWithHeap(64 * MIB);
  const { memory, pml4 } = built(layout, "2m");
  const { address, size } = layout.heap;
  const firstLarge = Math.ceil(address / TWO_MIB) * TWO_MIB, endLarge = Math.floor((address + size) / TWO_MIB) * TWO_MIB;
  assert.ok(endLarge - firstLarge >= 60 * MIB, "the heap holds at least 30 aligned 2 MiB ranges");
  for (let at = firstLarge; at < endLarge; at += TWO_MIB) {
    const t = translate(memory, pml4, at + 0x1234)!;
    assert.equal(t.level, 2, `0x${at.toString(16)} is a 2 MiB leaf`);
    assert.equal(t.frame, at + 0x1234, "identity-mapped");
    assert.equal(t.leaf & (PRESENT | WRITABLE | USER | NX | 0x60n), PRESENT | WRITABLE | USER | NX | 0x60n, "user, writable, no-execute, accessed and dirty preset");
    assert.equal(t.leaf & 0x1ff000n, 0n, "PAT and reserved bits clear");
  }
  for (const at of [address, firstLarge - PAGE, endLarge, address + size - PAGE]) {
    if (at < address || at >= address + size) continue;
    assert.deepEqual([translate(memory, pml4, at)?.level, translate(memory, pml4, at)?.frame], [1, at], `0x${at.toString(16)} (a ragged end) is a 4 KiB leaf`);
  }
  assert.equal(translate(memory, pml4, address - PAGE), undefined, "the guard page below the heap stays absent");
  assert.equal(translate(memory, pml4, address + size), undefined, "the guard page above the heap stays absent");
});

test("2m and 4k tables give every page of every region the same frame and access", () => {
  const layout = layoutWithHeap(40 * MIB + 3 * PAGE);
  const small = built(layout, "4k"), large = built(layout, "2m");
  const ACCESS_BITS = PRESENT | WRITABLE | USER | NX;
  for (let at = 0; at < layout.memorySize; at += PAGE) {
    const a = translate(small.memory, small.pml4, at), b = translate(large.memory, large.pml4, at);
    assert.equal(b?.frame, a?.frame, `frame of 0x${at.toString(16)}`);
    if (a && b) assert.equal(b.leaf & ACCESS_BITS, a.leaf & ACCESS_BITS, `access of 0x${at.toString(16)}`);
  }
  assert.deepEqual(walkPageTables(large.memory, large.pml4), walkPageTables(small.memory, small.pml4), "the process backend maps the same");
  assert.equal(usesLargeLeaves(layout, (s, n) => large.memory.subarray(s, s + n)), true);
  assert.equal(usesLargeLeaves(layout, (s, n) => small.memory.subarray(s, s + n)), false);
});

test("hostile 2 MiB leaves are refused by the process backend's walk with a typed error", () => {
  const layout = layoutWithHeap(40 * MIB);
  const chunk = Math.ceil(layout.heap.address / TWO_MIB);
  const cases: Array<[string, (view: DataView, at: number) => void]> = [
    ["a 2 MiB leaf that is not identity-mapped", (v, at) => v.setUint32(at, v.getUint32(at, true) + TWO_MIB, true)],
    ["a 2 MiB leaf with PAT set", (v, at) => v.setUint32(at, v.getUint32(at, true) | 0x1000, true)],
    ["a 2 MiB leaf past the end of guest memory", (v, at) => v.setUint32(at + 4, 1, true)],
    ["a writable and executable 2 MiB leaf", (v, at) => v.setUint32(at + 4, 0, true)],
  ];
  for (const [what, corrupt] of cases) {
    const { memory, pml4 } = built(layout, "2m");
    corrupt(new DataView(memory.buffer), layout.pageTables.address + 2 * PAGE + chunk * 8);
    assert.throws(() => walkPageTables(memory, pml4), { code: "HYPERVISOR" }, what);
  }
});

test("a small layout has no 2 MiB range inside one region: its 2m tables are its 4k tables", () => {
  const layout = layoutWithHeap(64 * PAGE);
  assert.deepEqual(pageTableBytes(layout, "2m"), pageTableBytes(layout, "4k"));
});

test("supervisor pages: 2m tables are vmlet's own; a 2 MiB leaf changed or a 4 KiB one left behind is foreign", () => {
  const layout = layoutWithHeap(64 * MIB);
  const { memory } = built(layout, "2m");
  const read = (start: number, length: number): Uint8Array => memory.slice(start, start + length);
  assert.equal(findForeignSupervisorPage(layout, read), undefined);
  const pd = layout.pageTables.address + 2 * PAGE;
  const heapChunk = Math.ceil(layout.heap.address / TWO_MIB);
  memory[pd + heapChunk * 8 + 7] = 0; // NX cleared: an executable heap
  assert.deepEqual(findForeignSupervisorPage(layout, read), { address: pd, region: "page tables" });
  const fresh = built(layout, "2m").memory;
  const fourK = pageTableBytes(layout, "4k");
  const ptBase = layout.pageTables.address + 3 * PAGE;
  // A page table the 2m form leaves zero, filled as in the 4k form: foreign (only the form's exact bytes pass).
  const offset = ptBase - layout.pageTables.address + heapChunk * PAGE;
  fresh.set(fourK.subarray(offset, offset + PAGE), ptBase + heapChunk * PAGE);
  assert.deepEqual(findForeignSupervisorPage(layout, (s, n) => fresh.slice(s, s + n)), { address: ptBase + heapChunk * PAGE, region: "page tables" });
});

test("imageSpans: every 2 MiB range with data is mapped from the image; the largest empty stretches (at most 8) stay anonymous", () => {
  const size = 64 * TWO_MIB;
  assert.deepEqual(imageSpans([], size), []);
  assert.deepEqual(imageSpans([0, PAGE, size - PAGE, size], size), [[0, TWO_MIB], [size - TWO_MIB, size]]);
  assert.deepEqual(imageSpans([TWO_MIB - PAGE, TWO_MIB + PAGE], size), [[0, 2 * TWO_MIB]], "a range across a boundary takes both");
  // Data in every other chunk: 32 one-chunk holes, of which 8 stay anonymous.
  const ranges = Array.from({ length: 32 }, (_, i) => [2 * i * TWO_MIB, 2 * i * TWO_MIB + PAGE]).flat();
  const spans = imageSpans(ranges, size);
  const mapped = spans.reduce((sum, [s, e]) => sum + (e - s), 0);
  assert.equal(mapped, size - 8 * TWO_MIB, "8 holes left anonymous");
  assert.ok(spans.length <= 9, `${spans.length} mappings`);
  for (let r = 0; r < ranges.length; r += 2) assert.ok(spans.some(([s, e]) => s <= ranges[r]! && ranges[r + 1]! <= e), `data at 0x${ranges[r]!.toString(16)} is mapped`);
});

test("huge-page-advised anonymous memory (KVM's) mapped from an image holds the image, nothing of its last guest, and writes stay private", () => {
  const size = 16 * TWO_MIB;
  const source = new Uint8Array(size);
  for (const at of [0x1000, 5 * TWO_MIB + 0x3000, size - PAGE]) source.fill(0x5a, at, at + PAGE);
  const image = MemoryImage.capture(source);
  const memory = GuestMemory.allocate(size, true);
  try {
    memory.bytes.fill(0xee); // a last guest's data, everywhere
    memory.mapImage(image);
    assert.ok(Buffer.from(memory.bytes).equals(Buffer.from(source)), "memory equals the image");
    memory.bytes.fill(1, 9 * TWO_MIB, 10 * TWO_MIB); // an anonymous stretch
    memory.bytes[5 * TWO_MIB + 0x3000] = 2; // a page mapped from the image
    assert.equal(image.read(5 * TWO_MIB + 0x3000, 1)[0], 0x5a, "the image is unchanged");
    memory.mapImage(image);
    assert.ok(Buffer.from(memory.bytes).equals(Buffer.from(source)), "mapped again: the image once more");
    // The image's empty 2 MiB ranges are anonymous memory (where THP applies), not the image
    // file: bytes written into the file there afterwards do not show through (they would
    // through a private mapping of the file, as in the "off" form).
    writeSync(image.fd, new Uint8Array(PAGE).fill(3), 0, PAGE, 9 * TWO_MIB);
    writeSync(image.fd, new Uint8Array(PAGE).fill(3), 0, PAGE, 5 * TWO_MIB + 0x5000);
    assert.equal(memory.bytes[9 * TWO_MIB], 0, "an empty range is not the image file's");
    assert.equal(memory.bytes[5 * TWO_MIB + 0x5000], 3, "a range with data is (copy-on-write, O(1))");
  } finally {
    memory.release();
  }
});

test("hugePages is validated: anything but \"auto\", \"off\" or \"on\" is INVALID_CONFIG naming it", async () => {
  for (const value of ["yes", "", true, 1, null, {}]) {
    await assert.rejects(() => createSandbox({ guest: "never-read.elf", hugePages: value } as unknown as SandboxConfig), (e: unknown) => e instanceof InvalidConfigError && e.code === "INVALID_CONFIG" && e.message.includes("hugePages"));
    await assert.rejects(() => new SandboxBuilder().guest("never-read.elf").hugePages(value as never).build(), InvalidConfigError);
  }
  const sb = await buildSnapshotGuest();
  try {
    const snap = sb.snapshot();
    await assert.rejects(() => Sandbox.fromSnapshot(snap, { hugePages: "always" as never }), (e: unknown) => e instanceof InvalidConfigError && e.message.includes("hugePages"));
  } finally {
    sb.close();
  }
});

const layoutOf = (sb: Sandbox): MemoryLayout => (sb as unknown as { parts: { layout: MemoryLayout } }).parts.layout;
const memoryOf = (sb: Sandbox): Uint8Array => (sb as unknown as { vm: { memory: Uint8Array } }).vm.memory;
const tablesAreLarge = (sb: Sandbox): boolean => usesLargeLeaves(layoutOf(sb), (s, n) => memoryOf(sb).subarray(s, s + n));

/** A heap-heavy run: fills 40 MiB of heap, touches every heap page, checks the fill; the heap's bytes after it. */
function heapRun(sb: Sandbox): { results: unknown[]; heap: Buffer } {
  const { address, size } = layoutOf(sb).heap;
  const results = [
    sb.callSync("heap_fill", 40 * MIB, 9),
    sb.callSync("heap_check", 9),
    sb.callSync("bump"),
  ];
  const heap = Buffer.from(memoryOf(sb).subarray(address, address + size));
  return { results, heap };
}

test("a heap-heavy guest computes the same with hugePages off and on, built and from a snapshot", async () => {
  const runs: Array<{ results: unknown[]; heap: Buffer; restored: unknown[] }> = [];
  for (const hugePages of ["off", "on"] as const) {
    const sb = await createSandbox({ guest: guestPath("snapshot"), heapSize: 64 * MIB, hugePages });
    let snap: Snapshot | undefined;
    let again: Sandbox | undefined;
    try {
      assert.equal(tablesAreLarge(sb), hugePages === "on", `${hugePages}: the guest's tables are in the ${hugePages === "on" ? "2m" : "4k"} form`);
      snap = sb.snapshot();
      const run = heapRun(sb);
      again = await Sandbox.fromSnapshot(snap, { hugePages });
      const restored = heapRun(again);
      assert.deepEqual(restored.results, run.results, `${hugePages}: a sandbox from the snapshot computes the same`);
      assert.ok(restored.heap.equals(run.heap), `${hugePages}: and leaves the same heap`);
      sb.restore(snap);
      runs.push({ ...run, restored: heapRun(sb).results });
    } finally {
      again?.close();
      sb.close();
    }
  }
  assert.deepEqual(runs[1]!.results, runs[0]!.results, "results");
  assert.deepEqual(runs[1]!.restored, runs[0]!.restored, "results after a restore");
  assert.ok(runs[1]!.heap.equals(runs[0]!.heap), "the heap's bytes");
});

test("a restore after writes in a 2 MiB-mapped, huge-page-backed heap copies back exactly the 4 KiB pages written", async () => {
  const sb = await createSandbox({ guest: guestPath("snapshot"), heapSize: 16 * MIB, hugePages: "on" });
  try {
    const snap = sb.snapshot();
    const heap = layoutOf(sb).heap;
    const start = Math.ceil(heap.address / TWO_MIB) * TWO_MIB; // a 2 MiB leaf of the guest's tables
    /** Writes `pages` pages `stride` bytes apart (one call each), restores; the pages copied. */
    const copied = (pages: number, stride: number): number => {
      for (let i = 0; i < pages; i++) sb.callSync("touch_range", BigInt(start + i * stride), BigInt(PAGE), 0x77);
      const report = sb.restore(snap);
      const memory = Buffer.from(memoryOf(sb).subarray(start, start + 4 * TWO_MIB));
      assert.ok(memory.equals(Buffer.from(snap.image.read(start, 4 * TWO_MIB))), "the heap equals the snapshot again");
      return report.pagesCopied;
    };
    copied(1, PAGE); // the first restore after a snapshot may also put back pages the snapshot itself wrote
    const one = copied(1, PAGE);
    const sixtyFour = copied(64, PAGE);
    const spread = copied(4, TWO_MIB); // one page in each of four 2 MiB ranges
    assert.equal(sixtyFour - one, 63, `64 pages written, 63 more copied than for one (${one} → ${sixtyFour})`);
    assert.equal(spread - one, 3, `one page in each of four 2 MiB ranges: 3 more than for one (${spread}), not whole 2 MiB pages`);
  } finally {
    sb.close();
  }
});

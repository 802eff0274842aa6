/**
 * The process backend's child maps what the guest's page tables give user code
 * (src/hypervisor/process/page-walk.ts): checked on tables vmlet builds, including frames
 * above 2 GiB (where 32-bit arithmetic would go negative), and on hostile tables: entries
 * outside guest memory, non-identity frames, large pages, W+X pages.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { IMAGE_BASE } from "../src/abi/constants.js";
import { computeLayout } from "../src/mem/layout.js";
import { buildPageTables } from "../src/mem/page-tables.js";
import { walkPageTables } from "../src/hypervisor/process/page-walk.js";

const PAGE = 4096;

function built(heapSize: number): { memory: Uint8Array; pml4: number; layout: ReturnType<typeof computeLayout> } {
  const layout = computeLayout({
    image: [{ start: IMAGE_BASE, size: PAGE, access: "user-rx" }, { start: IMAGE_BASE + PAGE, size: PAGE, access: "user-rw" }],
    imageEnd: IMAGE_BASE + 2 * PAGE, inputSize: PAGE, outputSize: PAGE, heapSize, stackSize: 16 * PAGE,
  });
  const memory = new Uint8Array(layout.memorySize);
  return { memory, pml4: buildPageTables(memory, layout), layout };
}

test("the mappings are the layout's user regions with their access; supervisor pages are present but not mapped", () => {
  const { memory, pml4, layout } = built(64 * PAGE);
  const { mappings, present } = walkPageTables(memory, pml4);
  const protOf = (address: number): number | undefined => mappings.find((m) => address >= m.start && address < m.start + m.size)?.prot;
  assert.equal(protOf(IMAGE_BASE), 5, "code: read + execute");
  assert.equal(protOf(IMAGE_BASE + PAGE), 3, "data: read + write");
  assert.equal(protOf(layout.heap.address), 3);
  assert.equal(protOf(layout.stack.top - PAGE), 3);
  assert.equal(protOf(0x1000), undefined, "the GDT page is not mapped");
  assert.equal(present[0x1000 / PAGE], 1, "but it is present: a fault there is a protection violation");
  assert.equal(present[0], 0, "the null page is not present");
  assert.equal(protOf(layout.stack.bottom - PAGE), undefined, "the guard page below the stack");
});

test("frames above 2 GiB are read as the addresses they are (no 32-bit sign)", () => {
  const { memory, pml4, layout } = built(2 * 2 ** 30 + 64 * PAGE);
  const { mappings } = walkPageTables(memory, pml4);
  const stack = mappings.find((m) => m.start <= layout.stack.top - PAGE && layout.stack.top - PAGE < m.start + m.size);
  assert.ok(layout.stack.top > 2 ** 31);
  assert.equal(stack?.prot, 3);
});

test("hostile tables are refused with a typed error", () => {
  const cases: Array<[string, (words: Uint32Array, pml4: number) => void]> = [
    ["a PML4 entry outside guest memory", (w, pml4) => (w[pml4 / 4] = 0x7fff_f000 | 7)],
    ["a second PML4 entry", (w, pml4) => (w[pml4 / 4 + 2] = 7)],
    ["a page that is not identity-mapped", (w) => flipFrame(w, IMAGE_BASE / PAGE)],
    ["a writable and executable page", (w) => makeWritableExecutable(w, IMAGE_BASE / PAGE)],
    ["a page table at the first page past guest memory", (w, pml4) => pointFirstPageTableAt(w, pml4, w.byteLength)],
    ["a 1 GiB page", (w, pml4) => (w[(w[pml4 / 4]! & 0xffff_f000) / 4] = 0x87)],
    ["a 2 MiB page with PAT or reserved bits", (w, pml4) => {
      const pd = pageDirectoryOf(w, pml4);
      w[pd / 4] = (0x80 | 0x1000 | 7) >>> 0; // 2 MiB leaf at 0 with bit 12 (PAT) set
    }],

  ];
  for (const [what, corrupt] of cases) {
    const { memory, pml4 } = built(64 * PAGE);
    const words = new Uint32Array(memory.buffer);
    ptWords = ptBaseOf(words, pml4);
    corrupt(words, pml4);
    assert.throws(() => walkPageTables(memory, pml4), { code: "HYPERVISOR" }, what);
  }
});

/** Index (in 32-bit words) of the first page table, found by walking from the PML4. */
let ptWords = 0;
function ptBaseOf(words: Uint32Array, pml4: number): number {
  const pdpt = words[pml4 / 4]! & 0xffff_f000;
  const pd = words[pdpt / 4]! & 0xffff_f000;
  return (words[pd / 4]! & 0xffff_f000) / 4;
}
function flipFrame(words: Uint32Array, page: number): void {
  words[ptWords + page * 2] = ((words[ptWords + page * 2]! + PAGE) >>> 0);
}
function makeWritableExecutable(words: Uint32Array, page: number): void {
  words[ptWords + page * 2] = (words[ptWords + page * 2]! | 2) >>> 0;
  words[ptWords + page * 2 + 1] = 0;
}

function pageDirectoryOf(words: Uint32Array, pml4: number): number {
  return words[(words[pml4 / 4]! & 0xffff_f000) / 4]! & 0xffff_f000;
}
/** Points the first page-directory entry at a page table at `address` (keeping its flags). */
function pointFirstPageTableAt(words: Uint32Array, pml4: number, address: number): void {
  const pd = pageDirectoryOf(words, pml4);
  words[pd / 4] = ((address & 0xffff_f000) | (words[pd / 4]! & 0xfff)) >>> 0;
}

test("a page user code may not reach through its directory entry is not mapped for it", () => {
  const { memory, pml4 } = built(64 * PAGE);
  const words = new Uint32Array(memory.buffer);
  const pd = pageDirectoryOf(words, pml4);
  words[pd / 4] = (words[pd / 4]! & ~4) >>> 0; // the first 2 MiB: supervisor-only at the directory
  const { mappings, present } = walkPageTables(memory, pml4);
  assert.equal(mappings.find((m) => m.start < 2 * 2 ** 20), undefined, "nothing below 2 MiB is mapped for user code");
  assert.equal(present[IMAGE_BASE / PAGE], 1, "though its pages stay present");
});

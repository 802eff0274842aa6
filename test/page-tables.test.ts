/**
 * Page-table entries above 4 GiB (issue 11, item 3's class of bug: addresses combined
 * with 32-bit operators). With a large heap the tables themselves lie above 4 GiB; every
 * entry must still point at the right frame. The tables are built into a sparse buffer
 * and walked here: no KVM needed.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { computeLayout, PAGE } from "../src/mem/layout.js";
import { buildPageTables } from "../src/mem/page-tables.js";

const GIB = 2 ** 30;
const FRAME = 0x000ffffffffff000n; // bits 12..51

/** The 64-bit entry `index` of the table at `tableAddress`. */
function entry(buffer: ArrayBuffer, tableAddress: number, index: number): bigint {
  return new DataView(buffer, tableAddress, PAGE).getBigUint64(index * 8, true);
}

/** Walks the four levels for `address`; returns the physical frame it maps to. */
function translate(buffer: ArrayBuffer, pml4: number, address: number): number {
  let table = pml4;
  const indexes = [39, 30, 21, 12].map((shift) => Math.floor(address / 2 ** shift) % 512);
  for (const [level, index] of indexes.entries()) {
    const e = entry(buffer, table, index);
    assert.equal(e & 1n, 1n, `level ${level} entry for 0x${address.toString(16)} is not present`);
    table = Number(e & FRAME);
  }
  return table;
}

test("with the page tables above 4 GiB, every level points at the right table and frame", () => {
  const layout = computeLayout({ image: [{ start: 0x100000, size: PAGE, access: "user-rx" }], imageEnd: 0x101000, inputSize: PAGE, outputSize: PAGE, heapSize: 5 * GIB, stackSize: 64 << 10 });
  assert.ok(layout.pageTables.address > 4 * GIB, "the layout puts the tables above 4 GiB");
  const buffer = new ArrayBuffer(layout.memorySize); // zero pages, reserved lazily: only the tables are touched
  const pml4 = buildPageTables(new Uint8Array(buffer, 0, PAGE), layout);
  for (const address of [0x100000, layout.heap.address, layout.heap.address + 4 * GIB, layout.stack.top - PAGE]) {
    assert.equal(translate(buffer, pml4, address), address, `0x${address.toString(16)} maps to itself`);
  }
});

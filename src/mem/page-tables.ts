/**
 * Builds the guest's 4-level identity-mapped page tables (4 KiB pages) from the
 * layout's regions. Upper levels allow everything; each leaf carries its page's
 * access, so user pages, supervisor-only pages, W^X and guards are per page.
 */
import { InvalidConfigError } from "../errors/errors.js";
import { PAGE, type Access, type MemoryLayout } from "./layout.js";

const PRESENT = 1;
const WRITABLE = 2;
const USER = 4;
/** Accessed and dirty are preset so the CPU never writes the tables: they stay out of dirty logs and clean across restores. */
const ACCESSED = 0x20;
const DIRTY = 0x40;
/** NX is bit 63: bit 31 of the high 32-bit half. */
const NX_HIGH = 0x80000000;

/** Low and high halves of a leaf entry's flags, per access kind. */
const LEAF_FLAGS: Record<Access, readonly [number, number]> = {
  "none": [0, 0],
  "kernel-rw": [PRESENT | WRITABLE | ACCESSED | DIRTY, NX_HIGH],
  "kernel-r": [PRESENT | ACCESSED, NX_HIGH],
  "kernel-rx": [PRESENT | ACCESSED, 0],
  "user-r": [PRESENT | USER | ACCESSED, NX_HIGH],
  "user-rw": [PRESENT | WRITABLE | USER | ACCESSED | DIRTY, NX_HIGH],
  "user-rx": [PRESENT | USER | ACCESSED, 0],
};

const ENTRIES = 512;
const TABLE_FLAGS = PRESENT | WRITABLE | USER | ACCESSED;

/**
 * The low and high halves of an entry pointing at the table at `address`. Split with
 * arithmetic: the tables follow the heap, so they can lie above 4 GiB, where `address |
 * flags` would keep only the low 32 bits and point the entry into guest-writable memory.
 */
function tableEntry(address: number): [number, number] {
  return [(address % 2 ** 32) + TABLE_FLAGS, Math.floor(address / 2 ** 32)];
}

/** Writes the page tables into guest memory; returns the PML4's guest address. */
export function buildPageTables(memory: Uint8Array, layout: MemoryLayout): number {
  const { address, size } = layout.pageTables;
  new Uint8Array(memory.buffer, memory.byteOffset + address, size).set(pageTableBytes(layout));
  return address;
}

/**
 * The bytes of the page-table region (layout.pageTables) for this layout: what
 * buildPageTables writes, and what a snapshot's tables must equal (mem/supervisor-pages.ts).
 */
export function pageTableBytes(layout: MemoryLayout): Uint8Array {
  const { address, size } = layout.pageTables;
  const words = new Uint32Array(size / 4);
  const pages = layout.memorySize / PAGE;
  const pts = Math.ceil(pages / ENTRIES);
  const pds = Math.ceil(pts / ENTRIES);
  if (pds > ENTRIES) throw new InvalidConfigError("guest memory above 512 GiB is not supported");
  const pml4 = address;
  const pdpt = pml4 + PAGE;
  const pdBase = pdpt + PAGE;
  const ptBase = pdBase + pds * PAGE;
  if (ptBase + pts * PAGE > address + size) throw new InvalidConfigError("page-table region too small for the layout");

  const put = (tableAddress: number, index: number, low: number, high: number): void => {
    const w = (tableAddress - address) / 4 + index * 2;
    words[w] = low;
    words[w + 1] = high;
  };
  put(pml4, 0, ...tableEntry(pdpt));
  for (let d = 0; d < pds; d++) put(pdpt, d, ...tableEntry(pdBase + d * PAGE));
  for (let t = 0; t < pts; t++) {
    put(pdBase + Math.floor(t / ENTRIES) * PAGE, t % ENTRIES, ...tableEntry(ptBase + t * PAGE));
  }
  const leaves = (ptBase - address) / 4; // word index of page 0's leaf entry
  for (const region of layout.regions) {
    const [low, high] = LEAF_FLAGS[region.access];
    for (let page = region.start / PAGE, end = (region.start + region.size) / PAGE; page < end; page++) {
      // Entries hold the frame address split across the two halves: bits 12..31 from the
      // page's low 20 bits, the rest from the page number above them (frames stay below 2^52).
      words[leaves + page * 2] = (page % 0x100000) * PAGE + low;
      words[leaves + page * 2 + 1] = (Math.floor(page / 0x100000) | high) >>> 0;
    }
  }
  return new Uint8Array(words.buffer);
}

/**
 * Builds the guest's 4-level identity-mapped page tables from the layout's regions. Upper
 * levels allow everything; each leaf carries its page's access, so user pages,
 * supervisor-only pages, W^X and guards are per page.
 *
 * Two forms, both a function of the layout alone: "4k" maps every page with a 4 KiB leaf;
 * "2m" maps each 2 MiB-aligned range that lies wholly inside one region with a 2 MiB leaf
 * in the page directory (a large heap is almost all such ranges), and the rest with 4 KiB
 * leaves as before. The 2m form keeps the 4k form's table addresses (its unused page
 * tables stay zero), so the layout is the same and a snapshot says which form it holds by
 * its own page-directory entries (usesLargeLeaves).
 */
import { InvalidConfigError } from "../errors/errors.js";
import { PAGE, type Access, type MemoryLayout } from "./layout.js";

/** Which leaves the tables use: 4 KiB everywhere, or 2 MiB wherever a region covers a whole aligned 2 MiB. */
export type TableForm = "4k" | "2m";

const PRESENT = 1;
const WRITABLE = 2;
const USER = 4;
/** Accessed and dirty are preset so the CPU never writes the tables: they stay out of dirty logs and clean across restores. */
const ACCESSED = 0x20;
const DIRTY = 0x40;
/** PS in a page-directory entry: the entry maps 2 MiB itself. */
const LARGE = 0x80;
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
const TWO_MIB = PAGE * ENTRIES;
const TABLE_FLAGS = PRESENT | WRITABLE | USER | ACCESSED;

/**
 * The low and high halves of an entry pointing at the table or frame at `address`. Split
 * with arithmetic: the tables follow the heap, so they can lie above 4 GiB, where
 * `address | flags` would keep only the low 32 bits and point the entry into
 * guest-writable memory.
 */
function entryHalves(address: number, low: number, high: number): [number, number] {
  return [(address % 2 ** 32) + low, (Math.floor(address / 2 ** 32) | high) >>> 0];
}

/** Where the tables of the layout lie: PML4, PDPT, the page directories, then one page table per 2 MiB. */
function tableAddresses(layout: MemoryLayout): { pml4: number; pdpt: number; pdBase: number; ptBase: number; pds: number; pts: number } {
  const { address, size } = layout.pageTables;
  const pts = Math.ceil(layout.memorySize / TWO_MIB);
  const pds = Math.ceil(pts / ENTRIES);
  if (pds > ENTRIES) throw new InvalidConfigError("guest memory above 512 GiB is not supported");
  const pml4 = address, pdpt = pml4 + PAGE, pdBase = pdpt + PAGE, ptBase = pdBase + pds * PAGE;
  if (ptBase + pts * PAGE > address + size) throw new InvalidConfigError("page-table region too small for the layout");
  return { pml4, pdpt, pdBase, ptBase, pds, pts };
}

/** Writes the page tables into guest memory; returns the PML4's guest address. */
export function buildPageTables(memory: Uint8Array, layout: MemoryLayout, form: TableForm = "4k"): number {
  const { address, size } = layout.pageTables;
  new Uint8Array(memory.buffer, memory.byteOffset + address, size).set(pageTableBytes(layout, form));
  return address;
}

/**
 * The bytes of the page-table region (layout.pageTables) for this layout in one form: what
 * buildPageTables writes, and what a snapshot's tables must equal (mem/supervisor-pages.ts).
 */
export function pageTableBytes(layout: MemoryLayout, form: TableForm = "4k"): Uint8Array {
  const { address, size } = layout.pageTables;
  const words = new Uint32Array(size / 4);
  const { pml4, pdpt, pdBase, ptBase, pds, pts } = tableAddresses(layout);
  const put = (tableAddress: number, index: number, [low, high]: [number, number]): void => {
    const w = (tableAddress - address) / 4 + index * 2;
    words[w] = low;
    words[w + 1] = high;
  };
  const large = form === "2m" ? largeChunks(layout) : new Map<number, Access>();
  put(pml4, 0, entryHalves(pdpt, TABLE_FLAGS, 0));
  for (let d = 0; d < pds; d++) put(pdpt, d, entryHalves(pdBase + d * PAGE, TABLE_FLAGS, 0));
  for (let t = 0; t < pts; t++) {
    const access = large.get(t);
    const pd = pdBase + Math.floor(t / ENTRIES) * PAGE;
    if (access === undefined) put(pd, t % ENTRIES, entryHalves(ptBase + t * PAGE, TABLE_FLAGS, 0));
    else put(pd, t % ENTRIES, entryHalves(t * TWO_MIB, LEAF_FLAGS[access][0] | LARGE, LEAF_FLAGS[access][1]));
  }
  const leaves = (ptBase - address) / 4; // word index of page 0's leaf entry
  for (const region of layout.regions) {
    const [low, high] = LEAF_FLAGS[region.access];
    for (let page = region.start / PAGE, end = (region.start + region.size) / PAGE; page < end; page++) {
      if (large.has(Math.floor(page / ENTRIES))) continue; // its page table is not used: it stays zero
      // Entries hold the frame address split across the two halves: bits 12..31 from the
      // page's low 20 bits, the rest from the page number above them (frames stay below 2^52).
      words[leaves + page * 2] = (page % 0x100000) * PAGE + low;
      words[leaves + page * 2 + 1] = (Math.floor(page / 0x100000) | high) >>> 0;
    }
  }
  return new Uint8Array(words.buffer);
}

/** The 2 MiB chunks (by number) that lie wholly inside one mapped region, with that region's access. */
export function largeChunks(layout: MemoryLayout): Map<number, Access> {
  const chunks = new Map<number, Access>();
  for (const region of layout.regions) {
    if (region.access === "none") continue;
    for (let c = Math.ceil(region.start / TWO_MIB), end = Math.floor((region.start + region.size) / TWO_MIB); c < end; c++) chunks.set(c, region.access);
  }
  return chunks;
}

/**
 * Whether the tables in memory use 2 MiB leaves: any present page-directory entry with
 * PS set. Reads only the page directories (`read` gives bytes of the memory at a guest
 * address). Which form they are is checked separately: the bytes must equal that form's.
 */
export function usesLargeLeaves(layout: MemoryLayout, read: (start: number, length: number) => Uint8Array): boolean {
  const { pdBase, pds, pts } = tableAddresses(layout);
  const bytes = read(pdBase, pds * PAGE);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let t = 0; t < pts; t++) if ((view.getUint32(t * 8, true) & (PRESENT | LARGE)) === (PRESENT | LARGE)) return true;
  return false;
}

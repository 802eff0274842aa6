/**
 * The guest mappings a process-backend child makes, read from the guest's own page
 * tables: every user page, at its own address, with the access its leaf entry gives
 * (read, write, execute). Supervisor pages (system tables, fault stubs, the tables
 * themselves) are left out: only a VM needs them. Runs of pages with one access become
 * one mapping. A 2 MiB leaf (mem/page-tables.ts, form "2m") counts as its 512 pages.
 *
 * The tables may come from a snapshot file, so nothing in them is trusted: only an
 * identity map inside guest memory is accepted, and no page may be writable and
 * executable at once.
 *
 * A walk of 1 GiB of 4 KiB leaves costs ~2 ms of JS, so memory mapped from a snapshot
 * image reuses the walk of the first memory mapped from that image (walkImageTables).
 */
import { HypervisorError } from "../../errors/errors.js";
import { MAX_MAPS, PROT_EXEC, PROT_READ, PROT_WRITE, type GuestMapping } from "./mailbox.js";

const PAGE = 4096;
const ENTRIES = 512;
const PRESENT = 1;
const WRITABLE = 2;
const USER = 4;
const LARGE = 0x80;
/** NX is bit 63: bit 31 of an entry's high half. */
const NX_HIGH = 0x8000_0000;
/** The frame address: bits 12–31 of the low half, 0–19 (address bits 32–51) of the high half. */
const FRAME_LOW = 0xffff_f000;
/** Bits 12–20 of a 2 MiB leaf: PAT (a memory type vmlet never sets) and reserved bits. */
const LARGE_LOW_RESERVED = 0x001f_f000;
const FRAME_HIGH = 0x000f_ffff;

/** What the tables map: the user mappings, and which pages are present at all (user or supervisor). */
export interface PageTableMap {
  readonly mappings: readonly GuestMapping[];
  /** 1 for a page whose leaf entry is present: a fault there is a protection violation, as on a VM. */
  readonly present: Uint8Array;
}

/** Walks already made, by the image the walked memory was mapped from, then by PML4 address. */
const walksByImage = new WeakMap<object, Map<number, PageTableMap>>();

/**
 * walkPageTables for memory whose page tables are those of `image` (made equal to it and
 * not written since: vmlet's own supervisor pages, which no guest code can write and every
 * snapshot is checked to hold). The first walk per (image, pml4) is kept; its result is
 * shared, so no caller may change it.
 */
export function walkImageTables(memory: Uint8Array, pml4: number, image: object): PageTableMap {
  let byPml4 = walksByImage.get(image);
  const known = byPml4?.get(pml4);
  if (known) return known;
  const walked = walkPageTables(memory, pml4); // throws for bad tables: nothing is kept
  if (!byPml4) walksByImage.set(image, (byPml4 = new Map()));
  byPml4.set(pml4, walked);
  return walked;
}

/** The user mappings of the identity-mapped tables at `pml4` in `memory`. */
export function walkPageTables(memory: Uint8Array, pml4: number): PageTableMap {
  // 32-bit halves, not BigInt: this runs on every configure(), over up to 2^18 entries.
  const words = new Uint32Array(memory.buffer, memory.byteOffset, memory.byteLength >>> 2);
  const pages = memory.byteLength / PAGE;
  const protOf = new Uint8Array(pages);
  const present = new Uint8Array(pages);
  const lo = (table: number, index: number): number => words[(table >>> 2) + index * 2]!;
  const hi = (table: number, index: number): number => words[(table >>> 2) + index * 2 + 1]!;
  /** The table an entry points to, checked to lie in guest memory. */
  const next = (table: number, index: number, what: string): number => {
    const address = (hi(table, index) & FRAME_HIGH) * 2 ** 32 + ((lo(table, index) & FRAME_LOW) >>> 0);
    if (address + PAGE > memory.byteLength) refuse(`${what} at 0x${address.toString(16)} is outside guest memory`);
    return address;
  };
  if (pml4 % PAGE !== 0 || pml4 + PAGE > memory.byteLength) refuse(`the PML4 at 0x${pml4.toString(16)} is outside guest memory`);
  // Guest memory ends below 512 GiB: only the first PML4 entry can map any of it.
  for (let i = 1; i < ENTRIES; i++) if (lo(pml4, i) & PRESENT) refuse("a PML4 entry maps addresses above 512 GiB");
  if (!(lo(pml4, 0) & PRESENT)) return { mappings: [], present };
  const pdpt = next(pml4, 0, "a PDPT");
  for (let i3 = 0; i3 < ENTRIES; i3++) {
    if (!(lo(pdpt, i3) & PRESENT)) continue;
    if (lo(pdpt, i3) & LARGE) refuse("a 1 GiB page");
    const pd = next(pdpt, i3, "a page directory");
    for (let i2 = 0; i2 < ENTRIES; i2++) {
      const e2 = lo(pd, i2);
      if (!(e2 & PRESENT)) continue;
      const upper = lo(pml4, 0) & lo(pdpt, i3);
      const upperNx = (hi(pml4, 0) | hi(pdpt, i3)) & NX_HIGH;
      const first = (i3 * ENTRIES + i2) * ENTRIES;
      /** Records the leaf (low half e, high half h) mapping `count` pages from `page`, under a directory entry allowing `dirLow`, `dirNx`. */
      const leaf = (page: number, count: number, e: number, h: number, dirLow: number, dirNx: number): void => {
        const frame = (h & FRAME_HIGH) * 2 ** 32 + ((e & FRAME_LOW) >>> 0);
        if (page + count > pages || frame !== page * PAGE) refuse(`page 0x${(page * PAGE).toString(16)} is not identity-mapped inside guest memory`);
        if (count === 1) present[page] = 1; // the common case, on every configure(): no fill() call
        else present.fill(1, page, page + count);
        if (!(e & upper & dirLow & USER)) return;
        const writable = (e & upper & dirLow & WRITABLE) !== 0;
        const executable = ((h & NX_HIGH) | upperNx | dirNx) === 0;
        if (writable && executable) refuse(`page 0x${(page * PAGE).toString(16)} is writable and executable`);
        const prot = PROT_READ | (writable ? PROT_WRITE : 0) | (executable ? PROT_EXEC : 0);
        if (count === 1) protOf[page] = prot;
        else protOf.fill(prot, page, page + count);
      };
      if (e2 & LARGE) {
        if (e2 & LARGE_LOW_RESERVED) refuse(`the 2 MiB page at 0x${(first * PAGE).toString(16)} sets PAT or reserved bits`);
        leaf(first, ENTRIES, e2, hi(pd, i2), ~0, 0);
        continue;
      }
      const pt = next(pd, i2, "a page table");
      for (let i1 = 0; i1 < ENTRIES; i1++) {
        const e1 = lo(pt, i1);
        if (!(e1 & PRESENT)) continue;
        leaf(first + i1, 1, e1, hi(pt, i1), e2, hi(pd, i2) & NX_HIGH);
      }
    }
  }
  return { mappings: runs(protOf), present };
}

function runs(protOf: Uint8Array): GuestMapping[] {
  const out: GuestMapping[] = [];
  for (let page = 0; page < protOf.length; ) {
    const prot = protOf[page]!;
    let end = page + 1;
    while (end < protOf.length && protOf[end] === prot) end++;
    if (prot !== 0) out.push({ start: page * PAGE, size: (end - page) * PAGE, prot });
    page = end;
  }
  if (out.length > MAX_MAPS) refuse(`${out.length} separate user mappings (at most ${MAX_MAPS})`);
  return out;
}

function refuse(why: string): never {
  throw new HypervisorError("page-table walk", undefined, `the guest's page tables cannot run on the process backend: ${why}`);
}

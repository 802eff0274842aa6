/**
 * The guest mappings a process-backend child makes, read from the guest's own page
 * tables: every user page, at its own address, with the access its leaf entry gives
 * (read, write, execute). Supervisor pages (system tables, fault stubs, the tables
 * themselves) are left out: only a VM needs them. Runs of pages with one access become
 * one mapping.
 *
 * The tables may come from a snapshot file, so nothing in them is trusted: only an
 * identity map inside guest memory is accepted, and no page may be writable and
 * executable at once.
 */
import { HypervisorError } from "../../errors/errors.js";
import { MAX_MAPS, PROT_EXEC, PROT_READ, PROT_WRITE, type GuestMapping } from "./mailbox.js";

const PAGE = 4096;
const ENTRIES = 512;
const PRESENT = 1n;
const WRITABLE = 2n;
const USER = 4n;
const LARGE = 0x80n;
const NX = 1n << 63n;
const FRAME = 0x000f_ffff_ffff_f000n;

/** What the tables map: the user mappings, and which pages are present at all (user or supervisor). */
export interface PageTableMap {
  readonly mappings: readonly GuestMapping[];
  /** 1 for a page whose leaf entry is present: a fault there is a protection violation, as on a VM. */
  readonly present: Uint8Array;
}

/** The user mappings of the identity-mapped tables at `pml4` in `memory`. */
export function walkPageTables(memory: Uint8Array, pml4: number): PageTableMap {
  const view = new DataView(memory.buffer, memory.byteOffset, memory.byteLength);
  const pages = memory.byteLength / PAGE;
  const protOf = new Uint8Array(pages);
  const present = new Uint8Array(pages);
  const table = (address: bigint, what: string): number => {
    if (address % BigInt(PAGE) !== 0n || address + BigInt(PAGE) > BigInt(memory.byteLength)) refuse(`${what} at 0x${address.toString(16)} is outside guest memory`);
    return Number(address);
  };
  const entry = (at: number, index: number): bigint => view.getBigUint64(at + index * 8, true);
  const top = table(BigInt(pml4), "the PML4");
  // Guest memory ends below 512 GiB: only the first PML4 entry can map any of it.
  for (let i = 1; i < ENTRIES; i++) if (entry(top, i) & PRESENT) refuse("a PML4 entry maps addresses above 512 GiB");
  const e4 = entry(top, 0);
  if (!(e4 & PRESENT)) return { mappings: [], present };
  const pdpt = table(e4 & FRAME, "a PDPT");
  for (let i3 = 0; i3 < ENTRIES; i3++) {
    const e3 = entry(pdpt, i3);
    if (!(e3 & PRESENT)) continue;
    if (e3 & LARGE) refuse("a 1 GiB page");
    const pd = table(e3 & FRAME, "a page directory");
    for (let i2 = 0; i2 < ENTRIES; i2++) {
      const e2 = entry(pd, i2);
      if (!(e2 & PRESENT)) continue;
      if (e2 & LARGE) refuse("a 2 MiB page");
      const pt = table(e2 & FRAME, "a page table");
      const upper = e4 & e3 & e2;
      for (let i1 = 0; i1 < ENTRIES; i1++) {
        const e1 = entry(pt, i1);
        if (!(e1 & PRESENT)) continue;
        const page = (i3 * ENTRIES + i2) * ENTRIES + i1;
        if (page >= pages || (e1 & FRAME) !== BigInt(page * PAGE)) refuse(`page 0x${(page * PAGE).toString(16)} is not identity-mapped inside guest memory`);
        present[page] = 1;
        if (!(e1 & upper & USER)) continue;
        const writable = (e1 & upper & WRITABLE) !== 0n;
        const executable = ((e1 | e2 | e3 | e4) & NX) === 0n;
        if (writable && executable) refuse(`page 0x${(page * PAGE).toString(16)} is writable and executable`);
        protOf[page] = PROT_READ | (writable ? PROT_WRITE : 0) | (executable ? PROT_EXEC : 0);
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

/**
 * The supervisor pages: every page the page tables map for CPL 0 only (GDT, TSS with its
 * I/O bitmap, IDT, fault stubs, ring-0 and IST stacks, the page tables themselves). They
 * decide what runs at CPL 0 and what the guest may touch, so vmlet owns them: their bytes
 * are a function of the layout alone (what create.ts writes into a new guest), and the
 * memory of every snapshot must hold exactly these bytes there. The page tables come in two
 * forms (mem/page-tables.ts): the memory's own page directories say which one it claims,
 * and then every table byte must be that form's. A loaded snapshot is
 * compared with them (snapshot/image-checks.ts), and so is each snapshot taken.
 */
import type { MemoryLayout } from "./layout.js";
import { PAGE, SYSTEM } from "./layout.js";
import { pageTableBytes, usesLargeLeaves, type TableForm } from "./page-tables.js";
import { writeSystemTables } from "./system-tables.js";

/** A supervisor region of the layout and the bytes vmlet puts there. */
export interface SupervisorRegion {
  readonly name: string;
  readonly start: number;
  readonly bytes: Uint8Array;
}

/** A supervisor page whose bytes are not vmlet's. */
export interface ForeignPage {
  readonly address: number;
  readonly region: string;
}

/** Reads [start, start + length) of the memory being checked. */
export type ReadMemory = (start: number, length: number) => Uint8Array;

const isSupervisor = (access: string): boolean => access.startsWith("kernel-");

/** Every supervisor region of `layout` with the bytes vmlet builds for it (ring-0 and IST stacks are zero), page tables in `form`. */
export function supervisorRegions(layout: MemoryLayout, form: TableForm = "4k"): SupervisorRegion[] {
  const low = new Uint8Array(SYSTEM.istStack.top);
  writeSystemTables(low);
  const tables = pageTableBytes(layout, form);
  return layout.regions.filter((r) => isSupervisor(r.access)).map((r) => {
    if (r.start === layout.pageTables.address && r.size === layout.pageTables.size) return { name: r.name, start: r.start, bytes: tables };
    if (r.start + r.size > low.length) throw new Error(`supervisor region ${r.name} lies outside the system pages`); // computeLayout never does this
    return { name: r.name, start: r.start, bytes: low.subarray(r.start, r.start + r.size) };
  });
}

/**
 * The first supervisor page of `layout` whose bytes in the memory `read` gives differ from
 * vmlet's, or undefined. With `pages` (page numbers), only those are compared: the caller
 * knows every other page to be good. Builds nothing when none of them is a supervisor page.
 */
export function findForeignSupervisorPage(layout: MemoryLayout, read: ReadMemory, pages?: Iterable<number>): ForeignPage | undefined {
  const only = pages === undefined ? undefined : supervisorPagesAmong(layout, pages);
  if (only?.size === 0) return undefined;
  const form: TableForm = usesLargeLeaves(layout, read) ? "2m" : "4k";
  for (const region of supervisorRegions(layout, form)) {
    const whole = only === undefined ? read(region.start, region.bytes.length) : undefined;
    for (let offset = 0; offset < region.bytes.length; offset += PAGE) {
      const address = region.start + offset;
      if (only !== undefined && !only.has(address / PAGE)) continue;
      const actual = whole ? whole.subarray(offset, offset + PAGE) : read(address, PAGE);
      if (!sameBytes(actual, region.bytes.subarray(offset, offset + PAGE))) return { address, region: region.name };
    }
  }
  return undefined;
}

/** The page numbers in `pages` that lie in a supervisor region. */
function supervisorPagesAmong(layout: MemoryLayout, pages: Iterable<number>): Set<number> {
  const spans = layout.regions.filter((r) => isSupervisor(r.access)).map((r) => [r.start / PAGE, (r.start + r.size) / PAGE] as const);
  const lowEnd = SYSTEM.istStack.top / PAGE;
  const tablesFirst = layout.pageTables.address / PAGE, tablesEnd = tablesFirst + layout.pageTables.size / PAGE;
  const found = new Set<number>();
  for (const page of pages) {
    if (page >= lowEnd && (page < tablesFirst || page >= tablesEnd)) continue; // most pages: a backend may list every page
    if (spans.some(([first, end]) => page >= first && page < end)) found.add(page);
  }
  return found;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

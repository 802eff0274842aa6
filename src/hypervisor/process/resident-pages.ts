/**
 * What a process-backend child maps of guest memory: its present page-table entries, read
 * with PAGEMAP_SCAN on /proc/<pid>/pagemap (native/process_dirty.c), with no side effect
 * on them. A snapshot's working set is recorded from it (src/snapshot/working-set.ts).
 */
import type { NativeAddon } from "../../native/addon.js";
import type { GuestMapping } from "./mailbox.js";

/** Regions one read reports at most; more are left out (a working set is a hint). */
const MAX_REGIONS = 4096;

/**
 * The child's present guest pages, and those of them not write-protected (written since the
 * write log last protected them, or never protected), as sorted [firstPage, endPage, ...];
 * undefined when they cannot be read.
 */
export function residentPages(addon: NativeAddon, pid: number, maps: readonly GuestMapping[]): { present: Uint32Array; written: Uint32Array } | undefined {
  const ranges = new Float64Array([...maps].sort((a, b) => a.start - b.start).flatMap((m) => [m.start, m.start + m.size]));
  const out = new Uint32Array(2 * MAX_REGIONS);
  let fd: number | undefined;
  try {
    fd = addon.pagemapOpen(pid);
    const scan = (written: boolean): Uint32Array => out.slice(0, 2 * Math.min(addon.pagemapPresent(fd!, ranges, out, written), MAX_REGIONS));
    return { present: scan(false), written: scan(true) };
  } catch {
    return undefined; // no pagemap (hidden /proc, an old kernel) or the child is gone
  } finally {
    if (fd !== undefined) addon.closeFd(fd);
  }
}

/** The mappings (those with all of `prot`) as [start, end, ...] bytes. */
export function mappingRanges(maps: readonly GuestMapping[], prot = 0): number[] {
  return maps.filter((m) => (m.prot & prot) === prot).flatMap((m) => [m.start, m.start + m.size]);
}

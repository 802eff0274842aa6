/**
 * The process backend's dirty log. A child started with write tracking
 * (native/process/helper.c) write-protects its writable guest mappings with a userfaultfd
 * in async mode: the first write to a page clears its protection, with no exit. The host
 * reads and re-arms that state with PAGEMAP_SCAN on the child's /proc/<pid>/pagemap
 * (native/process_dirty.c). Host writes through the host's own mapping do not touch the
 * child's page tables: they are not in this log (Sandbox passes them as host pages).
 *
 * A take reports two kinds of pages: those a write unprotected (PAGE_IS_WRITTEN), and
 * those with no page-table entry at all. The child's entries are all protected when it
 * starts (markers where nothing is mapped), and the kernel keeps a marker when it drops a
 * protected entry; an entry it drops after a write (reclaim, a split) leaves nothing, and
 * PAGE_IS_WRITTEN would miss that page. Reporting empty entries keeps the log a superset.
 */
import type { NativeAddon } from "../../native/addon.js";
import { PROT_WRITE, type GuestMapping } from "./mailbox.js";

const PAGE = 4096;
/** Regions a take can report before its buffer grows (an overflowing take is not trusted). */
const FIRST_CAPACITY = 1024;

export class ChildWriteLog {
  private out: Uint32Array;
  private readonly ranges: Float64Array;
  private closed = false;

  constructor(private readonly addon: NativeAddon, private readonly fd: number, maps: readonly GuestMapping[]) {
    const writable = maps.filter((m) => (m.prot & PROT_WRITE) !== 0);
    this.ranges = new Float64Array(writable.flatMap((m) => [m.start, m.start + m.size]));
    this.out = new Uint32Array(2 * FIRST_CAPACITY);
  }

  /**
   * Pages the child wrote since the previous take (or its start), as [firstPage, endPage)
   * pairs, and every page protected again. Undefined when the answer cannot be trusted
   * (a scan failed, or found more regions than fit): the caller compares all pages.
   */
  take(): { pairs: Uint32Array; count: number } | undefined {
    if (this.closed) return undefined;
    let written: number, empty: number;
    try {
      written = this.addon.pagemapTakeWritten(this.fd, this.ranges, this.out);
      const rest = written < this.out.length / 2 ? this.out.subarray(2 * written) : new Uint32Array(0);
      empty = this.addon.pagemapTakeUnprotected(this.fd, this.ranges, rest);
    } catch {
      this.close(); // the registration is gone or the child is: never trust this log again
      return undefined;
    }
    if (2 * (written + empty) > this.out.length) {
      this.out = new Uint32Array(4 * (written + empty));
      return undefined;
    }
    return { pairs: this.out, count: written + empty };
  }

  get usable(): boolean {
    return !this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.addon.closeFd(this.fd);
  }
}

/** Copies the regions' pages and the host's pages from the image into memory; returns pages copied. */
export function copyPages(memory: Uint8Array, image: Uint8Array, regions: { pairs: Uint32Array; count: number }, hostPages: ArrayLike<number>): number {
  let copied = 0;
  const { pairs, count } = regions;
  for (let i = 0; i < count; i++) {
    const from = pairs[2 * i]! * PAGE;
    const to = pairs[2 * i + 1]! * PAGE;
    memory.set(image.subarray(from, to), from);
    copied += (to - from) / PAGE;
  }
  for (let i = 0; i < hostPages.length; i++) {
    const at = hostPages[i]! * PAGE;
    memory.set(image.subarray(at, at + PAGE), at);
  }
  return copied + hostPages.length;
}

/** Sets the regions' bits in a page bitmap (cleared first). */
export function regionsToBitmap(regions: { pairs: Uint32Array; count: number }, bitmap: BigUint64Array): BigUint64Array {
  bitmap.fill(0n);
  const { pairs, count } = regions;
  for (let i = 0; i < count; i++) {
    for (let page = pairs[2 * i]!; page < pairs[2 * i + 1]!; page++) {
      const word = page >>> 6;
      bitmap[word] = bitmap[word]! | (1n << BigInt(page & 63));
    }
  }
  return bitmap;
}

/**
 * The process backend's dirty log. A child started with write tracking
 * (native/process/helper.c) registers its writable guest mappings with a userfaultfd in
 * async write-protect mode: a write to a protected page clears its protection, with no
 * exit. The host reads and protects that state with PAGEMAP_SCAN on the child's
 * /proc/<pid>/pagemap (native/process_dirty.c). Host writes through the host's own mapping
 * do not touch the child's page tables: they are not in this log (Sandbox passes them as
 * host pages).
 *
 * A take reports every page that may differ from what it held at the previous take:
 * - pages with a page-table entry that is not protected (PAGE_IS_WRITTEN): written, or
 *   first touched (read) where nothing was protected yet;
 * - pages with no entry at all among those the memory file holds data for: a written
 *   page whose entry the kernel dropped (reclaim) leaves nothing, and PAGE_IS_WRITTEN would
 *   miss it. A page the file holds no data for reads as zeros and no write of the child
 *   left it so (only the host punches holes), so it needs no look.
 * and protects each of them. Only what the child touched, and what the file holds, gets
 * entries: 1 GiB of untouched heap costs the scans (and the child's exit) nothing, where
 * protecting every page put a marker entry on each (~2 ms per scan, arm and teardown).
 */
import type { NativeAddon } from "../../native/addon.js";
import { subtractPageRanges } from "../../snapshot/working-set.js";
import { intersectRanges } from "../../mem/range-lists.js";
import { PROT_WRITE, type GuestMapping } from "./mailbox.js";

const PAGE = 4096;
/** Regions a take can report before its buffer grows (an overflowing take is not trusted). */
const FIRST_CAPACITY = 1024;

export class ChildWriteLog {
  private out: Uint32Array;
  private readonly ranges: Float64Array;
  private closed = false;
  private taken = false;

  /**
   * `fd`: the child's pagemap; `memoryFd`, `memorySize`: the guest memory file both map;
   * `firstSkip` ([firstPage, endPage, ...], sorted): what the first take neither scans nor
   * protects (the pages the child populated writable), so the next take reports them.
   */
  constructor(
    private readonly addon: NativeAddon,
    private readonly fd: number,
    maps: readonly GuestMapping[],
    private readonly memoryFd: number,
    private readonly memorySize: number,
    private readonly firstSkip: readonly number[] = [],
  ) {
    const writable = maps.filter((m) => (m.prot & PROT_WRITE) !== 0);
    this.ranges = new Float64Array(writable.flatMap((m) => [m.start, m.start + m.size]));
    this.out = new Uint32Array(2 * FIRST_CAPACITY);
  }

  /**
   * Pages the child wrote since the previous take (or its start), as [firstPage, endPage)
   * pairs, and every page protected again. Undefined when the answer cannot be trusted
   * (a scan failed, or found more regions than fit): the caller compares all pages.
   * The first take reports every page the child touched and every page with data: a
   * superset, until a take has protected them.
   */
  take(): { pairs: Uint32Array; count: number } | undefined {
    if (this.closed) return undefined;
    const skip = this.taken ? [] : this.firstSkip.map((page) => page * PAGE);
    this.taken = true;
    const ranges = skip.length > 0 ? new Float64Array(subtractPageRanges(this.ranges, skip)) : this.ranges;
    let written: number, empty: number;
    try {
      written = this.addon.pagemapTakeWritten(this.fd, ranges, this.out);
      const rest = written < this.out.length / 2 ? this.out.subarray(2 * written) : new Uint32Array(0);
      const withData = this.rangesWithData();
      empty = this.addon.pagemapTakeUnprotected(this.fd, skip.length > 0 ? new Float64Array(subtractPageRanges(withData, skip)) : withData, rest);
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

  /** The writable ranges where the memory file holds data (lseek SEEK_DATA: O(data), not O(size)). */
  private rangesWithData(): Float64Array {
    return new Float64Array(intersectRanges(this.ranges, this.addon.dataRanges(this.memoryFd, this.memorySize)));
  }

  get usable(): boolean {
    return !this.closed;
  }

  /** Whether no take has protected anything yet (every page with data still reads as written). */
  get untaken(): boolean {
    return !this.taken;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.addon.closeFd(this.fd);
  }
}

/**
 * Puts the regions' pages and the host's pages back from the image; returns pages put back.
 * `imageData` ([start, end, ...] bytes the image file holds data for): what lies outside it
 * is zeroed, never read through the view, since reading a hole of the image's shared
 * mapping would allocate it (and the image would grow with every restore).
 */
export function copyPages(
  memory: Uint8Array, image: Uint8Array, regions: { pairs: Uint32Array; count: number }, hostPages: ArrayLike<number>, imageData: readonly number[],
): number {
  let copied = 0;
  const { pairs, count } = regions;
  for (let i = 0; i < count; i++) {
    const from = pairs[2 * i]! * PAGE;
    const to = pairs[2 * i + 1]! * PAGE;
    putBack(memory, image, from, to, imageData);
    copied += (to - from) / PAGE;
  }
  for (let i = 0; i < hostPages.length; i++) {
    const at = hostPages[i]! * PAGE;
    putBack(memory, image, at, at + PAGE, imageData);
  }
  return copied + hostPages.length;
}

/** [from, to) of memory made equal to the image: its data copied, its holes zeroed. */
function putBack(memory: Uint8Array, image: Uint8Array, from: number, to: number, data: readonly number[]): void {
  let at = from;
  for (let i = firstRangeEndingAfter(data, from); i < data.length && data[i]! < to; i += 2) {
    const start = Math.max(data[i]!, from), end = Math.min(data[i + 1]!, to);
    if (start > at) memory.fill(0, at, start);
    memory.set(image.subarray(start, end), start);
    at = end;
  }
  if (at < to) memory.fill(0, at, to);
}

/** The index of the first range of `ranges` (flat pairs, sorted) that ends after `at`. */
function firstRangeEndingAfter(ranges: readonly number[], at: number): number {
  let lo = 0, hi = ranges.length / 2;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[2 * mid + 1]! <= at) lo = mid + 1;
    else hi = mid;
  }
  return 2 * lo;
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


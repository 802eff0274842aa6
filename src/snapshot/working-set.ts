/**
 * A snapshot's working set: the guest pages its sandboxes touch right after resume, and
 * those of them they write, kept with its memory image as sorted, disjoint
 * [firstPage, endPage) ranges (flat Uint32Arrays). A new process-backend child maps them in
 * bulk at start (the written ones writable) instead of taking a fault per page in its first
 * call (REAP, FaaSnap). Only a hint: it is clamped to memory the image holds data for
 * (populating never allocates) and to the child's mappings before use, so a wrong one
 * costs time, never correctness.
 */
import { intersectRanges } from "../mem/range-lists.js";

const PAGE = 4096;
/** Ranges kept per list (touched, written): one populate each at start, a few hundred in all. */
export const MAX_WORKING_SET_RANGES = 128;
/**
 * Gaps of data pages up to this long are populated too: a populated page costs far less
 * than a fault (~0.1 against ~5 µs on a 2-core EPYC VM), and fewer ranges mean fewer calls.
 */
const MAX_GAP_PAGES = 16;

/** Page ranges, flat [first, end, ...], sorted and disjoint. */
export type PageRanges = Uint32Array;

export interface WorkingSet {
  /** Pages the guest read or wrote. */
  readonly touched: PageRanges;
  /** Pages it wrote (a part of `touched`). */
  readonly written: PageRanges;
}

/**
 * The working set to keep from the pages a child maps (`present`) and those it wrote
 * (`written`) over an image whose data is `dataBytes` ([start, end, ...] bytes): pages with
 * data only, gaps of data merged, at most MAX_WORKING_SET_RANGES ranges each (the longest).
 */
export function workingSetOf(present: ArrayLike<number>, written: ArrayLike<number>, dataBytes: readonly number[]): WorkingSet {
  const data = bytesToPages(dataBytes);
  const keep = (pages: ArrayLike<number>): PageRanges =>
    new Uint32Array(longest(intersectRanges(mergeGaps(intersectRanges(pages, data), MAX_GAP_PAGES), data), MAX_WORKING_SET_RANGES));
  return { touched: keep(present), written: keep(written) };
}

/**
 * What a start record asks a child to populate: the written ranges inside writable
 * mappings, then the other touched ones inside any mapping (mappings as [start, end, ...]
 * bytes), all within the image's data; `maxRanges` in all, written ones first.
 */
export function rangesToPrefault(
  set: WorkingSet, mappings: readonly number[], writable: readonly number[], dataBytes: readonly number[], maxRanges: number,
): { writes: number[]; reads: number[] } {
  const data = bytesToPages(dataBytes);
  const clamp = (ranges: ArrayLike<number>, maps: readonly number[]): number[] => intersectRanges(intersectRanges(ranges, sortedPageRanges(maps)), data);
  const writes = clamp(set.written, writable).slice(0, 2 * maxRanges);
  const reads = clamp(subtractPageRanges(set.touched, writes), mappings).slice(0, 2 * maxRanges - writes.length);
  return { writes, reads };
}

/** The parts of ranges `a` outside ranges `b` (both sorted and disjoint). */
export function subtractPageRanges(a: ArrayLike<number>, b: ArrayLike<number>): number[] {
  const out: number[] = [];
  let j = 0;
  for (let i = 0; i < a.length; i += 2) {
    let start = a[i]!;
    const end = a[i + 1]!;
    while (j < b.length && b[j + 1]! <= start) j += 2;
    for (let k = j; k < b.length && b[k]! < end; k += 2) {
      if (b[k]! > start) out.push(start, b[k]!);
      start = Math.max(start, b[k + 1]!);
    }
    if (start < end) out.push(start, end);
  }
  return out;
}

/** Sorted, disjoint, non-empty and inside `pages`: anything else is not a working set. */
export function isWellFormed(ranges: ArrayLike<number>, pages: number): boolean {
  if (ranges.length % 2 !== 0) return false;
  let last = 0;
  for (let i = 0; i < ranges.length; i += 2) {
    const first = ranges[i]!, end = ranges[i + 1]!;
    if (!Number.isInteger(first) || !Number.isInteger(end) || first < last || end <= first || end > pages) return false;
    last = end;
  }
  return true;
}


/** Joins neighbours at most `gap` pages apart. */
function mergeGaps(ranges: readonly number[], gap: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < ranges.length; i += 2) {
    if (out.length > 0 && ranges[i]! - out[out.length - 1]! <= gap) out[out.length - 1] = ranges[i + 1]!;
    else out.push(ranges[i]!, ranges[i + 1]!);
  }
  return out;
}

/** The `max` longest ranges, in address order. */
function longest(ranges: readonly number[], max: number): number[] {
  if (ranges.length <= 2 * max) return [...ranges];
  const order = Array.from({ length: ranges.length / 2 }, (_, k) => k);
  order.sort((x, y) => ranges[2 * y + 1]! - ranges[2 * y]! - (ranges[2 * x + 1]! - ranges[2 * x]!) || x - y);
  return order.slice(0, max).sort((x, y) => x - y).flatMap((k) => [ranges[2 * k]!, ranges[2 * k + 1]!]);
}

/** Byte ranges as the whole pages they touch. */
export function bytesToPages(bytes: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i += 2) {
    const first = Math.floor(bytes[i]! / PAGE), end = Math.ceil(bytes[i + 1]! / PAGE);
    if (out.length > 0 && first <= out[out.length - 1]!) out[out.length - 1] = Math.max(end, out[out.length - 1]!);
    else if (end > first) out.push(first, end);
  }
  return out;
}

/** Byte ranges (any order, adjacent ones allowed) as sorted page ranges, adjacent ones kept apart. */
function sortedPageRanges(bytes: readonly number[]): number[] {
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < bytes.length; i += 2) pairs.push([Math.ceil(bytes[i]! / PAGE), Math.floor(bytes[i + 1]! / PAGE)]);
  return pairs.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]).flat();
}

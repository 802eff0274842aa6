/** Lists of ranges as flat [start, end, start, end, ...] numbers, each list sorted and disjoint. */

/** The parts of the ranges `a` that lie in the ranges `b`. */
export function intersectRanges(a: ArrayLike<number>, b: ArrayLike<number>): number[] {
  const out: number[] = [];
  let i = 0, j = 0;
  while (i < a.length && j < b.length) {
    const start = Math.max(a[i]!, b[j]!), end = Math.min(a[i + 1]!, b[j + 1]!);
    if (start < end) out.push(start, end);
    if (a[i + 1]! <= b[j + 1]!) i += 2;
    else j += 2;
  }
  return out;
}

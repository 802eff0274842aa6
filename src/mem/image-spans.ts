/**
 * Which parts of huge-page-advised guest memory map a snapshot image privately (mem/
 * guest-memory.ts): the 2 MiB ranges holding any of the image's data. The others stay
 * anonymous, where the first touch can get a transparent huge page.
 *
 * Each span is one mapping (a VMA): a pool of many sandboxes must stay far below the
 * kernel's map count limit, so only the largest empty stretches stay anonymous, at most
 * MAX_HOLES of them; smaller ones are mapped from the image with their neighbours.
 */
const TWO_MIB = 2 << 20;
const MAX_HOLES = 8;

/** [start, end) byte spans to map from the image, 2 MiB-aligned (the last may end at `size`), given its data ranges [start, end, …]. */
export function imageSpans(dataRanges: readonly number[], size: number): Array<[number, number]> {
  const chunks = Math.ceil(size / TWO_MIB);
  const hasData = new Uint8Array(chunks);
  for (let r = 0; r < dataRanges.length; r += 2) {
    const first = Math.floor(dataRanges[r]! / TWO_MIB), end = Math.min(chunks, Math.ceil(dataRanges[r + 1]! / TWO_MIB));
    hasData.fill(1, first, end);
  }
  const holes = emptyStretches(hasData).sort((a, b) => b[1] - b[0] - (a[1] - a[0]) || a[0] - b[0]).slice(0, MAX_HOLES);
  holes.sort((a, b) => a[0] - b[0]);
  const spans: Array<[number, number]> = [];
  let at = 0;
  for (const [first, end] of [...holes, [chunks, chunks] as [number, number]]) {
    if (first > at) spans.push([at * TWO_MIB, Math.min(size, first * TWO_MIB)]);
    at = end;
  }
  return spans;
}

/** [first, end) chunk runs with no data. */
function emptyStretches(hasData: Uint8Array): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let c = 0; c < hasData.length; ) {
    if (hasData[c]) {
      c++;
      continue;
    }
    const first = c;
    while (c < hasData.length && !hasData[c]) c++;
    out.push([first, c]);
  }
  return out;
}

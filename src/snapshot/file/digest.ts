/** sha256 digests: of small byte arrays, and of memory images without reading their holes. */
import lazyModules from "../../lazy-modules.cjs";

/** Zeros to hash holes with: made on first use, not at `import "vmlet"` (issue 17). */
let zeroMiB: Uint8Array | undefined;
const zerosMiB = (): Uint8Array => (zeroMiB ??= new Uint8Array(1 << 20));
/** Work between yields to the event loop while hashing large images. */
const SLICE = 32 << 20;

export type Progress = (done: number, total: number) => void;

export function sha256(bytes: Uint8Array): string {
  return `sha256:${lazyModules.crypto().createHash("sha256").update(bytes).digest("hex")}`;
}

/**
 * sha256 of all `size` bytes of an image given as a view (or a reader of [start, end), at
 * most 1 MiB at a time) plus its data ranges ([start, end, …]); holes are hashed as zeros
 * without touching their pages.
 */
export async function sha256OfImage(view: Uint8Array | ((start: number, end: number) => Uint8Array), ranges: readonly number[], size: number, onProgress?: Progress): Promise<string> {
  const hash = lazyModules.crypto().createHash("sha256");
  let at = 0;
  let sinceYield = 0;
  const feed = async (from: number, to: number, bytesAt: (start: number, end: number) => Uint8Array): Promise<void> => {
    for (let p = from; p < to; ) {
      const end = Math.min(to, p + (1 << 20));
      hash.update(bytesAt(p, end));
      sinceYield += end - p;
      p = end;
      if (sinceYield >= SLICE) {
        sinceYield = 0;
        onProgress?.(p, size);
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  };
  const zeros = (start: number, end: number): Uint8Array => zerosMiB().subarray(0, end - start);
  const data = typeof view === "function" ? view : (start: number, end: number): Uint8Array => view.subarray(start, end);
  for (let r = 0; r < ranges.length; r += 2) {
    const start = Math.min(ranges[r]!, size);
    const end = Math.min(ranges[r + 1]!, size);
    await feed(at, start, zeros);
    await feed(start, end, data);
    at = end;
  }
  await feed(at, size, zeros);
  onProgress?.(size, size);
  return `sha256:${hash.digest("hex")}`;
}

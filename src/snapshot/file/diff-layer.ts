/**
 * The diff layer blob (application/vnd.vmlet.snapshot.memory-diff.v1): the pages of guest
 * memory that differ from the layer below it, with a page index. Binary, little-endian;
 * docs/snapshot-format.md § Diff layers is its reference. Changing anything here is a
 * format change (docs/snapshot-versioning.md).
 *
 *   0    8  magic "VMLETDIF"
 *   8    4  layer format version (DIFF_VERSION)
 *   12   4  page size (4096)
 *   16   8  guest memory size in bytes
 *   24   8  page count n
 *   32  71  the base: digest of the layer directly below, "sha256:<64 hex>" in ASCII
 *   103 25  zero
 *   128 4n  page numbers (u32), strictly ascending, each < memory size / 4096
 *   …       zero up to the data offset: 128 + 4n rounded up to 4096
 *   data    page i's 4096 bytes at data offset + 4096 i (zero pages may be holes)
 *
 * The blob is exactly data offset + 4096 n bytes.
 */
import { SnapshotIncompatibleError, SnapshotInvalidError } from "./errors.js";
import { DIGEST_PATTERN } from "./format.js";

export const DIFF_MAGIC = "VMLETDIF";
/** Version of the diff layer's binary format (the media type's v1 names the family). */
export const DIFF_VERSION = 1;
export const DIFF_HEADER_BYTES = 128;
const PAGE = 4096;
const BASE_AT = 32;
const BASE_BYTES = 71;

export interface DiffHeader {
  readonly memorySize: number;
  readonly pageCount: number;
  /** Digest of the layer this one lies over. */
  readonly base: string;
}

/** Where a diff layer of `pageCount` pages keeps its data, and its size in bytes. */
export function diffGeometry(pageCount: number): { dataOffset: number; size: number } {
  const dataOffset = Math.ceil((DIFF_HEADER_BYTES + 4 * pageCount) / PAGE) * PAGE;
  return { dataOffset, size: dataOffset + PAGE * pageCount };
}

/** The page count of a diff layer `size` bytes long, or undefined when no count gives that size. */
export function diffPageCount(size: number): number | undefined {
  const estimate = Math.floor(((size / PAGE - 1) * 1024) / 1025);
  for (let n = Math.max(0, estimate - 2); n <= estimate + 2; n++) if (diffGeometry(n).size === size) return n;
  return undefined;
}

/** Header and page index of a diff layer: everything before its data, zero padding included. */
export function encodeDiffPrefix(header: DiffHeader, pages: Uint32Array): Uint8Array {
  const { dataOffset } = diffGeometry(pages.length);
  const bytes = new Uint8Array(dataOffset);
  const view = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode(DIFF_MAGIC), 0);
  view.setUint32(8, DIFF_VERSION, true);
  view.setUint32(12, PAGE, true);
  view.setBigUint64(16, BigInt(header.memorySize), true);
  view.setBigUint64(24, BigInt(pages.length), true);
  bytes.set(new TextEncoder().encode(header.base), BASE_AT);
  for (let i = 0; i < pages.length; i++) view.setUint32(DIFF_HEADER_BYTES + 4 * i, pages[i]!, true);
  return bytes;
}

/**
 * Checks a diff layer's header against what its manifest says: its size, the guest memory
 * size and the layer below (`base`). Magic and version first, so another format gets the
 * precise error. `where` names the blob.
 */
export function decodeDiffHeader(bytes: Uint8Array, where: string, expected: { size: number; memorySize: number; base: string }): DiffHeader {
  if (bytes.byteLength < DIFF_HEADER_BYTES) throw new SnapshotInvalidError(where, `is ${bytes.byteLength} bytes, shorter than a diff layer's ${DIFF_HEADER_BYTES}-byte header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, DIFF_HEADER_BYTES);
  const ascii = (at: number, length: number): string => String.fromCharCode(...bytes.subarray(at, at + length));
  if (ascii(0, 8) !== DIFF_MAGIC) throw new SnapshotInvalidError(where, `is not a vmlet diff layer (no "${DIFF_MAGIC}" magic)`);
  const version = view.getUint32(8, true);
  if (version !== DIFF_VERSION) throw new SnapshotIncompatibleError(`${where}: diff layer version ${version} is not supported (this vmlet reads version ${DIFF_VERSION}); see docs/snapshot-versioning.md`);
  if (view.getUint32(12, true) !== PAGE) throw new SnapshotInvalidError(where, `page size ${view.getUint32(12, true)} is not ${PAGE}`);
  const memorySize = view.getBigUint64(16, true);
  if (memorySize !== BigInt(expected.memorySize)) throw new SnapshotInvalidError(where, `is for ${memorySize} bytes of guest memory; the snapshot has ${expected.memorySize}`);
  const pageCount = view.getBigUint64(24, true);
  if (pageCount > BigInt(expected.memorySize / PAGE)) throw new SnapshotInvalidError(where, `says it holds ${pageCount} pages; guest memory has ${expected.memorySize / PAGE}`);
  const base = ascii(BASE_AT, BASE_BYTES);
  if (!DIGEST_PATTERN.test(base)) throw new SnapshotInvalidError(where, "names no base layer digest");
  if (!allZero(bytes.subarray(BASE_AT + BASE_BYTES, DIFF_HEADER_BYTES))) throw new SnapshotInvalidError(where, "reserved header bytes are not zero");
  if (base !== expected.base) throw new SnapshotInvalidError(where, `is a diff over ${base}, but its manifest places it over ${expected.base}`);
  const { size } = diffGeometry(Number(pageCount));
  if (size !== expected.size) throw new SnapshotInvalidError(where, `a diff layer of ${pageCount} pages is ${size} bytes; its descriptor says ${expected.size}`);
  return { memorySize: expected.memorySize, pageCount: Number(pageCount), base };
}

/**
 * The page index of a diff layer (`bytes` from offset DIFF_HEADER_BYTES on, 4 bytes per
 * page): each page once, ascending, inside guest memory. The zero padding after it is
 * checked too, so a blob has one meaning.
 */
export function decodePageIndex(bytes: Uint8Array, header: DiffHeader, where: string): Uint32Array {
  const pages = new Uint32Array(header.pageCount);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const memoryPages = header.memorySize / PAGE;
  for (let i = 0; i < pages.length; i++) {
    const page = view.getUint32(4 * i, true);
    if (page >= memoryPages) throw new SnapshotInvalidError(where, `page index entry ${i} is page ${page}, past the end of guest memory (${memoryPages} pages)`);
    if (i > 0 && page === pages[i - 1]) throw new SnapshotInvalidError(where, `page index entries ${i - 1} and ${i} overlap (both page ${page})`);
    if (i > 0 && page < pages[i - 1]!) throw new SnapshotInvalidError(where, `page index is unsorted: entry ${i} (page ${page}) follows page ${pages[i - 1]}`);
    pages[i] = page;
  }
  if (!allZero(bytes.subarray(4 * pages.length))) throw new SnapshotInvalidError(where, "padding after the page index is not zero");
  return pages;
}

/** Whether every byte is zero: a plain loop (a callback per byte cost ~30 µs per layer's padding). */
function allZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

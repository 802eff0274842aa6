/**
 * A snapshot's memory read from its layer chain into private memory (a memfd): the full
 * layer's stored pages first, then each diff layer's pages over them, bottom-up. The blob
 * files are read once and never mapped: whatever happens to them afterwards (truncated,
 * rewritten, replaced) cannot crash the host or change what a sandbox runs
 * (docs/snapshots.md § Backing files). Cost: the stored pages of the full layer plus the
 * pages of the diffs, whatever the memory size or the chain's depth.
 */
import type { Hash } from "node:crypto";
import lazyModules from "../../lazy-modules.cjs";
import fs from "node:fs";
import { HypervisorError } from "../../errors/errors.js";
import { ImageWriter, MemoryImage } from "../memory-image.js";
import { decodeDiffHeader, decodePageIndex, DIFF_HEADER_BYTES, diffGeometry } from "./diff-layer.js";
import { sha256OfImage, type Progress } from "./digest.js";
import { DigestMismatchError, SnapshotInvalidError } from "./errors.js";
import { LayoutDir } from "./layout-dir.js";
import type { Descriptor } from "./oci.js";
import { blobRelative } from "./reader.js";

const PAGE = 4096;
/** Diff pages read (and hashed) per pread. */
const CHUNK_PAGES = 256;
/** Bytes between yields to the event loop. */
const YIELD_BYTES = 32 << 20;

export interface LayerReadOptions {
  /** Which layers to hash as they are read: the sha256 of what is read (what sandboxes run) must match the descriptor. */
  readonly verify: (layer: Descriptor) => boolean;
  /** Bytes of the hashed layers done, of their total. */
  readonly onProgress?: Progress | undefined;
}

/** The memory of a chain (bottom-up; oci.ts checked its shape). */
export async function openMemoryLayers(dir: string, layers: readonly Descriptor[], memorySize: number, options: LayerReadOptions): Promise<MemoryImage> {
  const { verify, onProgress } = options;
  const total = layers.reduce((n, l) => n + (verify(l) ? l.size : 0), 0);
  let done = 0;
  const progress = onProgress && ((d: number): void => onProgress(done + d, total));
  const blobs = openBlobs(dir); // held for the whole chain: one open of blobs/sha256, not one per layer
  try {
    return await MemoryImage.build(memorySize, async (writer) => {
      await copyFullLayer(blobs, layers[0]!, writer, verify(layers[0]!), progress);
      for (let i = 1; i < layers.length; i++) {
        if (verify(layers[i - 1]!)) done += layers[i - 1]!.size;
        await applyDiffLayer(blobs, layers[i]!, layers[i - 1]!.digest, writer, verify(layers[i]!), progress);
      }
      onProgress?.(total, total);
    });
  } finally {
    blobs.close();
  }
}

/** blobs/sha256 of the layout, each directory opened without following a symlink. */
function openBlobs(dir: string): LayoutDir {
  return LayoutDir.with(dir, (root) => {
    const blobs = root.openDir("blobs");
    try {
      return blobs.openDir("sha256");
    } finally {
      blobs.close();
    }
  });
}

/** Opens a layer's blob and checks its size against the descriptor. The caller closes the fd. */
function openLayer(blobs: LayoutDir, layer: Descriptor): number {
  const rel = blobRelative(layer.digest);
  const { fd, size } = blobs.openRegularFile(layer.digest.slice("sha256:".length), fs.constants.O_RDONLY);
  if (size !== layer.size) {
    fs.closeSync(fd);
    throw new SnapshotInvalidError(rel, `is ${size} bytes, its descriptor says ${layer.size}`);
  }
  return fd;
}

/** The full layer's stored pages, copied; with `verify`, the copy hashed (holes as zeros, unread). */
async function copyFullLayer(blobs: LayoutDir, layer: Descriptor, writer: ImageWriter, verify: boolean, progress?: Progress): Promise<void> {
  const rel = blobRelative(layer.digest);
  const fd = openLayer(blobs, layer);
  try {
    writer.copyDataOf(fd);
  } catch (error) {
    if (error instanceof HypervisorError) throw new SnapshotInvalidError(rel, `could not be read whole (changed while it was read?): ${error.message}`, { cause: error });
    throw error;
  } finally {
    fs.closeSync(fd);
  }
  if (!verify) return;
  const buffer = new Uint8Array(1 << 20);
  const read = (start: number, end: number): Uint8Array => {
    const out = buffer.subarray(0, end - start);
    writer.read(out, start);
    return out;
  };
  const actual = await sha256OfImage(read, writer.dataRanges(), writer.size, progress);
  if (actual !== layer.digest) throw new DigestMismatchError(rel, layer.digest, actual);
}

/**
 * A diff layer's pages placed over what is below them. Header and page index are checked
 * before any page is placed; with `verify`, every byte read is hashed and must match.
 */
async function applyDiffLayer(blobs: LayoutDir, layer: Descriptor, base: string, writer: ImageWriter, verify: boolean, progress?: Progress): Promise<void> {
  const rel = blobRelative(layer.digest);
  const fd = openLayer(blobs, layer);
  try {
    const hash = verify ? lazyModules.crypto().createHash("sha256") : undefined;
    const header = decodeDiffHeader(readAt(fd, new Uint8Array(DIFF_HEADER_BYTES), 0, rel), rel, { size: layer.size, memorySize: writer.size, base });
    const { dataOffset } = diffGeometry(header.pageCount);
    const prefix = readAt(fd, new Uint8Array(dataOffset), 0, rel);
    const pages = decodePageIndex(prefix.subarray(DIFF_HEADER_BYTES), header, rel);
    hash?.update(prefix);
    await placePages(fd, rel, pages, dataOffset, writer, hash, progress);
    const actual = hash && `sha256:${hash.digest("hex")}`;
    if (actual !== undefined && actual !== layer.digest) throw new DigestMismatchError(rel, layer.digest, actual);
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads the diff's data in chunks and writes each run of consecutive pages with one call. */
async function placePages(fd: number, rel: string, pages: Uint32Array, dataOffset: number, writer: ImageWriter, hash: Hash | undefined, progress?: Progress): Promise<void> {
  const buffer = new Uint8Array(Math.min(CHUNK_PAGES, pages.length) * PAGE); // sized to the diff: a fresh 1 MiB per layer cost more than its pages
  let sinceYield = 0;
  for (let first = 0; first < pages.length; first += CHUNK_PAGES) {
    const count = Math.min(CHUNK_PAGES, pages.length - first);
    const chunk = readAt(fd, buffer.subarray(0, count * PAGE), dataOffset + first * PAGE, rel);
    hash?.update(chunk);
    for (let i = 0; i < count; ) {
      let end = i + 1;
      while (end < count && pages[first + end] === pages[first + end - 1]! + 1) end++;
      writer.writePages(chunk.subarray(i * PAGE, end * PAGE), pages[first + i]! * PAGE);
      i = end;
    }
    sinceYield += chunk.byteLength;
    if (sinceYield >= YIELD_BYTES) {
      sinceYield = 0;
      progress?.(dataOffset + (first + count) * PAGE, 0);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

/** pread of exactly `out.length` bytes at `position`; a file that ends sooner (cut while read) is SNAPSHOT_INVALID. */
function readAt(fd: number, out: Uint8Array, position: number, rel: string): Uint8Array {
  for (let done = 0; done < out.byteLength; ) {
    let n: number;
    try {
      n = fs.readSync(fd, out, done, out.byteLength - done, position + done);
    } catch (error) {
      throw new SnapshotInvalidError(rel, `could not be read (${(error as Error).message})`, { cause: error });
    }
    if (n === 0) throw new SnapshotInvalidError(rel, "shrank while being read");
    done += n;
  }
  return out;
}

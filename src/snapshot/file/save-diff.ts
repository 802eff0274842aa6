/**
 * save({ base }): the base's memory chain, read from the layout's manifest, and the diff layer that
 * puts this snapshot's memory over it. The pages come from the snapshot's PageHistory
 * (page-history.ts), so the cost is the pages changed since the base, not the memory size.
 */
import lazyModules from "../../lazy-modules.cjs";
import fs from "node:fs";
import { InvalidConfigError, SnapshotMismatchError, VmletError } from "../../errors/errors.js";
import type { MemoryImage } from "../memory-image.js";
import type { Snapshot } from "../snapshot.js";
import { diffGeometry, encodeDiffPrefix } from "./diff-layer.js";
import { SnapshotInvalidError } from "./errors.js";
import { MAX_MEMORY_LAYERS, MEDIA_TYPE } from "./format.js";
import type { LayoutDir } from "./layout-dir.js";
import { createTemp, discardTemp, storageError, type Temp } from "./layout-files.js";
import type { Descriptor, OciIndex } from "./oci.js";
import { readEntry, readManifest } from "./reader.js";

const PAGE = 4096;
/** Pages read from the image, hashed and written per step. */
const CHUNK_PAGES = 256;

/** What a diff save writes over: the base's memory layers, and the pages of the snapshot that differ from them. */
export interface DiffPlan {
  readonly chain: readonly Descriptor[];
  readonly pages: Uint32Array;
}

/**
 * Reads the base `ref` from the layout's `index` and works out the diff: only the base's
 * manifest is read (its layers must be present); this snapshot must descend from it (or
 * be it) in this process, else SNAPSHOT_MISMATCH, saying why (the base's config is read
 * then). A chain that would pass MAX_MEMORY_LAYERS is INVALID_CONFIG (squash the base first).
 */
export function planDiff(snapshot: Snapshot, dir: string, blobs: LayoutDir, index: OciIndex, ref: string): DiffPlan {
  const chain = readManifest(dir, index, ref).memoryLayers;
  const pages = snapshot.image.history.changedSince(chain.at(-1)!.digest);
  if (!pages) throw notAnAncestor(snapshot, dir, index, ref);
  for (const layer of chain) {
    const hex = layer.digest.slice("sha256:".length);
    const stat = blobs.lstat(hex);
    if (!stat?.isFile() || stat.size !== layer.size) throw new SnapshotInvalidError(blobs.describe(hex), `the base's memory layer is missing or not ${layer.size} bytes`);
  }
  if (pages.length > 0 && chain.length >= MAX_MEMORY_LAYERS) {
    throw new InvalidConfigError(`save({ base: "${ref}" }): the base already has ${chain.length} memory layers, the most a chain may have (${MAX_MEMORY_LAYERS}); squash it first (vmlet snapshot squash)`);
  }
  return { chain, pages };
}

/** Why a base is not one this snapshot can be diffed against. */
function notAnAncestor(snapshot: Snapshot, dir: string, index: OciIndex, ref: string): SnapshotMismatchError {
  const base = readEntry(dir, index, ref).state;
  if (base.lineage !== snapshot.state.lineage || base.layout.memorySize !== snapshot.memorySize) {
    return new SnapshotMismatchError(`save({ base: "${ref}" }): the base is another guest build or memory size than this snapshot; a diff applies only over its own ancestor`);
  }
  return new SnapshotMismatchError(
    `save({ base: "${ref}" }): this snapshot does not descend from that base in this process (take it in a sandbox made from the base, loaded or saved here, within the last snapshots of its chain), so which pages changed is unknown`,
  );
}

/**
 * Writes the diff layer of `image` to a temp in `root` (not fsync'd) and hashes it as it
 * is written. Returns the temp and the layer's descriptor; the caller stages them.
 */
export async function writeDiffLayer(root: LayoutDir, image: MemoryImage, pages: Uint32Array, base: string): Promise<{ temp: Temp; descriptor: Descriptor }> {
  const prefix = encodeDiffPrefix({ memorySize: image.size, pageCount: pages.length, base }, pages);
  const { dataOffset, size } = diffGeometry(pages.length);
  const hash = lazyModules.crypto().createHash("sha256").update(prefix);
  const temp = createTemp(root);
  try {
    fs.ftruncateSync(temp.fd, size);
    writeAll(temp.fd, prefix, 0);
    const buffer = new Uint8Array(Math.min(CHUNK_PAGES, pages.length) * PAGE);
    for (let first = 0; first < pages.length; first += CHUNK_PAGES) {
      const count = Math.min(CHUNK_PAGES, pages.length - first);
      const chunk = buffer.subarray(0, count * PAGE);
      for (let i = 0; i < count; ) {
        let end = i + 1;
        while (end < count && pages[first + end] === pages[first + end - 1]! + 1) end++;
        chunk.set(image.read(pages[first + i]! * PAGE, (end - i) * PAGE), i * PAGE);
        i = end;
      }
      hash.update(chunk);
      writeAll(temp.fd, chunk, dataOffset + first * PAGE);
      if (count === CHUNK_PAGES) await new Promise((resolve) => setImmediate(resolve));
    }
  } catch (error) {
    discardTemp(temp);
    throw error instanceof VmletError ? error : storageError(temp.shown, error);
  }
  return { temp, descriptor: { mediaType: MEDIA_TYPE.memoryDiff, digest: `sha256:${hash.digest("hex")}`, size } };
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  for (let done = 0; done < bytes.byteLength; ) done += fs.writeSync(fd, bytes, done, bytes.byteLength - done, position + done);
}

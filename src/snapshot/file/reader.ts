/**
 * Reading a layout: the marker, the index, and one snapshot's manifest, config and
 * guest ELF, each size-capped and checked against its descriptor and digest. The
 * memory blob is only opened here; load.ts maps it.
 */
import { HypervisorError } from "../../errors/errors.js";
import fs from "node:fs";
import type { SnapshotState } from "../snapshot.js";
import { decodeConfig } from "./config-blob.js";
import { MemoryImage } from "../memory-image.js";
import { sha256, sha256OfImage, type Progress } from "./digest.js";
import { DigestMismatchError, SnapshotInvalidError, SnapshotNotFoundError } from "./errors.js";
import { BLOBS_DIR, INDEX_FILE, MAX_BYTES, OCI_LAYOUT_FILE } from "./format.js";
import { LayoutDir } from "./layout-dir.js";
import { openRegular, readCapped } from "./layout-files.js";
import { isValidRef, parseIndex, parseLayoutMarker, parseManifest, resolveRef, type Descriptor, type OciIndex, type SnapshotManifest } from "./oci.js";

export const blobRelative = (digest: string): string => `${BLOBS_DIR}/${digest.slice("sha256:".length)}`;

/** The layout's index, after checking the directory and its oci-layout marker. */
export function readIndex(dir: string): OciIndex {
  return LayoutDir.with(dir, (root) => {
    if (!root.lstat(OCI_LAYOUT_FILE) && !root.lstat(INDEX_FILE)) {
      throw new SnapshotNotFoundError(dir, undefined, `no OCI layout in ${dir} (no oci-layout, no index.json)`);
    }
    parseLayoutMarker(readCapped(root, OCI_LAYOUT_FILE, MAX_BYTES.layoutFile));
    // save() writes the marker before the first index: a marker alone is a first save that never committed.
    if (!root.lstat(INDEX_FILE)) throw new SnapshotNotFoundError(dir, undefined, `no snapshot in ${dir} (oci-layout but no index.json: no save has completed)`);
    return parseIndex(readCapped(root, INDEX_FILE, MAX_BYTES.index));
  });
}

/** A small blob, read whole and checked against its descriptor's size and digest. */
export function readBlob(dir: string, d: Descriptor, cap: number): Uint8Array {
  const rel = blobRelative(d.digest);
  if (d.size > cap) throw new SnapshotInvalidError(rel, `descriptor says ${d.size} bytes; at most ${cap} are allowed`);
  const bytes = readCapped(dir, rel, cap);
  if (bytes.byteLength !== d.size) throw new SnapshotInvalidError(rel, `is ${bytes.byteLength} bytes, its descriptor says ${d.size}`);
  const actual = sha256(bytes);
  if (actual !== d.digest) throw new DigestMismatchError(rel, d.digest, actual);
  return bytes;
}

export interface SnapshotEntry {
  readonly descriptor: Descriptor;
  readonly manifest: SnapshotManifest;
  readonly memory: Descriptor;
  readonly guestElf: Descriptor;
  readonly state: SnapshotState;
}

/** Resolves a tag or manifest digest and reads and checks everything but the memory blob's bytes. */
export function readEntry(dir: string, index: OciIndex, ref: string): SnapshotEntry {
  if (typeof ref !== "string" || !isValidRef(ref)) {
    throw new SnapshotNotFoundError(dir, String(ref), `"${String(ref)}" is neither an OCI tag nor a sha256 manifest digest`);
  }
  const descriptor = resolveRef(index, ref);
  if (!descriptor) throw new SnapshotNotFoundError(dir, ref, `no snapshot "${ref}" in ${dir}`);
  return readEntryAt(dir, descriptor);
}

export function readEntryAt(dir: string, descriptor: Descriptor): SnapshotEntry {
  const where = blobRelative(descriptor.digest);
  const { manifest, memory, guestElf } = parseManifest(readBlob(dir, descriptor, MAX_BYTES.manifest), where);
  const state = decodeConfig(readBlob(dir, manifest.config, MAX_BYTES.config), "config");
  if (memory.size !== state.layout.memorySize) {
    throw new SnapshotInvalidError(blobRelative(memory.digest), `descriptor size ${memory.size} differs from the layout's memory size ${state.layout.memorySize}`);
  }
  if (guestElf.size > MAX_BYTES.guestElf) throw new SnapshotInvalidError(blobRelative(guestElf.digest), `larger than ${MAX_BYTES.guestElf} bytes`);
  return { descriptor, manifest, memory, guestElf, state };
}

/** Opens the memory blob and checks its size against the descriptor. The caller owns the fd. */
function openMemoryBlob(dir: string, memory: Descriptor): number {
  const rel = blobRelative(memory.digest);
  const { fd, size } = openRegular(dir, rel);
  if (size !== memory.size) {
    fs.closeSync(fd);
    throw new SnapshotInvalidError(rel, `is ${size} bytes, its descriptor says ${memory.size}`);
  }
  return fd;
}

/**
 * The memory blob as a MemoryImage: its stored pages copied into private memory, so a file
 * changed or truncated later cannot reach a sandbox. With `verify`, the sha256 of that copy
 * (what sandboxes will run) must match the descriptor.
 */
export async function openMemoryImage(dir: string, memory: Descriptor, verify: boolean, onProgress?: Progress): Promise<MemoryImage> {
  let image: MemoryImage;
  try {
    image = MemoryImage.fromFile(openMemoryBlob(dir, memory), memory.size);
  } catch (error) {
    if (error instanceof HypervisorError) throw new SnapshotInvalidError(blobRelative(memory.digest), `could not be read whole (changed while it was read?): ${error.message}`, { cause: error });
    throw error;
  }
  if (verify) {
    const actual = await sha256OfImage(image.view, image.dataRanges(), image.size, onProgress);
    if (actual !== memory.digest) throw new DigestMismatchError(blobRelative(memory.digest), memory.digest, actual);
  }
  return image;
}

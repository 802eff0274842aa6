/**
 * Reading a layout: the marker, the index, and one snapshot's manifest, config and
 * guest ELF, each size-capped and checked against its descriptor and digest. The
 * memory layers are read by memory-layers.ts.
 */
import type { SnapshotState } from "../snapshot.js";
import type { WorkingSet } from "../working-set.js";
import { decodeConfigBlob } from "./config-blob.js";
import { sha256 } from "./digest.js";
import { DigestMismatchError, SnapshotInvalidError, SnapshotNotFoundError } from "./errors.js";
import { BLOBS_DIR, INDEX_FILE, MAX_BYTES, OCI_LAYOUT_FILE } from "./format.js";
import { LayoutDir } from "./layout-dir.js";
import { readCapped } from "./layout-files.js";
import { isValidRef, parseIndex, parseLayoutMarker, parseManifest, resolveRef, type Descriptor, type OciIndex, type ParsedManifest, type SnapshotManifest } from "./oci.js";

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
  /** Bottom-up: the full memory layer, then the diff layers over it. */
  readonly memoryLayers: readonly Descriptor[];
  readonly guestElf: Descriptor;
  readonly state: SnapshotState;
  /** The config's optional working set (a hint for new sandboxes). */
  readonly workingSet: WorkingSet | undefined;
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

/** Resolves a tag or manifest digest and reads and checks its manifest only (not the config). */
export function readManifest(dir: string, index: OciIndex, ref: string): ParsedManifest {
  const descriptor = resolveRef(index, ref);
  if (!descriptor) throw new SnapshotNotFoundError(dir, ref, `no snapshot "${ref}" in ${dir}`);
  return parseManifest(readBlob(dir, descriptor, MAX_BYTES.manifest), blobRelative(descriptor.digest));
}

export function readEntryAt(dir: string, descriptor: Descriptor): SnapshotEntry {
  const where = blobRelative(descriptor.digest);
  const { manifest, memoryLayers, guestElf } = parseManifest(readBlob(dir, descriptor, MAX_BYTES.manifest), where);
  const { state, workingSet } = decodeConfigBlob(readBlob(dir, manifest.config, MAX_BYTES.config), "config");
  const full = memoryLayers[0]!;
  if (full.size !== state.layout.memorySize) {
    throw new SnapshotInvalidError(blobRelative(full.digest), `descriptor size ${full.size} differs from the layout's memory size ${state.layout.memorySize}`);
  }
  if (guestElf.size > MAX_BYTES.guestElf) throw new SnapshotInvalidError(blobRelative(guestElf.digest), `larger than ${MAX_BYTES.guestElf} bytes`);
  return { descriptor, manifest, memoryLayers, guestElf, state, workingSet };
}

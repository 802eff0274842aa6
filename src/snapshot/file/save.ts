/**
 * Snapshot.save: writes a snapshot into an OCI layout, crash-safely. Blobs go to temp
 * files in the layout root, are fsync'd and renamed to their digest names; the blob
 * folder is fsync'd; index.json is replaced last, by rename (the commit point), and
 * the layout folder fsync'd again. A crash at any point leaves the previous index,
 * which references only complete blobs. Writers serialise on an flock.
 */
import fs from "node:fs";
import path from "node:path";
import { InvalidConfigError, VmletError } from "../../errors/errors.js";
import type { NativeError } from "../../native/addon.js";
import type { MemoryImage } from "../memory-image.js";
import type { Snapshot } from "../snapshot.js";
import { knownDigest, rememberDigest } from "./blob-digests.js";
import { encodeConfig } from "./config-blob.js";
import { sha256, sha256OfImage, type Progress } from "./digest.js";
import { SnapshotInvalidError } from "./errors.js";
import { ANNOTATION, BLOBS_DIR, INDEX_FILE, MAX_BYTES, MEDIA_TYPE, OCI_LAYOUT_FILE, TAG_PATTERN } from "./format.js";
import {
  blobPath, commitTemp, createTemp, discardTemp, ensureDir, fsyncDir, readCapped, removeStaleTemps, storageError, withWriterLock, writeFileAtomic,
} from "./layout-files.js";
import { buildManifest, emptyIndex, layoutMarker, parseIndex, parseLayoutMarker, tagOf, toJsonBytes, type Descriptor, type OciIndex } from "./oci.js";
import { VMLET_VERSION } from "../../version.js";

export interface SaveOptions {
  /** Recorded in the manifest for `vmlet snapshot ls` (e.g. the ELF's file name). */
  readonly guestName?: string;
  /** How long to wait for another writer of the same layout; default 30 000 ms. */
  readonly lockTimeoutMs?: number;
  /** Called while the memory image is hashed and written (bytes done, bytes total). */
  readonly onProgress?: Progress;
}

const WRITE_SLICE = 32 << 20;
const PAGE = 4096;

export async function saveSnapshot(snapshot: Snapshot, dir: string, tag: string, options: SaveOptions = {}): Promise<string> {
  if (typeof tag !== "string" || !TAG_PATTERN.test(tag)) {
    throw new InvalidConfigError(`"${String(tag)}" is not an OCI tag (letters, digits, _ . -; up to 128; not starting with . or -)`);
  }
  if (typeof dir !== "string" || dir === "") throw new InvalidConfigError("save() needs a directory path");
  ensureDir(dir);
  return withWriterLock(dir, options.lockTimeoutMs ?? 30_000, async () => {
    removeStaleTemps(dir);
    const index = readIndexForUpdate(dir);
    ensureDir(path.join(dir, BLOBS_DIR));
    const memory = await putMemory(dir, snapshot.image, options.onProgress);
    const guestElf = putBlob(dir, MEDIA_TYPE.guestElf, snapshot.guestElf);
    const config = putBlob(dir, MEDIA_TYPE.config, toJsonBytes(encodeConfig(snapshot.state)));
    const annotations: Record<string, string> = {
      [ANNOTATION.created]: snapshot.state.createdAt.toISOString(),
      [ANNOTATION.version]: VMLET_VERSION,
      [ANNOTATION.memorySize]: String(snapshot.memorySize),
      [ANNOTATION.generation]: String(snapshot.generation),
      ...(options.guestName ? { [ANNOTATION.guest]: options.guestName } : {}),
    };
    const manifest = putBlob(dir, MEDIA_TYPE.manifest, toJsonBytes(buildManifest(config, memory, guestElf, annotations)));
    fsyncDir(path.join(dir, BLOBS_DIR));
    fsyncDir(dir);
    const entry: Descriptor = { ...manifest, artifactType: MEDIA_TYPE.artifact, annotations: { [ANNOTATION.refName]: tag } };
    if (!index.manifests.some((d) => tagOf(d) === tag && d.digest === manifest.digest)) {
      writeIndex(dir, { ...index, manifests: [...index.manifests.filter((d) => tagOf(d) !== tag), entry] });
    }
    return manifest.digest;
  });
}

/** The current index (a fresh one for a new layout). A corrupt existing index is not overwritten. */
function readIndexForUpdate(dir: string): OciIndex {
  const marker = path.join(dir, OCI_LAYOUT_FILE);
  if (fs.existsSync(marker)) parseLayoutMarker(readCapped(dir, OCI_LAYOUT_FILE, MAX_BYTES.layoutFile));
  else {
    writeFileAtomic(dir, marker, new TextEncoder().encode(layoutMarker()));
    fsyncDir(dir);
  }
  if (!fs.existsSync(path.join(dir, INDEX_FILE))) return emptyIndex();
  try {
    return parseIndex(readCapped(dir, INDEX_FILE, MAX_BYTES.index));
  } catch (error) {
    if (error instanceof SnapshotInvalidError) throw new SnapshotInvalidError(INDEX_FILE, `${error.message}; refusing to overwrite it`, { cause: error });
    throw error;
  }
}

/** Replaces index.json by rename: the commit point of a save, rm or gc. */
export function writeIndex(dir: string, index: OciIndex): void {
  writeFileAtomic(dir, path.join(dir, INDEX_FILE), toJsonBytes(index));
  fsyncDir(dir);
}

/** A blob already in the layout (written under its digest name, so complete) is not written again. */
function present(dir: string, digest: string, size: number): boolean {
  try {
    const stat = fs.lstatSync(blobPath(dir, digest));
    return stat.isFile() && stat.size === size;
  } catch {
    return false;
  }
}

function putBlob(dir: string, mediaType: string, bytes: Uint8Array): Descriptor {
  const digest = sha256(bytes);
  if (!present(dir, digest, bytes.byteLength)) writeFileAtomic(dir, blobPath(dir, digest), bytes);
  return { mediaType, digest, size: bytes.byteLength };
}

/** The memory image: hashed (holes as zeros, without touching them), then written sparse. */
async function putMemory(dir: string, image: MemoryImage, onProgress?: Progress): Promise<Descriptor> {
  const ranges = image.dataRanges();
  const digest = knownDigest(image) ?? (await sha256OfImage(image.view, ranges, image.size, onProgress && ((d, t) => onProgress(d / 2, t))));
  rememberDigest(image, digest);
  const descriptor = { mediaType: MEDIA_TYPE.memory, digest, size: image.size };
  if (present(dir, digest, image.size)) {
    onProgress?.(image.size, image.size);
    return descriptor;
  }
  const temp = createTemp(dir);
  try {
    fs.ftruncateSync(temp.fd, image.size);
    let written = 0;
    for (let r = 0; r < ranges.length; r += 2) {
      const rangeEnd = Math.min(Math.ceil(ranges[r + 1]! / PAGE) * PAGE, image.size);
      for (let at = Math.floor(ranges[r]! / PAGE) * PAGE; at < rangeEnd; at += WRITE_SLICE) {
        const end = Math.min(rangeEnd, at + WRITE_SLICE);
        writePages(image, temp.fd, at, end, temp.file);
        written += end - at;
        onProgress?.(image.size / 2 + (written / Math.max(1, dataBytes(ranges))) * (image.size / 2), image.size);
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  } catch (error) {
    discardTemp(temp);
    throw error instanceof VmletError ? error : storageError(temp.file, error);
  }
  commitTemp(temp, blobPath(dir, digest));
  onProgress?.(image.size, image.size);
  return descriptor;
}

function writePages(image: MemoryImage, fd: number, start: number, end: number, file: string): void {
  try {
    image.writeNonZeroPagesTo(fd, start, end);
  } catch (error) {
    const e = error as NativeError;
    throw storageError(file, Object.assign(new Error(e.message), { code: e.code }));
  }
}

function dataBytes(ranges: readonly number[]): number {
  let n = 0;
  for (let r = 0; r < ranges.length; r += 2) n += ranges[r + 1]! - ranges[r]!;
  return n;
}

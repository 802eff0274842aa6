/**
 * Snapshot.save: writes a snapshot into an OCI layout, crash-safely. Blobs go to temp
 * files in the layout root, are fsync'd and renamed to their digest names; the blob
 * folder is fsync'd; index.json is replaced last, by rename (the commit point), and
 * the layout folder fsync'd again. A crash at any point leaves the previous index,
 * which references only complete blobs. Writers serialise on an flock.
 */
import fs from "node:fs";
import { InvalidConfigError, VmletError } from "../../errors/errors.js";
import type { MemoryImage } from "../memory-image.js";
import type { Snapshot } from "../snapshot.js";
import { knownDigest, rememberDigest } from "./blob-digests.js";
import { encodeConfig } from "./config-blob.js";
import { sha256, sha256OfImage, type Progress } from "./digest.js";
import { SnapshotInvalidError } from "./errors.js";
import { ANNOTATION, INDEX_FILE, MAX_BYTES, MEDIA_TYPE, OCI_LAYOUT_FILE, TAG_PATTERN } from "./format.js";
import { LayoutDir } from "./layout-dir.js";
import {
  createTemp, discardTemp, ensureDir, readCapped, removeStaleTemps, renameTemp, storageError, withWriterLock, writeFileAtomic, writeTemp, type Target, type Temp,
} from "./layout-files.js";
import { buildManifest, emptyIndex, layoutMarker, parseIndex, parseLayoutMarker, tagOf, toJsonBytes, type Descriptor, type OciIndex } from "./oci.js";
import { VMLET_VERSION } from "../../version.js";
import { checkSaveOptions, type CheckedSaveOptions } from "./option-checks.js";
import { planDiff, writeDiffLayer } from "./save-diff.js";
import { readManifest } from "./reader.js";

export interface SaveOptions {
  /** Recorded in the manifest for `vmlet snapshot ls` (e.g. the ELF's file name). */
  readonly guestName?: string;
  /** How long to wait for another writer of the same layout; default 30 000 ms. */
  readonly lockTimeoutMs?: number;
  /** Called while the memory image is hashed and written (bytes done, bytes total). */
  readonly onProgress?: Progress;
  /**
   * A tag or manifest digest of this layout holding an ancestor of the snapshot (the
   * snapshot a sandbox was made from, saved or loaded in this process): only the pages
   * changed since it are written, as a diff layer over the base's layers. Costs the pages
   * changed, not the memory size. See docs/snapshots.md § Diff layers.
   */
  readonly base?: string;
  /**
   * Save what changed since the nearest ancestor this layout holds (the snapshot a sandbox
   * or pool was made from, when it was loaded from or saved to this layout): a diff layer over
   * it, found by the snapshot's own memory history; a full save when the layout holds none.
   * Not together with `base`.
   */
  readonly diff?: boolean;
}

const WRITE_SLICE = 32 << 20;
const PAGE = 4096;

export async function saveSnapshot(snapshot: Snapshot, dir: string, tag: string, options?: SaveOptions): Promise<string> {
  const checked = checkSaveOptions(options);
  if (typeof tag !== "string" || !TAG_PATTERN.test(tag)) {
    throw new InvalidConfigError(`"${String(tag)}" is not an OCI tag (letters, digits, _ . -; up to 128; not starting with . or -)`);
  }
  if (typeof dir !== "string" || dir === "") throw new InvalidConfigError("save() needs a directory path");
  ensureDir(dir);
  // Held open until every temp is renamed or removed: their paths resolve through it.
  const root = LayoutDir.open(dir);
  try {
    return await withWriterLock(root, checked.lockTimeoutMs, async () => {
      removeStaleTemps(root);
      const staged = new Staged();
      try {
        return await saveStaged(snapshot, root, tag, checked, staged);
      } catch (error) {
        staged.discard();
        throw error;
      } finally {
        staged.closeDirs();
      }
    });
  } finally {
    root.close();
  }
}

/**
 * Files are written to temps first (the layout marker, the blobs, the new index) and
 * fsync'd together, so the journal commits once for all of them instead of once per file;
 * the memory blob's fsync starts as soon as it is written and runs on the thread pool
 * while the image is hashed. Then the blobs are renamed into place and the directories
 * fsync'd, and only then is index.json renamed: the commit point, as before.
 */
async function saveStaged(snapshot: Snapshot, root: LayoutDir, tag: string, options: CheckedSaveOptions, staged: Staged): Promise<string> {
  const index = readIndexForUpdate(root, staged);
  const blobs = staged.blobsDir(root);
  const layout = { root, blobs };
  // The ELF and config do not depend on the memory digest: their fsyncs join the memory blob's.
  const guestElf = putBlob(layout, MEDIA_TYPE.guestElf, snapshot.lineage.guestElf, staged);
  const config = putBlob(layout, MEDIA_TYPE.config, toJsonBytes(encodeConfig(snapshot.state, snapshot.image.workingSet)), staged);
  staged.startSyncs();
  const base = options.base ?? (options.diff ? nearestAncestorIn(root.hostPath, index, snapshot) : undefined);
  const memoryLayers = base === undefined
    ? [await putMemory(layout, snapshot.image, staged, options.onProgress)]
    : await putDiff(layout, snapshot, index, base, staged, options.onProgress);
  const annotations: Record<string, string> = {
    [ANNOTATION.created]: snapshot.state.createdAt.toISOString(),
    [ANNOTATION.version]: VMLET_VERSION,
    [ANNOTATION.memorySize]: String(snapshot.memorySize),
    [ANNOTATION.generation]: String(snapshot.generation),
    ...(options.guestName ? { [ANNOTATION.guest]: options.guestName } : {}),
  };
  const manifest = putBlob(layout, MEDIA_TYPE.manifest, toJsonBytes(buildManifest(config, memoryLayers, guestElf, annotations)), staged);
  const entry: Descriptor = { ...manifest, artifactType: MEDIA_TYPE.artifact, annotations: { [ANNOTATION.refName]: tag } };
  const indexTemp = index.manifests.some((d) => tagOf(d) === tag && d.digest === manifest.digest)
    ? undefined
    : writeTemp(root, toJsonBytes({ ...index, manifests: [...index.manifests.filter((d) => tagOf(d) !== tag), entry] }));
  if (indexTemp) staged.unsynced.push(staged.track(indexTemp));
  await staged.syncAll();
  staged.renameAll();
  blobs.fsync();
  root.fsync();
  if (indexTemp) {
    renameTemp(indexTemp, { dir: root, name: INDEX_FILE });
    root.fsync();
  }
  snapshot.image.history.savedAs.add(memoryLayers.at(-1)!.digest);
  return manifest.digest;
}

/** The layout's two directories a save writes into, both held open. */
interface HeldLayout {
  readonly root: LayoutDir;
  readonly blobs: LayoutDir;
}

/** Temps of one save: written, then fsync'd together, then renamed to their targets. */
class Staged {
  /** Written, fsync not started yet. */
  readonly unsynced: Temp[] = [];
  readonly syncing: Array<Promise<void>> = [];
  readonly renames: Array<{ temp: Temp; target: Target }> = [];
  /** Every temp of the save, removed if it fails (a renamed one is gone already). */
  private readonly all: Temp[] = [];
  private readonly dirs: LayoutDir[] = [];

  /** blobs/sha256, created if missing, opened without following symlinks; closed by closeDirs(). */
  blobsDir(root: LayoutDir): LayoutDir {
    const blobs = root.openDir("blobs", { create: true });
    this.dirs.push(blobs);
    const sha256 = blobs.openDir("sha256", { create: true });
    this.dirs.push(sha256);
    return sha256;
  }

  closeDirs(): void {
    for (const d of this.dirs.splice(0)) d.close();
  }

  track(temp: Temp): Temp {
    this.all.push(temp);
    return temp;
  }

  add(temp: Temp, target: Target): void {
    this.track(temp);
    this.renameLater(temp, target);
  }

  /** Starts the temp's fsync now, on the thread pool. */
  startSync(temp: Temp): Promise<void> {
    const syncing = fsyncAsync(temp);
    syncing.catch(() => undefined); // awaited in syncAll(); a failed save must not also report it unhandled
    this.syncing.push(syncing);
    return syncing;
  }

  /** Renamed to `target` by renameAll(), after every fsync. */
  renameLater(temp: Temp, target: Target): void {
    this.renames.push({ temp, target });
  }

  /** Starts the fsync of every temp written so far. */
  startSyncs(): void {
    for (const t of this.unsynced.splice(0)) this.startSync(t);
  }

  async syncAll(): Promise<void> {
    this.startSyncs();
    await Promise.all(this.syncing.splice(0));
  }

  renameAll(): void {
    for (const { temp, target } of this.renames) renameTemp(temp, target);
  }

  discard(): void {
    for (const t of this.all) discardTemp(t);
  }
}

function fsyncAsync(temp: Temp): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(temp.fd, (error) => (error ? reject(storageError(temp.shown, error)) : resolve())));
}

/** The current index (a fresh one for a new layout). A corrupt existing index is not overwritten. */
function readIndexForUpdate(root: LayoutDir, staged: Staged): OciIndex {
  if (root.lstat(OCI_LAYOUT_FILE)) parseLayoutMarker(readCapped(root, OCI_LAYOUT_FILE, MAX_BYTES.layoutFile));
  else {
    const temp = writeTemp(root, new TextEncoder().encode(layoutMarker()));
    staged.unsynced.push(temp);
    staged.add(temp, { dir: root, name: OCI_LAYOUT_FILE });
  }
  if (!root.lstat(INDEX_FILE)) return emptyIndex();
  try {
    return parseIndex(readCapped(root, INDEX_FILE, MAX_BYTES.index));
  } catch (error) {
    if (error instanceof SnapshotInvalidError) throw new SnapshotInvalidError(INDEX_FILE, `${error.message}; refusing to overwrite it`, { cause: error });
    throw error;
  }
}

/** Replaces index.json by rename: the commit point of a save, rm or gc. */
export function writeIndex(root: LayoutDir, index: OciIndex): void {
  writeFileAtomic(root, { dir: root, name: INDEX_FILE }, toJsonBytes(index));
  root.fsync();
}

const hexOf = (digest: string): string => digest.slice("sha256:".length);

/** A blob already in the layout (written under its digest name, so complete) is not written again. */
function present(blobs: LayoutDir, digest: string, size: number): boolean {
  const stat = blobs.lstat(hexOf(digest));
  return stat !== undefined && stat.isFile() && stat.size === size;
}

function putBlob(layout: HeldLayout, mediaType: string, bytes: Uint8Array, staged: Staged): Descriptor {
  const digest = sha256(bytes);
  const name = hexOf(digest);
  if (!present(layout.blobs, digest, bytes.byteLength) && !staged.renames.some((r) => r.target.dir === layout.blobs && r.target.name === name)) {
    const temp = writeTemp(layout.root, bytes);
    staged.unsynced.push(temp);
    staged.add(temp, { dir: layout.blobs, name });
  }
  return { mediaType, digest, size: bytes.byteLength };
}

/**
 * The memory image, written sparse, then hashed (holes as zeros, without touching them)
 * while its fsync runs on the thread pool. A known digest whose blob is present skips the
 * write; an unknown one is only known after the write (the blob is then dropped if present).
 */
async function putMemory(layout: HeldLayout, image: MemoryImage, staged: Staged, onProgress?: Progress): Promise<Descriptor> {
  const ranges = image.dataRanges();
  const known = knownDigest(image);
  if (known !== undefined && present(layout.blobs, known, image.size)) {
    onProgress?.(image.size, image.size);
    return { mediaType: MEDIA_TYPE.memory, digest: known, size: image.size };
  }
  const temp = createTemp(layout.root);
  try {
    fs.ftruncateSync(temp.fd, image.size);
    const toWrite = Math.max(1, dataBytes(ranges));
    let written = 0;
    for (let r = 0; r < ranges.length; r += 2) {
      const rangeEnd = Math.min(Math.ceil(ranges[r + 1]! / PAGE) * PAGE, image.size);
      for (let at = Math.floor(ranges[r]! / PAGE) * PAGE; at < rangeEnd; at += WRITE_SLICE) {
        const end = Math.min(rangeEnd, at + WRITE_SLICE);
        image.copyNonZeroPagesTo(temp.fd, at, end); // a native error (ENOSPC, EFBIG, …) becomes a StorageError below
        written += end - at;
        onProgress?.((written / toWrite) * (image.size / 2), image.size);
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  } catch (error) {
    discardTemp(temp);
    throw error instanceof VmletError ? error : storageError(temp.shown, error);
  }
  // Its fsync runs while the image is hashed, and is awaited with the other temps' in
  // syncAll(), so the manifest and index temps can join the same journal commit.
  staged.track(temp);
  const syncing = staged.startSync(temp);
  let digest: string;
  try {
    digest = known ?? (await sha256OfImage(image.view, ranges, image.size, onProgress && ((d, t) => onProgress(t / 2 + d / 2, t))));
  } catch (error) {
    await syncing.catch(() => undefined); // the caller removes the temp; not under a running fsync
    throw error;
  }
  rememberDigest(image, digest);
  if (present(layout.blobs, digest, image.size)) {
    await syncing.catch(() => undefined);
    discardTemp(temp);
  } else {
    staged.renameLater(temp, { dir: layout.blobs, name: hexOf(digest) });
  }
  onProgress?.(image.size, image.size);
  return { mediaType: MEDIA_TYPE.memory, digest, size: image.size };
}

/**
 * The manifest digest of the snapshot in `index` whose memory is this snapshot's nearest saved
 * ancestor (or its own memory), or undefined. Manifests that cannot be read are passed over:
 * they cannot be a base.
 */
function nearestAncestorIn(dir: string, index: OciIndex, snapshot: Snapshot): string | undefined {
  const manifestOf = new Map<string, string>();
  for (const descriptor of index.manifests) {
    try {
      manifestOf.set(readManifest(dir, index, descriptor.digest).memoryLayers.at(-1)!.digest, descriptor.digest);
    } catch {
      // unreadable or not a vmlet snapshot: not a base
    }
  }
  const top = snapshot.image.history.nearestSaved(new Set(manifestOf.keys()));
  return top === undefined ? undefined : manifestOf.get(top);
}

/** The base's layers plus a diff layer of the pages changed since it (none when nothing changed). */
async function putDiff(layout: HeldLayout, snapshot: Snapshot, index: OciIndex, base: string, staged: Staged, onProgress?: Progress): Promise<Descriptor[]> {
  const { chain, pages } = planDiff(snapshot, layout.root.hostPath, layout.blobs, index, base);
  if (pages.length === 0) return [...chain];
  const { temp, descriptor } = await writeDiffLayer(layout.root, snapshot.image, pages, chain.at(-1)!.digest);
  staged.track(temp);
  if (present(layout.blobs, descriptor.digest, descriptor.size)) discardTemp(temp);
  else {
    staged.startSync(temp);
    staged.renameLater(temp, { dir: layout.blobs, name: hexOf(descriptor.digest) });
  }
  onProgress?.(descriptor.size, descriptor.size);
  return [...chain, descriptor];
}

function dataBytes(ranges: readonly number[]): number {
  let n = 0;
  for (let r = 0; r < ranges.length; r += 2) n += ranges[r + 1]! - ranges[r]!;
  return n;
}

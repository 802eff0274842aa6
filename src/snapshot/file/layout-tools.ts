/**
 * Working with a whole layout directory: list, inspect, verify, remove a tag, collect
 * garbage. `vmlet snapshot …` is a thin layer over these. Writers (remove, gc) take the
 * same lock as save().
 */
import fs from "node:fs";
import { describeLayout } from "../../mem/layout.js";
import { encodeConfig, type SnapshotConfigBlob } from "./config-blob.js";
import type { Progress } from "./digest.js";
import { ANNOTATION, MAX_BYTES, MEDIA_TYPE, TAG_PATTERN } from "./format.js";
import { LayoutDir } from "./layout-dir.js";
import { openRegular, readCapped, removeStaleTemps, withWriterLock } from "./layout-files.js";
import { ambiguousTagError, ambiguousTags, parseDescriptor, tagOf, type Descriptor, type OciIndex } from "./oci.js";
import * as J from "./json-checks.js";
import { blobRelative, readBlob, readEntry, readEntryAt, readIndex, type SnapshotEntry } from "./reader.js";
import { writeIndex } from "./save.js";
import { openMemoryLayers } from "./memory-layers.js";
import { diffPageCount } from "./diff-layer.js";
import { Snapshot } from "../snapshot.js";
import { checkLoadedImage } from "../image-checks.js";
import { checkLayoutWriteOptions, checkSquashOptions, checkVerifyOptions } from "./option-checks.js";
import { InvalidConfigError, VmletError } from "../../errors/errors.js";

export interface SnapshotListing {
  /** The tag, or undefined for an untagged manifest. */
  readonly tag: string | undefined;
  readonly digest: string;
  readonly created: string;
  /** The guest's name as given to save() (e.g. its ELF file name), if any. */
  readonly guest: string | undefined;
  readonly memorySize: number;
  /** Sum of the snapshot's blob sizes (manifest, config, memory, ELF): the bytes a registry transfers. */
  readonly size: number;
  /** Bytes the memory layers occupy on this disk (holes cost nothing). */
  readonly memoryDiskBytes: number;
  /** Memory layers: 1 for a full snapshot, 1 + the diff layers over it otherwise. */
  readonly memoryLayers: number;
  readonly generation: number;
  readonly vmletVersion: string;
}

export interface SnapshotInspection {
  readonly tag: string | undefined;
  readonly descriptor: Descriptor;
  readonly annotations: Readonly<Record<string, string>>;
  readonly blobs: { readonly config: Descriptor; readonly guestElf: Descriptor };
  /** The memory chain bottom-up: the full layer, then each diff layer over the one before it. */
  readonly memoryLayers: readonly MemoryLayerInfo[];
  /** The config blob without the raw XSAVE area. */
  readonly config: Omit<SnapshotConfigBlob, "cpuState"> & { readonly cpuState: Omit<SnapshotConfigBlob["cpuState"], "xsave"> };
  /** The memory layout as a table, as `describeLayout` renders it. */
  readonly layoutTable: string;
  /** Sum of the snapshot's blob sizes, as in SnapshotListing. */
  readonly size: number;
  /** Bytes the memory layers occupy on this disk. */
  readonly memoryDiskBytes: number;
}

export interface MemoryLayerInfo {
  readonly descriptor: Descriptor;
  readonly kind: "full" | "diff";
  /** Pages a diff layer holds (worked out from its size); undefined for the full layer. */
  readonly pages: number | undefined;
  /** Bytes the layer's blob occupies on this disk (0 if it cannot be read). */
  readonly diskBytes: number;
}

export interface VerifyProblem {
  /** Tag or manifest digest the problem belongs to ("index" for the layout itself). */
  readonly ref: string;
  readonly error: VmletError;
}

/** What scan() found: the readable snapshots, and the manifests it could not read. */
export interface SnapshotScan {
  readonly snapshots: readonly SnapshotListing[];
  readonly problems: readonly VerifyProblem[];
}

export interface VerifyReport {
  readonly ok: boolean;
  /** Manifests checked. */
  readonly snapshots: number;
  /** Distinct blobs whose sha256 was verified. */
  readonly blobsVerified: number;
  readonly problems: readonly VerifyProblem[];
}

export interface GcReport {
  readonly removedBlobs: readonly string[];
  readonly freedBytes: number;
  readonly removedTempFiles: number;
  /** Unreferenced entries of blobs/sha256 left in place because they are not regular files (symlinks, directories, FIFOs). */
  readonly skipped: readonly string[];
}

export interface LayoutWriteOptions {
  /** How long to wait for another writer; default 30 000 ms. */
  readonly lockTimeoutMs?: number;
}

/** Tools for one OCI layout directory of vmlet snapshots. */
export class SnapshotLayout {
  constructor(readonly dir: string) {
    if (typeof dir !== "string" || dir === "") throw new InvalidConfigError("SnapshotLayout needs a directory path");
  }

  /** Every vmlet snapshot in the index, in index order. Other artifacts are skipped. Throws the first unreadable manifest's error (scan() lists around it). */
  list(): SnapshotListing[] {
    const { snapshots, problems } = this.scan();
    if (problems[0]) throw problems[0].error;
    return [...snapshots];
  }

  /**
   * The readable snapshots of the index, in index order, and a problem for each manifest
   * whose manifest or config cannot be read or fails its checks (the memory blob is not
   * read: verify() hashes it). Throws only when the layout itself (index.json) is unusable.
   */
  scan(): SnapshotScan {
    const index = readIndex(this.dir);
    const snapshots: SnapshotListing[] = [];
    const problems: VerifyProblem[] = ambiguityProblems(index);
    for (const d of index.manifests.filter((m) => m.mediaType === MEDIA_TYPE.manifest)) {
      try {
        snapshots.push(this.listing(readEntryAt(this.dir, d)));
      } catch (error) {
        if (!(error instanceof VmletError)) throw error;
        problems.push({ ref: tagOf(d) ?? d.digest, error });
      }
    }
    return { snapshots, problems };
  }

  inspect(ref: string): SnapshotInspection {
    const entry = readEntry(this.dir, readIndex(this.dir), ref);
    const encoded = encodeConfig(entry.state, entry.workingSet);
    const { xsave: _xsave, ...cpuState } = encoded.cpuState;
    const config = { ...encoded, cpuState };
    return {
      tag: tagOf(entry.descriptor),
      descriptor: entry.descriptor,
      annotations: entry.manifest.annotations,
      blobs: { config: entry.manifest.config, guestElf: entry.guestElf },
      memoryLayers: entry.memoryLayers.map((d, i) => ({ descriptor: d, kind: i === 0 ? "full" : "diff", pages: i === 0 ? undefined : diffPageCount(d.size), diskBytes: this.diskBytes(d) })),
      config,
      layoutTable: describeLayout(entry.state.layout),
      size: entrySize(entry),
      memoryDiskBytes: this.memoryDiskBytes(entry),
    };
  }

  /** Checks every structural rule and every blob's sha256 (each blob hashed once). Never throws for a bad layout: it reports. */
  async verify(options?: { onProgress?: Progress }): Promise<VerifyReport> {
    const onProgress = checkVerifyOptions(options);
    const verified = new Set<string>();
    let snapshots = 0;
    let index;
    try {
      index = readIndex(this.dir);
    } catch (error) {
      if (error instanceof VmletError) return { ok: false, snapshots: 0, blobsVerified: 0, problems: [{ ref: "index", error }] };
      throw error;
    }
    const problems = ambiguityProblems(index);
    const entries: Array<{ ref: string; entry: SnapshotEntry }> = [];
    for (const d of index.manifests) {
      const ref = tagOf(d) ?? d.digest;
      snapshots++;
      try {
        const entry = readEntryAt(this.dir, d); // checks manifest, config and their digests
        verified.add(d.digest).add(entry.manifest.config.digest);
        readBlob(this.dir, entry.guestElf, MAX_BYTES.guestElf);
        verified.add(entry.guestElf.digest);
        entries.push({ ref, entry });
      } catch (error) {
        if (!(error instanceof VmletError)) throw error;
        problems.push({ ref, error });
      }
    }
    const unverified = (layers: readonly Descriptor[]): Descriptor[] => layers.filter((l) => !verified.has(l.digest));
    const total = [...new Map(entries.flatMap(({ entry }) => unverified(entry.memoryLayers).map((l) => [l.digest, l.size]))).values()].reduce((a, b) => a + b, 0);
    let done = 0;
    for (const { ref, entry } of entries) {
      const toHash = unverified(entry.memoryLayers);
      const bytes = toHash.reduce((n, l) => n + l.size, 0);
      try {
        // Layers hashed for an earlier manifest (a shared base) are placed, not hashed again.
        const image = await openMemoryLayers(this.dir, entry.memoryLayers, entry.state.layout.memorySize, { verify: (l) => !verified.has(l.digest), onProgress: onProgress && ((d) => onProgress(done + Math.min(d, bytes), total)) });
        for (const l of toHash) verified.add(l.digest);
        // Per manifest, not per blob: the supervisor pages vmlet builds depend on the config's layout.
        checkLoadedImage(image, entry.state, blobRelative(entry.memoryLayers.at(-1)!.digest));
      } catch (error) {
        if (!(error instanceof VmletError)) throw error;
        problems.push({ ref, error });
      }
      done += bytes;
    }
    return { ok: problems.length === 0, snapshots, blobsVerified: verified.size, problems };
  }

  /**
   * Merges the memory chain of `ref` into one full layer and saves the result under `tag`
   * (replacing it if it exists; `ref`'s own tag is left as it is). Every layer read is
   * hashed first, so a corrupt chain is never baked into a new digest. Resolves to the new
   * manifest's digest.
   */
  async squash(ref: string, tag: string, options?: LayoutWriteOptions & { onProgress?: Progress }): Promise<string> {
    const { lockTimeoutMs, onProgress } = checkSquashOptions(options);
    const entry = readEntry(this.dir, readIndex(this.dir), ref);
    const image = await openMemoryLayers(this.dir, entry.memoryLayers, entry.state.layout.memorySize, { verify: () => true, onProgress: onProgress && ((d, t) => onProgress(d / 2, t)) });
    checkLoadedImage(image, entry.state, blobRelative(entry.memoryLayers.at(-1)!.digest));
    const guestElf = readBlob(this.dir, entry.guestElf, MAX_BYTES.guestElf);
    const snapshot = new Snapshot(entry.state, image, { id: entry.state.lineage, guestElf, generation: entry.state.generation });
    const guestName = entry.manifest.annotations[ANNOTATION.guest];
    return snapshot.save(this.dir, tag, {
      lockTimeoutMs,
      ...(guestName === undefined ? {} : { guestName }),
      ...(onProgress ? { onProgress: (d: number, t: number) => onProgress(t / 2 + d / 2, t) } : {}),
    });
  }

  /** Removes a tag from the index (the commit point); its blobs stay until gc(). Returns whether the tag existed. */
  async remove(tag: string, options?: LayoutWriteOptions): Promise<boolean> {
    const lockTimeoutMs = checkLayoutWriteOptions(options);
    if (typeof tag !== "string" || !TAG_PATTERN.test(tag)) throw new InvalidConfigError(`"${String(tag)}" is not an OCI tag`);
    readIndex(this.dir); // no layout here: SnapshotNotFoundError, and no lock file left behind
    return this.underLock(lockTimeoutMs, (root) => {
      const index = readIndex(this.dir);
      const kept = index.manifests.filter((d) => tagOf(d) !== tag);
      if (kept.length === index.manifests.length) return false;
      writeIndex(root, { ...index, manifests: kept });
      return true;
    });
  }

  /**
   * Deletes every blob no index entry reaches, and temp files of crashed writers. If a
   * referenced manifest cannot be read, nothing is deleted (its blobs are unknown).
   */
  async gc(options?: LayoutWriteOptions): Promise<GcReport> {
    const lockTimeoutMs = checkLayoutWriteOptions(options);
    readIndex(this.dir); // no layout here: SnapshotNotFoundError, and no lock file left behind
    return this.underLock(lockTimeoutMs, (root) => {
      const removedTempFiles = removeStaleTemps(root);
      const referenced = this.reachableBlobs();
      const report = { removedBlobs: [] as string[], freedBytes: 0, removedTempFiles, skipped: [] as string[] };
      // Held open and never followed through a symlink: deletes cannot land outside the layout.
      const blobs = openBlobsDir(root);
      if (!blobs) return report;
      try {
        for (const name of blobs.names()) {
          if (referenced.has(`sha256:${name}`)) continue;
          const removed = blobs.unlinkRegularFile(name);
          if (removed) {
            report.freedBytes += removed.blocks * 512;
            report.removedBlobs.push(`sha256:${name}`);
          } else if (blobs.lstat(name)) {
            report.skipped.push(blobs.describe(name));
          }
        }
        if (report.removedBlobs.length > 0) blobs.fsync();
      } finally {
        blobs.close();
      }
      return report;
    });
  }

  /** Runs `fn` with the layout directory held open and its writer lock taken. */
  private async underLock<T>(lockTimeoutMs: number, fn: (root: LayoutDir) => T): Promise<T> {
    const root = LayoutDir.open(this.dir);
    try {
      return await withWriterLock(root, lockTimeoutMs, () => fn(root));
    } finally {
      root.close();
    }
  }

  /** Digests reachable from the index: manifests, nested indexes, configs, layers. */
  private reachableBlobs(): Set<string> {
    const reachable = new Set<string>();
    const visit = (d: Descriptor, depth: number): void => {
      if (reachable.has(d.digest)) return;
      reachable.add(d.digest);
      const nested = d.mediaType === MEDIA_TYPE.manifest || d.mediaType === MEDIA_TYPE.index;
      if (!nested || depth > 8) return;
      const o = J.object(J.parseJson(readCapped(this.dir, blobRelative(d.digest), MAX_BYTES.manifest), blobRelative(d.digest)), blobRelative(d.digest));
      const children = [...(o.config ? [o.config] : []), ...(Array.isArray(o.layers) ? o.layers : []), ...(Array.isArray(o.manifests) ? o.manifests : [])];
      children.forEach((c, i) => visit(parseDescriptor(c, `${blobRelative(d.digest)}[${i}]`), depth + 1));
    };
    readIndex(this.dir).manifests.forEach((d) => visit(d, 0));
    return reachable;
  }

  /** Disk blocks of the memory layers (holes cost nothing). */
  private memoryDiskBytes(entry: SnapshotEntry): number {
    return entry.memoryLayers.reduce((n, d) => n + this.diskBytes(d), 0);
  }

  /** Disk blocks of a blob; 0 if it cannot be read. */
  private diskBytes(d: Descriptor): number {
    let fd: number | undefined;
    try {
      fd = openRegular(this.dir, blobRelative(d.digest)).fd;
      return fs.fstatSync(fd).blocks * 512;
    } catch {
      return 0;
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }

  private listing(entry: SnapshotEntry): SnapshotListing {
    const a = entry.manifest.annotations;
    return {
      tag: tagOf(entry.descriptor),
      digest: entry.descriptor.digest,
      created: entry.state.createdAt.toISOString(),
      guest: a[ANNOTATION.guest],
      memorySize: entry.state.layout.memorySize,
      size: entrySize(entry),
      memoryDiskBytes: this.memoryDiskBytes(entry),
      memoryLayers: entry.memoryLayers.length,
      generation: entry.state.generation,
      vmletVersion: a[ANNOTATION.version] ?? "unknown",
    };
  }
}

/** The bytes a registry transfers for a snapshot: its manifest and every blob it names. */
function entrySize(entry: SnapshotEntry): number {
  return entry.descriptor.size + entry.manifest.config.size + entry.memoryLayers.reduce((n, l) => n + l.size, 0) + entry.guestElf.size;
}

/** blobs/sha256 held open (symlinks refused), or undefined when the layout has no blobs yet. */
function openBlobsDir(root: LayoutDir): LayoutDir | undefined {
  const blobs = root.openDirIfPresent("blobs");
  if (!blobs) return undefined;
  try {
    return blobs.openDirIfPresent("sha256");
  } finally {
    blobs.close();
  }
}

/** A problem for each tag that names more than one manifest: loading it is refused, so the layout is not ok. */
function ambiguityProblems(index: OciIndex): VerifyProblem[] {
  return [...ambiguousTags(index)].map(([tag, digests]) => ({ ref: tag, error: ambiguousTagError(tag, digests) }));
}

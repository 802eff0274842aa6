/**
 * Snapshot.load / checkedLoad: a snapshot from a layout directory. The memory layers are
 * copied into private memory (memory-layers.ts): the cost is the pages they store, not
 * the memory size; checkedLoad hashes what it copies. The supervisor pages are then read
 * and compared with vmlet's own (image-checks.ts).
 */
import { InvalidConfigError } from "../../errors/errors.js";
import { guestCpuIdentity, prepareBackend, resolveBackend } from "../../hypervisor/backend.js";
import { missingFeatures } from "../../hypervisor/cpu-features.js";
import { Snapshot } from "../snapshot.js";
import { rememberDigest } from "./blob-digests.js";
import { openMemoryLayers } from "./memory-layers.js";
import type { Progress } from "./digest.js";
import { CpuIncompatibleError, SnapshotTooLargeError } from "./errors.js";
import { MAX_BYTES } from "./format.js";
import { blobRelative, readBlob, readEntry, readIndex } from "./reader.js";
import { checkLoadedImage } from "../image-checks.js";
import { checkDir, checkLoadOptions } from "./option-checks.js";

/** The guest memory a loaded snapshot may have unless the caller allows more: 4 GiB. */
export const DEFAULT_MAX_MEMORY_SIZE = 4 * 1024 * 1024 * 1024;

export interface LoadOptions {
  /** Hash every blob before use (checkedLoad). */
  readonly verify?: boolean;
  readonly onProgress?: Progress;
  /**
   * Refuse (SNAPSHOT_TOO_LARGE) a snapshot whose guest memory is larger than this many
   * bytes, before anything is mapped. Default DEFAULT_MAX_MEMORY_SIZE (4 GiB): the layout,
   * not the loader, would otherwise decide how much memory a sandbox made from it takes.
   */
  readonly maxMemorySize?: number;
}

export async function loadSnapshot(dir: string, ref: string, options?: LoadOptions): Promise<Snapshot> {
  const checked = checkLoadOptions(options);
  checkDir(dir, "load()");
  const maxMemorySize = checkMaxMemorySize(checked.maxMemorySize);
  const entry = readEntry(dir, readIndex(dir), ref);
  const memorySize = entry.state.layout.memorySize;
  if (memorySize > maxMemorySize) throw new SnapshotTooLargeError(ref, memorySize, maxMemorySize);
  const missing = missingFeatures(entry.state.guestCpu.features, guestCpuIdentity());
  if (missing.length > 0) throw new CpuIncompatibleError(missing);
  startBackendAhead(); // a sandbox from this snapshot usually follows: its child execs while the memory is read
  const guestElf = readBlob(dir, entry.guestElf, MAX_BYTES.guestElf);
  const image = await openMemoryLayers(dir, entry.memoryLayers, memorySize, { verify: () => checked.verify, onProgress: checked.onProgress });
  const top = entry.memoryLayers.at(-1)!;
  checkLoadedImage(image, entry.state, blobRelative(top.digest));
  if (entry.memoryLayers.length === 1) rememberDigest(image, top.digest);
  image.history.savedAs.add(top.digest);
  if (entry.workingSet) image.keepWorkingSet(entry.workingSet);
  return new Snapshot(entry.state, image, { id: entry.state.lineage, guestElf, generation: entry.state.generation });
}

/** prepareBackend for the backend a sandbox would get by default; a bad setting is left for fromSnapshot() to report. */
function startBackendAhead(): void {
  try {
    prepareBackend(resolveBackend());
  } catch {
    // VMLET_BACKEND or VMLET_WARM_CHILDREN is invalid, or no backend works: fromSnapshot() says which
  }
}

/** The option as given, or the default; anything but a positive whole number of bytes is INVALID_CONFIG. */
function checkMaxMemorySize(value: unknown): number {
  if (value === undefined) return DEFAULT_MAX_MEMORY_SIZE;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
    throw new InvalidConfigError(`maxMemorySize must be a positive whole number of bytes (got ${typeof value === "number" ? value : typeof value})`);
  }
  return value;
}

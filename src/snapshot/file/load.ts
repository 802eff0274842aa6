/**
 * Snapshot.load / checkedLoad: a snapshot from a layout directory. The memory blob is
 * mapped, not read, so loading costs the same for any memory size; checkedLoad first
 * hashes that same file descriptor.
 */
import { guestCpuIdentity } from "../../hypervisor/backend.js";
import { missingFeatures } from "../../hypervisor/cpu-features.js";
import { Snapshot } from "../snapshot.js";
import { rememberDigest } from "./blob-digests.js";
import type { Progress } from "./digest.js";
import { CpuIncompatibleError } from "./errors.js";
import { MAX_BYTES } from "./format.js";
import { openMemoryImage, readBlob, readEntry, readIndex } from "./reader.js";
import { checkDir, checkLoadOptions } from "./option-checks.js";

export interface LoadOptions {
  /** Hash every blob before use (checkedLoad). */
  readonly verify?: boolean;
  readonly onProgress?: Progress;
}

export async function loadSnapshot(dir: string, ref: string, options?: LoadOptions): Promise<Snapshot> {
  const checked = checkLoadOptions(options);
  checkDir(dir, "load()");
  const entry = readEntry(dir, readIndex(dir), ref);
  const missing = missingFeatures(entry.state.guestCpu.features, guestCpuIdentity());
  if (missing.length > 0) throw new CpuIncompatibleError(missing);
  const guestElf = readBlob(dir, entry.guestElf, MAX_BYTES.guestElf);
  const image = await openMemoryImage(dir, entry.memory, checked.verify, checked.onProgress);
  rememberDigest(image, entry.memory.digest);
  return new Snapshot(entry.state, image, { id: entry.state.lineage, guestElf, generation: entry.state.generation });
}

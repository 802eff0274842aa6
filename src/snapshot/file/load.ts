/**
 * Snapshot.load / checkedLoad: a snapshot from a layout directory. The memory blob is
 * mapped, not read, so loading costs the same for any memory size; checkedLoad first
 * hashes that same file descriptor.
 */
import { guestCpuIdentity } from "../../hypervisor/backend.js";
import { missingFeatures } from "../../hypervisor/cpu-features.js";
import { MemoryImage } from "../memory-image.js";
import { Snapshot } from "../snapshot.js";
import { rememberDigest } from "./blob-digests.js";
import { sha256OfImage, type Progress } from "./digest.js";
import { CpuIncompatibleError, DigestMismatchError } from "./errors.js";
import { MAX_BYTES } from "./format.js";
import { blobRelative, openMemoryBlob, readBlob, readEntry, readIndex } from "./reader.js";

export interface LoadOptions {
  /** Hash every blob before use (checkedLoad). */
  readonly verify?: boolean;
  readonly onProgress?: Progress;
}

export async function loadSnapshot(dir: string, ref: string, options: LoadOptions = {}): Promise<Snapshot> {
  const entry = readEntry(dir, readIndex(dir), ref);
  const missing = missingFeatures(entry.state.guestCpu.features, guestCpuIdentity());
  if (missing.length > 0) throw new CpuIncompatibleError(missing);
  const guestElf = readBlob(dir, entry.guestElf, MAX_BYTES.guestElf);
  const image = MemoryImage.fromFile(openMemoryBlob(dir, entry.memory), entry.memory.size);
  if (options.verify) {
    const actual = await sha256OfImage(image.view, image.dataRanges(), image.size, options.onProgress);
    if (actual !== entry.memory.digest) throw new DigestMismatchError(blobRelative(entry.memory.digest), entry.memory.digest, actual);
  }
  rememberDigest(image, entry.memory.digest);
  return new Snapshot(entry.state, image, { id: entry.state.lineage, guestElf, generation: entry.state.generation });
}

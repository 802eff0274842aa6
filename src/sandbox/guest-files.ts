/**
 * Guest ELF files read by path, kept per process while the file is unchanged: a build reads
 * its guest again each time, and an async read costs several thread-pool round trips
 * (~0.6 ms on a busy 2-core machine) where a stat costs microseconds. A file counts as
 * unchanged while its device, inode, size and modification and change times are; since
 * file systems stamp times at a coarse tick (ext4: the timer tick), a file changed less than
 * two seconds before it was read is not kept: two writes within one tick would look alike.
 * The bytes are shared by every build of the file: a lineage's `guestElf` is never written
 * to, and what callers get (`Snapshot.guestElf`) is a copy.
 */
import { statSync } from "node:fs";
import { readFile } from "node:fs/promises";

interface Cached {
  readonly key: string;
  readonly bytes: Uint8Array;
}

const cache = new Map<string, Cached>();
/** Guest files kept at most, and their bytes together (oldest dropped first). */
const MAX_FILES = 8;
const MAX_TOTAL_BYTES = 64 << 20;
/** Larger files are read each time, not kept. */
const MAX_FILE_BYTES = 16 << 20;
let reads = 0;
/** A file is kept only if it last changed at least this long before it was read (ns). */
const SETTLED_NS = 2_000_000_000n;

/** The file's bytes (not to be written to): kept ones while the file is unchanged, else read (and kept). */
export async function readGuestFile(path: string): Promise<Uint8Array> {
  const before = fileState(path);
  const hit = cache.get(path);
  if (hit && before !== undefined && hit.key === before.key) return hit.bytes;
  reads++;
  const bytes = new Uint8Array(await readFile(path));
  const after = fileState(path);
  cache.delete(path);
  // Kept only if the file had settled before it was read and did not change meanwhile.
  if (before !== undefined && after?.key === before.key && before.settled && bytes.byteLength <= MAX_FILE_BYTES) {
    cache.set(path, { key: before.key, bytes });
    while (cache.size > MAX_FILES || keptBytes() > MAX_TOTAL_BYTES) cache.delete(cache.keys().next().value!);
  }
  return bytes;
}

/** The bytes of every kept file (at most MAX_FILES of them). */
function keptBytes(): number {
  let n = 0;
  for (const kept of cache.values()) n += kept.bytes.byteLength;
  return n;
}

/** @internal Tests: how many times a file was read (not served from the cache), and what is kept. */
export function guestFileCacheStats(): { reads: number; files: number; bytes: number } {
  return { reads, files: cache.size, bytes: keptBytes() };
}

function fileState(path: string): { key: string; settled: boolean } | undefined {
  try {
    const s = statSync(path, { bigint: true });
    const changed = s.mtimeNs > s.ctimeNs ? s.mtimeNs : s.ctimeNs;
    const now = BigInt(Date.now()) * 1_000_000n;
    return { key: `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`, settled: changed < now - SETTLED_NS };
  } catch {
    return undefined;
  }
}

/**
 * Guest ELF files read by path, kept per process while the file is unchanged: a build reads
 * its guest again each time, and an async read costs several thread-pool round trips
 * (~0.6 ms on a busy 2-core machine) where a stat costs microseconds. A file counts as
 * unchanged while its device, inode, size and modification and change times are; since
 * file systems stamp times at a coarse tick (ext4: the timer tick), a file changed less than
 * two seconds before it was read is not kept: two writes within one tick would look alike.
 */
import { statSync } from "node:fs";
import { readFile } from "node:fs/promises";

interface Cached {
  readonly key: string;
  readonly bytes: Uint8Array;
}

const cache = new Map<string, Cached>();
/** Guest files kept at most (oldest dropped first); each is the file's size in memory. */
const MAX_FILES = 8;
/** Larger files are read each time, not kept. */
const MAX_FILE_BYTES = 64 << 20;
/** A file is kept only if it last changed at least this long before it was read (ns). */
const SETTLED_NS = 2_000_000_000n;

/** The file's bytes: kept ones while the file is unchanged, else read (and kept). */
export async function readGuestFile(path: string): Promise<Uint8Array> {
  const before = fileState(path);
  const hit = cache.get(path);
  if (hit && before !== undefined && hit.key === before.key) return hit.bytes;
  const bytes = new Uint8Array(await readFile(path));
  const after = fileState(path);
  cache.delete(path);
  // Kept only if the file had settled before it was read and did not change meanwhile.
  if (before !== undefined && after?.key === before.key && before.settled && bytes.byteLength <= MAX_FILE_BYTES) {
    const key = before.key;
    cache.set(path, { key, bytes });
    if (cache.size > MAX_FILES) cache.delete(cache.keys().next().value!);
  }
  return bytes;
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

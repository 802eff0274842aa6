/**
 * File handling for a layout directory, in the containerd content-store manner:
 * reads refuse symlinks and non-regular files and are size-capped; writes go to a temp
 * name in the layout root (tools such as umoci reject strangers in blobs/sha256),
 * are fsync'd, renamed into place, and the directory is fsync'd.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { loadAddon } from "../../native/addon.js";
import { LayoutLockedError, SnapshotInvalidError, SnapshotNotFoundError, StorageError } from "./errors.js";
import { BLOBS_DIR, LOCK_FILE, TEMP_PREFIX } from "./format.js";

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY, O_CREAT, O_WRONLY, O_EXCL } = fs.constants;

export const blobPath = (dir: string, digest: string): string => path.join(dir, BLOBS_DIR, digest.slice("sha256:".length));

type Errno = NodeJS.ErrnoException;

/** A file system error as the typed error a caller can act on. */
export function storageError(file: string, error: unknown): StorageError {
  const e = error as Errno;
  return new StorageError(file, e.code, e.message, { cause: error });
}

/** Opens a regular file of the layout for reading; symlinks, FIFOs, devices and directories are refused. */
export function openRegular(dir: string, relative: string): { fd: number; size: number } {
  requireRealDirs(dir, relative);
  const file = path.join(dir, relative);
  let fd: number;
  try {
    fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (error) {
    const code = (error as Errno).code;
    if (code === "ENOENT") throw new SnapshotInvalidError(relative, "is missing");
    if (code === "ELOOP") throw new SnapshotInvalidError(relative, "is a symbolic link (refused)");
    throw storageError(file, error);
  }
  const stat = fs.fstatSync(fd);
  if (!stat.isFile()) {
    fs.closeSync(fd);
    throw new SnapshotInvalidError(relative, "is not a regular file (refused)");
  }
  return { fd, size: stat.size };
}

/** Every directory between `dir` and the file must be a real directory, not a symlink. */
function requireRealDirs(dir: string, relative: string): void {
  const parts = relative.split("/").slice(0, -1);
  let at = dir;
  for (const part of parts) {
    at = path.join(at, part);
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(at);
    } catch (error) {
      if ((error as Errno).code === "ENOENT") throw new SnapshotInvalidError(path.relative(dir, at), "is missing");
      throw storageError(at, error);
    }
    if (!stat.isDirectory()) throw new SnapshotInvalidError(path.relative(dir, at), "is not a directory (symlinks are refused)");
  }
}

/** Reads a whole small file, refusing it unread when it is larger than `cap`. */
export function readCapped(dir: string, relative: string, cap: number): Uint8Array {
  const { fd, size } = openRegular(dir, relative);
  try {
    if (size > cap) throw new SnapshotInvalidError(relative, `is ${size} bytes; at most ${cap} are allowed`);
    const bytes = new Uint8Array(size);
    let done = 0;
    while (done < size) {
      const n = fs.readSync(fd, bytes, done, size - done, done);
      if (n === 0) throw new SnapshotInvalidError(relative, "shrank while being read");
      done += n;
    }
    return bytes;
  } finally {
    fs.closeSync(fd);
  }
}

/** The layout directory must exist and be a real directory. */
export function requireLayoutDir(dir: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(dir);
  } catch (error) {
    if ((error as Errno).code === "ENOENT") throw new SnapshotNotFoundError(dir, undefined, `no snapshot layout at ${dir}`);
    throw storageError(dir, error);
  }
  if (!stat.isDirectory()) throw new SnapshotInvalidError(dir, "is not a directory (symlinks are refused)");
}

/** fsync of a directory: makes the renames inside it durable. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, O_RDONLY | O_DIRECTORY);
    fs.fsyncSync(fd);
  } catch (error) {
    throw storageError(dir, error);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** A new temp file in the layout root, created read-only for everyone (blobs are never changed in place). */
export function createTemp(dir: string): { fd: number; file: string } {
  const file = path.join(dir, `${TEMP_PREFIX}${randomBytes(8).toString("hex")}`);
  try {
    return { fd: fs.openSync(file, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, 0o444), file };
  } catch (error) {
    throw storageError(file, error);
  }
}

/** fsync the temp file, then close it and rename it over `target`; the temp is removed on failure. */
export function commitTemp(temp: { fd: number; file: string }, target: string): void {
  try {
    fs.fsyncSync(temp.fd);
  } catch (error) {
    discardTemp(temp);
    throw storageError(target, error);
  }
  renameTemp(temp, target);
}

export function discardTemp(temp: { fd: number; file: string }): void {
  if (temp.fd >= 0) fs.closeSync(temp.fd);
  temp.fd = -1;
  fs.rmSync(temp.file, { force: true });
}

/** A temp file holding `bytes`, not yet fsync'd. */
export function writeTemp(dir: string, bytes: Uint8Array): { fd: number; file: string } {
  const temp = createTemp(dir);
  try {
    let done = 0;
    while (done < bytes.byteLength) done += fs.writeSync(temp.fd, bytes, done, bytes.byteLength - done);
  } catch (error) {
    discardTemp(temp);
    throw storageError(temp.file, error);
  }
  return temp;
}

/** close + rename of a temp already fsync'd; the temp is removed on failure. */
export function renameTemp(temp: { fd: number; file: string }, target: string): void {
  try {
    fs.closeSync(temp.fd);
    temp.fd = -1;
    fs.renameSync(temp.file, target);
  } catch (error) {
    discardTemp(temp);
    throw storageError(target, error);
  }
}

/** Writes `bytes` to `target` atomically (temp, fsync, rename). The caller fsyncs the directory. */
export function writeFileAtomic(dir: string, target: string, bytes: Uint8Array): void {
  commitTemp(writeTemp(dir, bytes), target);
}

export function ensureDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw storageError(dir, error);
  }
  const stat = fs.lstatSync(dir);
  if (!stat.isDirectory()) throw new SnapshotInvalidError(dir, "is not a directory (symlinks are refused)");
}

/**
 * Runs `fn` holding the layout's writer lock (flock on .vmlet.lock, released by the
 * kernel if this process dies). Waits up to `timeoutMs` for another writer.
 */
export async function withWriterLock<T>(dir: string, timeoutMs: number, fn: () => Promise<T> | T): Promise<T> {
  const file = path.join(dir, LOCK_FILE);
  let fd: number;
  try {
    fd = fs.openSync(file, O_CREAT | O_WRONLY | O_NOFOLLOW, 0o644);
  } catch (error) {
    throw storageError(file, error);
  }
  try {
    const addon = loadAddon();
    const deadline = Date.now() + timeoutMs;
    while (!addon.tryLockExclusive(fd)) {
      if (Date.now() >= deadline) throw new LayoutLockedError(dir, timeoutMs);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return await fn();
  } finally {
    fs.closeSync(fd);
  }
}

/** Removes temp files a crashed writer left behind. Call only while holding the writer lock. */
export function removeStaleTemps(dir: string): number {
  let removed = 0;
  for (const name of fs.readdirSync(dir)) {
    if (!name.startsWith(TEMP_PREFIX)) continue;
    fs.rmSync(path.join(dir, name), { force: true });
    removed++;
  }
  return removed;
}

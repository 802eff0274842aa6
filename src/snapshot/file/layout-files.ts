/**
 * File handling for a layout directory, in the containerd content-store manner:
 * reads refuse symlinks and non-regular files and are size-capped; writes go to a temp
 * name in the layout root (tools such as umoci reject strangers in blobs/sha256),
 * are fsync'd, renamed into place, and the directory is fsync'd. Every path is resolved
 * from a directory held open (layout-dir.ts), so no symlink can redirect a read or a write.
 */
import lazyModules from "../../lazy-modules.cjs";
import fs from "node:fs";
import { loadAddon } from "../../native/addon.js";
import { LayoutLockedError, SnapshotInvalidError } from "./errors.js";
import { LOCK_FILE, TEMP_PREFIX } from "./format.js";
import { LayoutDir, storageError } from "./layout-dir.js";

export { storageError } from "./layout-dir.js";

const { O_RDONLY, O_CREAT, O_WRONLY, O_EXCL, O_NOFOLLOW } = fs.constants;

/** A file being written: its descriptor, the path that reaches it through the held directory, and its host path for messages. */
export interface Temp {
  fd: number;
  readonly file: string;
  readonly shown: string;
}

/** Where a temp is renamed to: an entry of a held directory. */
export interface Target {
  readonly dir: LayoutDir;
  readonly name: string;
}

/**
 * Opens a regular file of the layout for reading (`relative` as "blobs/sha256/<hex>"):
 * each directory on the way is opened without following a symlink, and the file itself
 * must be a regular file (symlinks, FIFOs, devices and directories are refused).
 */
export function openRegular(layout: string | LayoutDir, relative: string): { fd: number; size: number } {
  if (typeof layout === "string") return LayoutDir.with(layout, (root) => openRegular(root, relative));
  const parts = relative.split("/");
  const name = parts.pop()!;
  const held: LayoutDir[] = [];
  try {
    let at = layout;
    for (const part of parts) held.push((at = at.openDir(part)));
    return at.openRegularFile(name, O_RDONLY);
  } finally {
    for (const d of held) d.close();
  }
}

/** Reads a whole small file, refusing it unread when it is larger than `cap`. */
export function readCapped(layout: string | LayoutDir, relative: string, cap: number): Uint8Array {
  const { fd, size } = openRegular(layout, relative);
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

/** A new temp file in `root`, created read-only for everyone (blobs are never changed in place). */
export function createTemp(root: LayoutDir): Temp {
  const name = `${TEMP_PREFIX}${lazyModules.crypto().randomBytes(8).toString("hex")}`;
  const shown = root.hostPathOf(name);
  try {
    return { fd: fs.openSync(root.at(name), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, 0o444), file: root.at(name), shown };
  } catch (error) {
    throw storageError(shown, error);
  }
}

/** fsync the temp file, then close it and rename it over `target`; the temp is removed on failure. */
export function commitTemp(temp: Temp, target: Target): void {
  try {
    fs.fsyncSync(temp.fd);
  } catch (error) {
    discardTemp(temp);
    throw storageError(target.dir.hostPathOf(target.name), error);
  }
  renameTemp(temp, target);
}

export function discardTemp(temp: Temp): void {
  if (temp.fd >= 0) fs.closeSync(temp.fd);
  temp.fd = -1;
  try {
    fs.unlinkSync(temp.file);
  } catch {
    // already renamed or removed
  }
}

/** A temp file holding `bytes`, not yet fsync'd. */
export function writeTemp(root: LayoutDir, bytes: Uint8Array): Temp {
  const temp = createTemp(root);
  try {
    let done = 0;
    while (done < bytes.byteLength) done += fs.writeSync(temp.fd, bytes, done, bytes.byteLength - done);
  } catch (error) {
    discardTemp(temp);
    throw storageError(temp.shown, error);
  }
  return temp;
}

/** close + rename of a temp already fsync'd; the temp is removed on failure. */
export function renameTemp(temp: Temp, target: Target): void {
  try {
    fs.closeSync(temp.fd);
    temp.fd = -1;
    fs.renameSync(temp.file, target.dir.at(target.name));
  } catch (error) {
    discardTemp(temp);
    throw storageError(target.dir.hostPathOf(target.name), error);
  }
}

/** Writes `bytes` to `target` atomically (temp in `root`, fsync, rename). The caller fsyncs the directory. */
export function writeFileAtomic(root: LayoutDir, target: Target, bytes: Uint8Array): void {
  commitTemp(writeTemp(root, bytes), target);
}

/** Creates the layout directory (and its parents) if missing; LayoutDir.open then refuses anything but a real directory. */
export function ensureDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw storageError(dir, error);
  }
}

/**
 * Runs `fn` holding the layout's writer lock (flock on .vmlet.lock, released by the
 * kernel if this process dies). Waits up to `timeoutMs` for another writer. The lock file
 * is opened non-blocking and must be a regular file: a FIFO planted there is refused
 * (SNAPSHOT_INVALID) instead of blocking the process in open(2).
 */
export async function withWriterLock<T>(root: LayoutDir, timeoutMs: number, fn: () => Promise<T> | T): Promise<T> {
  const { fd } = root.openRegularFile(LOCK_FILE, O_CREAT | O_WRONLY, 0o644);
  try {
    const addon = loadAddon();
    const deadline = Date.now() + timeoutMs;
    while (!addon.tryLockExclusive(fd)) {
      if (Date.now() >= deadline) throw new LayoutLockedError(root.hostPath, timeoutMs);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return await fn();
  } finally {
    fs.closeSync(fd);
  }
}

/** Removes temp files a crashed writer left behind (regular files only). Call only while holding the writer lock. */
export function removeStaleTemps(root: LayoutDir): number {
  let removed = 0;
  for (const name of root.names()) {
    if (name.startsWith(TEMP_PREFIX) && root.unlinkRegularFile(name)) removed++;
  }
  return removed;
}

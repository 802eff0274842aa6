/**
 * Directories of a layout held open by file descriptor. Node has no openat(2); a path
 * through /proc/self/fd/<fd>/ is its equivalent: the kernel resolves it from the directory
 * the descriptor holds, so a `blobs` or `blobs/sha256` renamed or swapped for a symlink
 * after it was opened cannot redirect a later open, rename or unlink. Each directory is
 * opened with O_DIRECTORY | O_NOFOLLOW, so a symlink is refused, never followed.
 */
import fs from "node:fs";
import path from "node:path";
import { SnapshotInvalidError, SnapshotNotFoundError, StorageError } from "./errors.js";

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
const FD_DIR = "/proc/self/fd";

type Errno = NodeJS.ErrnoException;

/** A file system error as the typed error a caller can act on. */
export function storageError(file: string, error: unknown): StorageError {
  const e = error as Errno;
  return new StorageError(file, e.code, e.message, { cause: error });
}

/** ENOTDIR: a symlink opened with O_DIRECTORY | O_NOFOLLOW; ELOOP: one opened with O_NOFOLLOW alone. */
const isSymlinkRefusal = (code: string | undefined): boolean => code === "ELOOP" || code === "ENOTDIR";

export class LayoutDir {
  #fd: number;

  private constructor(fd: number, readonly where: string, readonly hostPath: string) {
    this.#fd = fd;
  }

  /** Opens the layout directory itself; a missing one is SNAPSHOT_NOT_FOUND, a symlink or file SNAPSHOT_INVALID. */
  static open(dir: string): LayoutDir {
    requireFdDir();
    try {
      return new LayoutDir(fs.openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK), ".", dir);
    } catch (error) {
      const code = (error as Errno).code;
      if (code === "ENOENT") throw new SnapshotNotFoundError(dir, undefined, `no snapshot layout at ${dir}`);
      if (isSymlinkRefusal(code)) throw new SnapshotInvalidError(dir, "is not a directory (symlinks are refused)");
      throw storageError(dir, error);
    }
  }

  /** Runs `fn` with the layout directory open, and closes it after. */
  static with<T>(dir: string, fn: (root: LayoutDir) => T): T {
    const root = LayoutDir.open(dir);
    try {
      return fn(root);
    } finally {
      root.close();
    }
  }

  get fd(): number {
    if (this.#fd < 0) throw new Error(`layout directory ${this.where} used after close`);
    return this.#fd;
  }

  /** The path of entry `name` resolved from the held directory (give it to fs calls). */
  at(name: string): string {
    if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
      throw new Error(`"${name}" is not a single directory entry`); // a vmlet bug: names come from patterns or readdir
    }
    return `${FD_DIR}/${this.fd}/${name}`;
  }

  /** Entry `name` as the layout names it ("blobs/sha256/<hex>"), for messages. */
  describe(name: string): string {
    return this.where === "." ? name : `${this.where}/${name}`;
  }

  /** Entry `name` as a path on the host, for StorageError messages. */
  hostPathOf(name: string): string {
    return path.join(this.hostPath, name);
  }

  /**
   * Subdirectory `name`, opened without following a symlink. With `create`, it is made
   * first if missing (mkdir never follows a symlink either).
   */
  openDir(name: string, options: { create?: boolean } = {}): LayoutDir {
    if (options.create) {
      try {
        fs.mkdirSync(this.at(name), 0o755);
      } catch (error) {
        if ((error as Errno).code !== "EEXIST") throw storageError(this.hostPathOf(name), error);
      }
    }
    try {
      return new LayoutDir(fs.openSync(this.at(name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK), this.describe(name), this.hostPathOf(name));
    } catch (error) {
      const code = (error as Errno).code;
      if (code === "ENOENT") throw new SnapshotInvalidError(this.describe(name), "is missing");
      if (isSymlinkRefusal(code)) throw new SnapshotInvalidError(this.describe(name), "is not a directory (symlinks are refused)");
      throw storageError(this.hostPathOf(name), error);
    }
  }

  /** Like openDir, but undefined when the entry does not exist. */
  openDirIfPresent(name: string): LayoutDir | undefined {
    return this.lstat(name) === undefined ? undefined : this.openDir(name);
  }

  /** lstat of an entry (a symlink is described, not followed); undefined when absent. */
  lstat(name: string): fs.Stats | undefined {
    try {
      return fs.lstatSync(this.at(name));
    } catch (error) {
      const code = (error as Errno).code;
      if (code === "ENOENT") return undefined;
      throw storageError(this.hostPathOf(name), error);
    }
  }

  /** The names of the directory's entries. */
  names(): string[] {
    try {
      return fs.readdirSync(`${FD_DIR}/${this.fd}`);
    } catch (error) {
      throw storageError(this.hostPath, error);
    }
  }

  /**
   * Opens regular file `name` with O_NOFOLLOW | O_NONBLOCK (so a FIFO cannot block the
   * open) plus `flags`, and fstat's the descriptor: anything but a regular file is refused
   * (SNAPSHOT_INVALID), as is a symlink. Non-regular entries are refused before the open
   * too, so a device is never opened.
   */
  openRegularFile(name: string, flags: number, mode?: number): { fd: number; size: number } {
    const where = this.describe(name);
    const before = this.lstat(name);
    if (before?.isSymbolicLink()) throw new SnapshotInvalidError(where, "is a symbolic link (refused)");
    if (before && !before.isFile()) throw new SnapshotInvalidError(where, "is not a regular file (refused)");
    let fd: number;
    try {
      fd = fs.openSync(this.at(name), flags | O_NOFOLLOW | O_NONBLOCK, mode);
    } catch (error) {
      const code = (error as Errno).code;
      if (code === "ENOENT") throw new SnapshotInvalidError(where, "is missing");
      if (code === "ELOOP") throw new SnapshotInvalidError(where, "is a symbolic link (refused)");
      if (code === "ENXIO") throw new SnapshotInvalidError(where, "is not a regular file (refused)"); // a FIFO with no reader, opened for writing
      throw storageError(this.hostPathOf(name), error);
    }
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) {
      fs.closeSync(fd);
      throw new SnapshotInvalidError(where, "is not a regular file (refused)");
    }
    return { fd, size: stat.size };
  }

  /**
   * Unlinks `name` if it is a regular file; returns its lstat, or undefined (and leaves the
   * entry) when it is anything else or absent. unlink(2) never follows a symlink, so an
   * entry swapped after the lstat can only lose its own name.
   */
  unlinkRegularFile(name: string): fs.Stats | undefined {
    const stat = this.lstat(name);
    if (!stat?.isFile()) return undefined;
    try {
      fs.unlinkSync(this.at(name));
    } catch (error) {
      if ((error as Errno).code === "ENOENT") return undefined;
      throw storageError(this.hostPathOf(name), error);
    }
    return stat;
  }

  /** fsync of the directory: makes the renames inside it durable. */
  fsync(): void {
    try {
      fs.fsyncSync(this.fd);
    } catch (error) {
      throw storageError(this.hostPath, error);
    }
  }

  close(): void {
    if (this.#fd >= 0) fs.closeSync(this.#fd);
    this.#fd = -1;
  }
}

let fdDirChecked = false;

/** The handles need /proc; without it no layout path could be opened safely. */
function requireFdDir(): void {
  if (fdDirChecked) return;
  if (!fs.existsSync(FD_DIR)) {
    throw new StorageError(FD_DIR, "ENOENT", "snapshot layouts are opened through /proc/self/fd (openat for Node): mount /proc");
  }
  fdDirChecked = true;
}

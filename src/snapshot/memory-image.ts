/**
 * A snapshot's guest memory: an in-memory file (memfd) with zero pages left as holes,
 * plus a read-only shared view used as the source of restores. Sandboxes made from the
 * snapshot map the file privately, so they share its pages until they write them.
 */
import { readSync } from "node:fs";
import { loadAddon, type NativeAddon } from "../native/addon.js";
import { native } from "../native/errors.js";
import { registerImageView } from "../mem/image-files.js";

const PAGE = 4096;

/** Closes an image's fd once nothing references the image (mappings keep the file alive on their own). */
const closeWhenCollected = new FinalizationRegistry<{ addon: NativeAddon; fd: number }>(({ addon, fd }) => addon.closeFd(fd));

export class MemoryImage {
  #view: Uint8Array | undefined;
  /** Data ranges, found once: an image does not change after it is made. */
  #ranges: number[] | undefined;

  private constructor(readonly fd: number, readonly size: number, readonly pagesStored: number, private readonly addon: NativeAddon) {
    closeWhenCollected.register(this, { addon, fd });
  }

  /**
   * Read-only view of the whole image, mapped on first use (a restore, a hash, a later
   * capture). Not at load: V8 counts an ArrayBuffer's full length as external memory, and
   * a 1 GiB view made Snapshot.load (and the sandboxes made after it) pay a full GC.
   */
  get view(): Uint8Array {
    if (!this.#view) {
      this.#view = new Uint8Array(native("mmap", () => this.addon.mapFileShared(this.fd, this.size)));
      registerImageView(this.#view, this.fd);
    }
    return this.#view;
  }

  /** Copies `memory` into a new image, skipping zero pages. O(memory size): a sandbox's first snapshot. */
  static capture(memory: Uint8Array): MemoryImage {
    return MemoryImage.create(memory.byteLength, (addon, fd) =>
      native("pwrite", () => addon.writeNonZeroPages(fd, memory.buffer as ArrayBuffer, memory.byteOffset, memory.byteLength)),
    );
  }

  /**
   * A later snapshot: `base`'s data, except the `written` pages, which come from `memory`.
   * Reads only the base's data ranges, never its holes (reading a hole through a private
   * mapping would allocate it in the base).
   */
  static captureOver(base: MemoryImage, memory: Uint8Array, written: readonly number[]): MemoryImage {
    const isWritten = new Uint8Array(base.size / PAGE);
    for (const page of written) isWritten[page] = 1;
    return MemoryImage.create(base.size, (addon, fd) => {
      let pages = 0;
      /** Calls `copy(start, pages)` for each run of pages in [first, last) that `include` accepts. */
      const forRuns = (first: number, last: number, include: (page: number) => boolean, copy: (start: number, count: number) => number): void => {
        for (let page = first; page < last; ) {
          if (!include(page)) {
            page++;
            continue;
          }
          const start = page;
          while (page < last && include(page)) page++;
          pages += copy(start, page - start);
        }
      };
      // The base's data, file to file (reading it through the view would fault on every page).
      const ranges = base.dataRanges();
      for (let r = 0; r < ranges.length; r += 2) {
        forRuns(Math.floor(ranges[r]! / PAGE), Math.ceil(ranges[r + 1]! / PAGE), (p) => isWritten[p] === 0,
          (start, count) => native("pwrite", () => addon.copyNonZeroPages(base.fd, fd, start * PAGE, count * PAGE)));
      }
      // Written pages from guest memory, one pwrite per run of consecutive pages (file offset = offset in memory).
      const sorted = [...written].sort((x, y) => x - y);
      for (let i = 0; i < sorted.length; ) {
        let end = i + 1;
        while (end < sorted.length && sorted[end] === sorted[end - 1]! + 1) end++;
        forRuns(sorted[i]!, sorted[end - 1]! + 1, () => true,
          (start, count) => native("pwrite", () => addon.writeNonZeroPages(fd, memory.buffer as ArrayBuffer, start * PAGE, count * PAGE)));
        i = end;
      }
      return pages;
    });
  }

  /**
   * An image of a file the caller opened read-only (a snapshot blob on disk), copied into
   * private memory (a memfd) now: only the file's data ranges are read, so the cost is the
   * stored data, not the memory size. Sandboxes never map the file itself: someone who
   * truncates or rewrites the blob afterwards cannot crash the host (SIGBUS) or change what
   * runs — what checkedLoad verified is what runs. Takes ownership of `fd` (closed here).
   */
  static fromFile(fd: number, size: number): MemoryImage {
    const addon = loadAddon();
    try {
      const ranges = native("lseek", () => addon.dataRanges(fd, size));
      return MemoryImage.create(size, (a, copy) => {
        let pages = 0;
        for (let r = 0; r < ranges.length; r += 2) {
          const start = Math.floor(ranges[r]! / PAGE) * PAGE, end = Math.min(size, Math.ceil(ranges[r + 1]! / PAGE) * PAGE);
          if (end > start) pages += native("pread", () => a.copyNonZeroPages(fd, copy, start, end - start));
        }
        return pages;
      });
    } finally {
      addon.closeFd(fd);
    }
  }

  /**
   * A copy of [start, start + length) read with pread, not through a mapping: checks of an
   * image never fault pages into a view, and a file cut short reads as zeros here instead of
   * raising SIGBUS.
   */
  read(start: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let done = 0; done < length; ) {
      const n = native("pread", () => readSync(this.fd, out, done, length - done, start + done));
      if (n === 0) break;
      done += n;
    }
    return out;
  }

  /** The file's data as [start, end, …] byte ranges; everything else is a hole (zeros). */
  dataRanges(): readonly number[] {
    return (this.#ranges ??= native("lseek", () => this.addon.dataRanges(this.fd, this.size)));
  }

  /**
   * Writes the non-zero pages of [start, end) to the same offsets of `fd`; returns pages
   * written. Reads the image file, not the view: a fresh view faults on every page it reads.
   * Throws the native error as is.
   */
  copyNonZeroPagesTo(fd: number, start: number, end: number): number {
    return this.addon.copyNonZeroPages(this.fd, fd, start, end - start);
  }

  private static create(size: number, fill: (addon: NativeAddon, fd: number) => number): MemoryImage {
    const addon = loadAddon();
    const fd = native("memfd_create", () => addon.memfdCreate("vmlet-snapshot", size));
    try {
      return new MemoryImage(fd, size, fill(addon, fd), addon);
    } catch (error) {
      addon.closeFd(fd);
      throw error;
    }
  }
}

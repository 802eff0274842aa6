/**
 * A snapshot's guest memory: an in-memory file (memfd) with zero pages left as holes,
 * plus a read-only shared view used as the source of restores. Sandboxes made from the
 * snapshot map the file privately, so they share its pages until they write them.
 */
import { readSync, writeSync } from "node:fs";
import { loadAddon, type NativeAddon } from "../native/addon.js";
import { native } from "../native/errors.js";
import { registerImageView } from "../mem/image-files.js";
import { PageHistory } from "./page-history.js";
import { isWellFormed, type WorkingSet } from "./working-set.js";

const PAGE = 4096;

/** Closes an image's fd once nothing references the image (mappings keep the file alive on their own). */
const closeWhenCollected = new FinalizationRegistry<{ addon: NativeAddon; fd: number }>(({ addon, fd }) => addon.closeFd(fd));

export class MemoryImage {
  #view: Uint8Array | undefined;
  /** Data ranges, found once: an image does not change after it is made. */
  #ranges: number[] | undefined;
  #workingSet: WorkingSet | undefined;

  private constructor(
    readonly fd: number,
    readonly size: number,
    readonly pagesStored: number,
    private readonly addon: NativeAddon,
    /** Which pages changed since the image this one was taken over (diff layers are saved from it). */
    readonly history: PageHistory,
  ) {
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
      registerImageView(this.#view, this.fd, () => this.dataRanges());
    }
    return this.#view;
  }

  /**
   * The pages sandboxes made from this image touched right after resume (working-set.ts),
   * recorded by the first one (process backend) or loaded with the snapshot: a hint a new
   * child populates at start. Undefined until then.
   */
  get workingSet(): WorkingSet | undefined {
    return this.#workingSet;
  }

  /** Keeps `set` as the working set unless one is kept already (the first recording stands); an empty or ill-formed one is ignored. */
  keepWorkingSet(set: WorkingSet): void {
    const pages = this.size / PAGE;
    if (this.#workingSet !== undefined || set.touched.length === 0 || !isWellFormed(set.touched, pages) || !isWellFormed(set.written, pages)) return;
    this.#workingSet = set;
  }

  /** Copies `memory` into a new image, skipping zero pages. O(memory size): a sandbox's first snapshot. */
  static capture(memory: Uint8Array): MemoryImage {
    return MemoryImage.create(memory.byteLength, PageHistory.root(), (addon, fd) =>
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
    return MemoryImage.create(base.size, PageHistory.over(base.history, written, base.size / PAGE), (addon, fd) => {
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

  /**
   * A new image of `size` bytes that `fill` writes through an ImageWriter (load builds a
   * snapshot's memory from its layers so: copied into private memory, never mapped from the
   * blob files). Throws what `fill` throws, the memfd closed.
   */
  static async build(size: number, fill: (writer: ImageWriter) => Promise<void>): Promise<MemoryImage> {
    const addon = loadAddon();
    const fd = native("memfd_create", () => addon.memfdCreate("vmlet-snapshot", size));
    try {
      await fill(new ImageWriter(fd, size, addon));
      const ranges = native("lseek", () => addon.dataRanges(fd, size));
      let pages = 0;
      for (let r = 0; r < ranges.length; r += 2) pages += Math.ceil(ranges[r + 1]! / PAGE) - Math.floor(ranges[r]! / PAGE);
      return new MemoryImage(fd, size, pages, addon, PageHistory.root());
    } catch (error) {
      addon.closeFd(fd);
      throw error;
    }
  }

  private static create(size: number, history: PageHistory, fill: (addon: NativeAddon, fd: number) => number): MemoryImage {
    const addon = loadAddon();
    const fd = native("memfd_create", () => addon.memfdCreate("vmlet-snapshot", size));
    try {
      return new MemoryImage(fd, size, fill(addon, fd), addon, history);
    } catch (error) {
      addon.closeFd(fd);
      throw error;
    }
  }
}

/** Writes into the memfd of an image MemoryImage.build is making. Native errors become typed ones (native()). */
export class ImageWriter {
  /** @internal */
  constructor(private readonly fd: number, readonly size: number, private readonly addon: NativeAddon) {}

  /** Copies the non-zero pages of file `src` (opened by the caller, `size` bytes) to the same offsets, reading only its data ranges. */
  copyDataOf(src: number): void {
    const ranges = native("lseek", () => this.addon.dataRanges(src, this.size));
    for (let r = 0; r < ranges.length; r += 2) {
      const start = Math.floor(ranges[r]! / PAGE) * PAGE, end = Math.min(this.size, Math.ceil(ranges[r + 1]! / PAGE) * PAGE);
      if (end > start) native("pread", () => this.addon.copyNonZeroPages(src, this.fd, start, end - start));
    }
  }

  /** Places whole pages `bytes` at `offset`: non-zero ones written, zero ones made holes (whatever was there before). */
  writePages(bytes: Uint8Array, offset: number): void {
    for (let at = 0; at < bytes.byteLength; ) {
      const zero = isZeroPage(bytes, at);
      let end = at + PAGE;
      while (end < bytes.byteLength && isZeroPage(bytes, end) === zero) end += PAGE;
      if (zero) native("fallocate", () => this.addon.punchHole(this.fd, offset + at, end - at));
      else native("pwrite", () => writeAll(this.fd, bytes.subarray(at, end), offset + at));
      at = end;
    }
  }

  /** The memfd's data as [start, end, …] byte ranges. */
  dataRanges(): number[] {
    return native("lseek", () => this.addon.dataRanges(this.fd, this.size));
  }

  /** pread of [position, position + out.length) into `out`. */
  read(out: Uint8Array, position: number): void {
    for (let done = 0; done < out.byteLength; ) {
      const n = native("pread", () => readSync(this.fd, out, done, out.byteLength - done, position + done));
      if (n === 0) throw new Error(`image memfd shorter than ${position + out.byteLength} bytes`); // a vmlet bug: the memfd has its full size
      done += n;
    }
  }
}

const ZERO_PAGE = new Uint8Array(PAGE);
const isZeroPage = (bytes: Uint8Array, at: number): boolean => Buffer.compare(bytes.subarray(at, at + PAGE), ZERO_PAGE) === 0;

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  for (let done = 0; done < bytes.byteLength; ) done += writeSync(fd, bytes, done, bytes.byteLength - done, position + done);
}

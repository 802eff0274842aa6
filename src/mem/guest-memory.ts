/**
 * Guest memory as host memory: one mapping per sandbox, handed to the backend and to
 * TypeScript (as `bytes`) without copies. Its pages can be replaced in place by a
 * private, copy-on-write mapping of a snapshot image.
 *
 * With `hugePages` the mapping is advised for transparent huge pages (mem/huge-pages.ts):
 * one 2 MiB fault instead of 512 where the guest first touches memory. A private mapping
 * of an image never gets them, so an advised buffer maps the image only over the 2 MiB
 * ranges holding its data and stays anonymous (and advised) over the rest.
 */
import { OutOfMemoryError } from "../errors/errors.js";
import { loadAddon, type NativeAddon } from "../native/addon.js";
import { native } from "../native/errors.js";
import type { MemoryImage } from "../snapshot/memory-image.js";
import { imageSpans } from "./image-spans.js";

const PAGE = 4096;

/**
 * Mappings of closed sandboxes, by size and advice, kept for the next sandbox of that
 * kind. V8 counts a new ArrayBuffer's whole length as external memory and starts a full
 * GC when that grows: with a fresh 1 GiB buffer per sandbox, every fromSnapshot paid one.
 * A reused mapping is reset to fresh zero pages first, so it holds nothing of its last guest.
 */
const spare = new Map<string, ArrayBuffer[]>();
/**
 * The same for shared memory (the process backend): a memfd and its mapping, emptied
 * (every page punched out) when its sandbox's VM was destroyed, after its child process
 * was killed and reaped: nothing else maps it then.
 */
const spareShared = new Map<string, Array<{ fd: number; buffer: ArrayBuffer }>>();
const SPARE_PER_SIZE = 4;
const spareKey = (size: number, hugePages: boolean): string => `${size}:${hugePages}`;

export class GuestMemory {
  readonly bytes: Uint8Array;
  private released = false;
  /** The image mapImage last made this memory equal to (undefined before, during and after a failed one). */
  private mapped: MemoryImage | undefined;

  /** `fd`: the memfd behind a shared mapping (the process backend's child maps it too). `hugePages`: advised for THP. */
  private constructor(private readonly addon: NativeAddon, readonly buffer: ArrayBuffer, readonly hugePages: boolean, readonly fd?: number) {
    this.bytes = new Uint8Array(buffer);
  }

  /**
   * Fresh zeroed memory in a memfd, mapped shared: another process (a process-backend
   * child) can map the same pages. A released one of the same size is reused. The child advises
   * its own mapping too (its faults are the ones that allocate).
   */
  static allocateShared(size: number, hugePages = false): GuestMemory {
    const addon = loadAddon();
    const reused = spareShared.get(spareKey(size, hugePages))?.pop();
    if (reused) return new GuestMemory(addon, reused.buffer, hugePages, reused.fd);
    let fd = -1;
    try {
      fd = addon.memfdCreate("vmlet-guest", size);
      const buffer = addon.mapFileSharedWritable(fd, size);
      if (hugePages) addon.adviseHugePages(buffer);
      return new GuestMemory(addon, buffer, hugePages, fd);
    } catch (error) {
      if (fd >= 0) addon.closeFd(fd);
      throw new OutOfMemoryError(`cannot map ${size} bytes of shared guest memory`, { cause: error });
    }
  }

  /** Fresh zeroed memory (anonymous mapping, reserved lazily). */
  static allocate(size: number, hugePages = false): GuestMemory {
    const addon = loadAddon();
    const reused = spare.get(spareKey(size, hugePages))?.pop();
    if (reused) return new GuestMemory(addon, reused, hugePages);
    try {
      return new GuestMemory(addon, addon.allocMemory(size, hugePages), hugePages);
    } catch (error) {
      throw new OutOfMemoryError(`cannot map ${size} bytes of guest memory`, { cause: error });
    }
  }

  get size(): number {
    return this.buffer.byteLength;
  }

  /**
   * The image this memory was last made equal to. Its supervisor pages (page tables, system
   * tables) still hold that image's bytes: no guest code can write them and vmlet writes
   * none after a mapImage, so what is derived from them (the process backend's page walk)
   * can be kept per image. The rest of memory may have changed since.
   */
  get mappedImage(): MemoryImage | undefined {
    return this.mapped;
  }

  /**
   * Replaces every page with a private mapping of the image: reads share the image's
   * pages, the first write to a page copies it. O(1) in memory size (O(data ranges) when
   * advised for huge pages: the image's empty 2 MiB ranges stay anonymous).
   */
  mapImage(image: MemoryImage): void {
    this.mapped = undefined;
    this.mapImageNow(image);
    this.mapped = image;
  }

  private mapImageNow(image: MemoryImage): void {
    if (this.fd === undefined) {
      if (!this.hugePages) {
        native("mmap", () => this.addon.mapFilePrivate(this.buffer, 0, this.size, image.fd));
        return;
      }
      native("mmap", () => this.addon.resetMemory(this.buffer, true));
      for (const [start, end] of imageSpans(image.dataRanges(), this.size)) {
        native("mmap", () => this.addon.mapFilePrivate(this.buffer, start, end - start, image.fd));
      }
      return;
    }
    // Shared memory cannot be a private mapping: it becomes a copy of the image's data
    // (every page dropped first, so nothing of the last guest stays).
    const fd = this.fd;
    this.empty(fd);
    const ranges = image.dataRanges();
    for (let r = 0; r < ranges.length; r += 2) {
      const start = Math.floor(ranges[r]! / PAGE) * PAGE, end = Math.min(this.size, Math.ceil(ranges[r + 1]! / PAGE) * PAGE);
      if (end > start) native("pread", () => this.addon.copyNonZeroPages(image.fd, fd, start, end - start));
    }
  }

  /**
   * Gives all pages back to the host and the mapping to the next sandbox of this size.
   * Only once its VM is destroyed (for shared memory: its child reaped, so that no other
   * process maps the file): the caller must not touch `bytes` afterwards.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.mapped = undefined;
    if (this.fd !== undefined) {
      this.releaseShared(this.fd);
      return;
    }
    try {
      this.addon.resetMemory(this.buffer, this.hugePages);
    } catch {
      return; // not reusable; the mapping goes when the buffer is collected
    }
    const key = spareKey(this.size, this.hugePages);
    const list = spare.get(key) ?? spare.set(key, []).get(key)!;
    if (list.length < SPARE_PER_SIZE) list.push(this.buffer);
  }

  /**
   * Drops every page of shared memory (fallocate PUNCH_HOLE over each range with data):
   * one punch over the whole file would also walk every page-table entry a child's
   * write tracking put over the empty rest (O(memory size), 2 ms at 1 GiB here).
   */
  private empty(fd: number): void {
    const ranges = native("lseek", () => this.addon.dataRanges(fd, this.size));
    for (let r = 0; r < ranges.length; r += 2) {
      const start = ranges[r]!, end = ranges[r + 1]!;
      native("fallocate", () => this.addon.punchHole(fd, start, end - start));
    }
  }

  private releaseShared(fd: number): void {
    const list = spareShared.get(spareKey(this.size, this.hugePages)) ?? [];
    if (list.length < SPARE_PER_SIZE) {
      try {
        this.empty(fd); // reads as zeros from here, in every mapping
        list.push({ fd, buffer: this.buffer });
        spareShared.set(spareKey(this.size, this.hugePages), list);
        return;
      } catch {
        // not reusable: closed below
      }
    }
    this.addon.closeFd(fd); // the mapping keeps the pages until the buffer is collected
  }
}

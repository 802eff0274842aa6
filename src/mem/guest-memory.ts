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
import { keepSpare, takeEmptied, type SpareFile } from "./spare-files.js";

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
const spareShared = new Map<string, Array<SpareFile & { buffer: ArrayBuffer }>>();
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
    const reused = takeEmptied(addon, spareShared.get(spareKey(size, hugePages)));
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
      this.addon.closeFd(this.fd); // not reused without a retirement (its child may still map it); the mapping keeps the pages until the buffer is collected
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

  /** Drops every page of shared memory with data (native punch_data: only the ranges with data, never a walk of the whole file's mappings). */
  private empty(fd: number): void {
    native("fallocate", () => this.addon.punchData(fd, this.size));
  }

  /**
   * Shared memory whose child is being retired on the background thread (native/reaper.c),
   * which empties the file after the child's death: kept for the next sandbox of its size,
   * which takes it once `emptied()` says 1. The caller must not touch `bytes` afterwards.
   */
  releaseWhenEmptied(emptied: () => number): void {
    if (this.fd === undefined) {
      this.release();
      return;
    }
    if (this.released) return;
    this.released = true;
    this.mapped = undefined;
    const key = spareKey(this.size, this.hugePages);
    keepSpare(this.addon, spareShared.get(key) ?? spareShared.set(key, []).get(key)!, { fd: this.fd, buffer: this.buffer, emptied }, SPARE_PER_SIZE);
  }
}

/** @internal Tests: resolves once no spare shared memory is still being emptied. */
export async function sharedSparesSettled(): Promise<void> {
  const pending = (): boolean => [...spareShared.values()].some((list) => list.some((s) => s.emptied() === 0));
  for (let i = 0; i < 2000 && pending(); i++) await new Promise((resolve) => setTimeout(resolve, 1));
}

/**
 * Guest memory as host memory: one mapping per sandbox, handed to the backend and to
 * TypeScript (as `bytes`) without copies. Its pages can be replaced in place by a
 * private, copy-on-write mapping of a snapshot image.
 */
import { OutOfMemoryError } from "../errors/errors.js";
import { loadAddon, type NativeAddon } from "../native/addon.js";
import { native } from "../native/errors.js";
import type { MemoryImage } from "../snapshot/memory-image.js";

/**
 * Guests this large get 2 MiB host pages (THP): far fewer shadow-page faults when the
 * guest touches its memory. Small guests touch little, and a huge page costs a 2 MiB
 * zero-fill (or compaction) on first touch, so they keep 4 KiB pages.
 */
const HUGE_PAGES_FROM = 16 << 20;
const PAGE = 4096;

/**
 * Mappings of closed sandboxes, by size, kept for the next sandbox of that size. V8
 * counts a new ArrayBuffer's whole length as external memory and starts a full GC when
 * that grows: with a fresh 1 GiB buffer per sandbox, every fromSnapshot paid one. A reused
 * mapping is reset to fresh zero pages first, so it holds nothing of its last guest.
 */
const spare = new Map<number, ArrayBuffer[]>();
const SPARE_PER_SIZE = 4;

export class GuestMemory {
  readonly bytes: Uint8Array;
  private released = false;

  /** `fd`: the memfd behind a shared mapping (the process backend's child maps it too). */
  private constructor(private readonly addon: NativeAddon, readonly buffer: ArrayBuffer, readonly fd?: number) {
    this.bytes = new Uint8Array(buffer);
  }

  /**
   * Fresh zeroed memory in a memfd, mapped shared: another process (a process-backend
   * child) can map the same pages. Never reused: its file goes with it.
   */
  static allocateShared(size: number): GuestMemory {
    const addon = loadAddon();
    let fd = -1;
    try {
      fd = addon.memfdCreate("vmlet-guest", size);
      return new GuestMemory(addon, addon.mapFileSharedWritable(fd, size), fd);
    } catch (error) {
      if (fd >= 0) addon.closeFd(fd);
      throw new OutOfMemoryError(`cannot map ${size} bytes of shared guest memory`, { cause: error });
    }
  }

  /** Fresh zeroed memory (anonymous mapping, reserved lazily). */
  static allocate(size: number): GuestMemory {
    const addon = loadAddon();
    const reused = spare.get(size)?.pop();
    if (reused) return new GuestMemory(addon, reused);
    try {
      return new GuestMemory(addon, addon.allocMemory(size, size >= HUGE_PAGES_FROM));
    } catch (error) {
      throw new OutOfMemoryError(`cannot map ${size} bytes of guest memory`, { cause: error });
    }
  }

  get size(): number {
    return this.buffer.byteLength;
  }

  /**
   * Replaces every page with a private mapping of the image: reads share the image's
   * pages, the first write to a page copies it. O(1) in memory size.
   */
  mapImage(image: MemoryImage): void {
    if (this.fd === undefined) {
      native("mmap", () => this.addon.mapFilePrivate(this.buffer, 0, this.size, image.fd));
      return;
    }
    // Shared memory cannot be a private mapping: it becomes a copy of the image's data
    // (every page dropped first, so nothing of the last guest stays).
    const fd = this.fd;
    native("fallocate", () => this.addon.punchHole(fd, 0, this.size));
    const ranges = image.dataRanges();
    for (let r = 0; r < ranges.length; r += 2) {
      const start = Math.floor(ranges[r]! / PAGE) * PAGE, end = Math.min(this.size, Math.ceil(ranges[r + 1]! / PAGE) * PAGE);
      if (end > start) native("pread", () => this.addon.copyNonZeroPages(image.fd, fd, start, end - start));
    }
  }

  /**
   * Gives all pages back to the host and the mapping to the next sandbox of this size.
   * Only once its VM is destroyed: the caller must not touch `bytes` afterwards.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (this.fd !== undefined) {
      this.addon.closeFd(this.fd); // the mapping keeps the pages until the buffer is collected
      return;
    }
    try {
      this.addon.resetMemory(this.buffer, this.size >= HUGE_PAGES_FROM);
    } catch {
      return; // not reusable; the mapping goes when the buffer is collected
    }
    const list = spare.get(this.size) ?? spare.set(this.size, []).get(this.size)!;
    if (list.length < SPARE_PER_SIZE) list.push(this.buffer);
  }
}

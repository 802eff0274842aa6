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

  private constructor(private readonly addon: NativeAddon, readonly buffer: ArrayBuffer) {
    this.bytes = new Uint8Array(buffer);
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
    native("mmap", () => this.addon.mapFilePrivate(this.buffer, 0, this.size, image.fd));
  }

  /**
   * Gives all pages back to the host and the mapping to the next sandbox of this size.
   * Only once its VM is destroyed: the caller must not touch `bytes` afterwards.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    try {
      this.addon.resetMemory(this.buffer, this.size >= HUGE_PAGES_FROM);
    } catch {
      return; // not reusable; the mapping goes when the buffer is collected
    }
    const list = spare.get(this.size) ?? spare.set(this.size, []).get(this.size)!;
    if (list.length < SPARE_PER_SIZE) list.push(this.buffer);
  }
}

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

export class GuestMemory {
  readonly bytes: Uint8Array;

  private constructor(private readonly addon: NativeAddon, readonly buffer: ArrayBuffer) {
    this.bytes = new Uint8Array(buffer);
  }

  /** Fresh zeroed memory (anonymous mapping, reserved lazily). */
  static allocate(size: number): GuestMemory {
    const addon = loadAddon();
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

  /** Gives all pages back to the host; they read as zero afterwards. */
  discard(): void {
    this.addon.discardMemory(this.buffer, 0, this.size);
  }
}

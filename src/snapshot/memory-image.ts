/**
 * A snapshot's guest memory: an in-memory file (memfd) with zero pages left as holes,
 * plus a read-only shared view used as the source of restores. Sandboxes made from the
 * snapshot map the file privately, so they share its pages until they write them.
 */
import { loadAddon, type NativeAddon } from "../native/addon.js";

const PAGE = 4096;

/** Closes an image's fd once nothing references the image (mappings keep the file alive on their own). */
const closeWhenCollected = new FinalizationRegistry<{ addon: NativeAddon; fd: number }>(({ addon, fd }) => addon.closeFd(fd));

export class MemoryImage {
  /** Read-only view of the whole image. */
  readonly view: Uint8Array;

  private constructor(readonly fd: number, readonly size: number, readonly pagesStored: number, addon: NativeAddon) {
    this.view = new Uint8Array(addon.mapFileShared(fd, size));
    closeWhenCollected.register(this, { addon, fd });
  }

  /** Copies `memory` into a new image, skipping zero pages. O(memory size), done once per snapshot. */
  static capture(memory: Uint8Array): MemoryImage {
    const addon = loadAddon();
    const fd = addon.memfdCreate("vmlet-snapshot", memory.byteLength);
    try {
      const pages = addon.writeNonZeroPages(fd, memory.buffer as ArrayBuffer, memory.byteOffset, memory.byteLength);
      return new MemoryImage(fd, memory.byteLength, pages, addon);
    } catch (error) {
      addon.closeFd(fd);
      throw error;
    }
  }

  /** Copies the image's version of each listed page back into `memory`. */
  copyPagesInto(memory: Uint8Array, pages: Iterable<number>): number {
    let copied = 0;
    for (const page of pages) {
      const at = page * PAGE;
      memory.set(this.view.subarray(at, at + PAGE), at);
      copied++;
    }
    return copied;
  }
}

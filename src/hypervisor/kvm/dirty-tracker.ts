/**
 * KVM dirty logging, with "hot" pages kept writable. After each read of the log KVM
 * write-protects the pages it reported, and the guest's next write to each costs a
 * fault (~6 µs on PVM). Pages the guest writes on every cycle — its stack, the output
 * buffer, the SDK's state — are therefore left unprotected (manual-protect mode):
 * KVM keeps reporting them dirty, so they are always copied back. Correct by
 * construction: a page is only ever left out of the log while it is reported dirty.
 */
import type { KvmVm } from "./vm.js";

/** A page dirty in two reads in a row becomes hot; at most this many pages are hot. */
const MAX_HOT_PAGES = 64;

export class DirtyTracker {
  private readonly bitmap: BigUint64Array;
  private readonly dirty: Uint32Array;
  private readonly previous: Uint32Array;
  private readonly hot: Uint32Array;
  private readonly hotBits: BigUint64Array;
  private readonly toClear: BigUint64Array;
  private readonly clearWords: Uint32Array;
  private hotCount = 0;

  constructor(private readonly vm: KvmVm, private readonly slot: number, private readonly pages: number, private readonly manual: boolean) {
    const words = Math.ceil(pages / 64);
    this.bitmap = new BigUint64Array(words);
    this.dirty = new Uint32Array(this.bitmap.buffer);
    this.previous = new Uint32Array(words * 2);
    this.hotBits = new BigUint64Array(words);
    this.hot = new Uint32Array(this.hotBits.buffer);
    this.toClear = new BigUint64Array(words);
    this.clearWords = new Uint32Array(this.toClear.buffer);
  }

  /** Pages written since the last call (bit n = page n); the bitmap is reused. */
  take(): BigUint64Array {
    this.vm.getDirtyLog(this.slot, this.bitmap);
    if (!this.manual) return this.bitmap;
    this.learnHotPages();
    let any = 0;
    for (let w = 0; w < this.dirty.length; w++) any |= this.clearWords[w] = this.dirty[w]! & ~this.hot[w]!;
    if (any !== 0) this.vm.clearDirtyLog(this.slot, this.pages, this.toClear);
    return this.bitmap;
  }

  /** The bitmap a native restore reads the dirty log into. */
  get dirtyBitmap(): BigUint64Array {
    return this.bitmap;
  }

  /** Pages to leave writable (manual-protect mode only); null means re-protect everything. */
  get hotMask(): BigUint64Array | null {
    return this.manual ? this.hotBits : null;
  }

  /** After the log was read into `dirtyBitmap` elsewhere: learn which pages are hot. */
  afterRead(): void {
    if (this.manual) this.learnHotPages();
  }

  /** A page dirty in two reads in a row becomes hot (up to MAX_HOT_PAGES). */
  private learnHotPages(): void {
    for (let w = 0; w < this.dirty.length; w++) {
      const d = this.dirty[w]!;
      if (d === 0 && this.previous[w] === 0) continue;
      const repeated = d & this.previous[w]! & ~this.hot[w]!;
      if (repeated !== 0 && this.hotCount < MAX_HOT_PAGES) {
        this.hot[w]! |= repeated;
        this.hotCount += popcount(repeated);
      }
      this.previous[w] = d;
    }
  }
}

function popcount(x: number): number {
  let n = 0;
  for (; x !== 0; x &= x - 1) n++;
  return n;
}

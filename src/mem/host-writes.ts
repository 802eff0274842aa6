/**
 * Guest pages the host wrote (call messages, host-call results, control block fields).
 * KVM's dirty log records only the guest's own writes, so a restore needs both.
 */
const PAGE = 4096;

export class HostWrites {
  /** One bit per guest page (32 KiB at 1 GiB: a byte per page was 256 KiB to allocate per sandbox). */
  private readonly marked: Uint32Array;
  /** The marked pages, in order, in a typed array: a restore allocates nothing and resets no array length. */
  private pages = new Int32Array(64);
  private count = 0;

  constructor(memorySize: number) {
    this.marked = new Uint32Array(Math.ceil(memorySize / PAGE / 32));
  }

  private isMarked(page: number): boolean {
    return (this.marked[page >>> 5]! & (1 << (page & 31))) !== 0;
  }

  mark(address: number, length: number): void {
    const last = Math.floor((address + Math.max(length, 1) - 1) / PAGE);
    for (let page = Math.floor(address / PAGE); page <= last; page++) {
      if (!this.isMarked(page)) {
        this.marked[page >>> 5]! |= 1 << (page & 31);
        if (this.count === this.pages.length) this.grow();
        this.pages[this.count++] = page;
      }
    }
  }

  /** Pages in the guest's dirty bitmap or marked here, each once; clears the marks. O(marked + bitmap words). */
  drainWith(guestDirty: BigUint64Array): number[] {
    const words = new Uint32Array(guestDirty.buffer, guestDirty.byteOffset, guestDirty.length * 2);
    const out = Array.from(this.pages.subarray(0, this.count)); // still marked, so guest pages below skip them
    const hostCount = this.count;
    this.count = 0;
    for (let w = 0; w < words.length; w++) {
      let bits = words[w]!;
      while (bits !== 0) {
        const bit = 31 - Math.clz32(bits & -bits);
        bits &= bits - 1;
        const page = w * 32 + bit;
        if (!this.isMarked(page)) out.push(page); // each bit once: only the host's pages need skipping
      }
    }
    for (let i = 0; i < hostCount; i++) this.unmark(out[i]!);
    return out;
  }

  /** The marked pages, each once; clears the marks. A view of internal storage: valid until the next mark(). */
  takePages(): Int32Array {
    const out = this.pages.subarray(0, this.count);
    for (let i = 0; i < out.length; i++) this.unmark(out[i]!);
    this.count = 0;
    return out;
  }

  /** Forgets every mark (after a snapshot or a full remap). */
  clear(): void {
    this.takePages();
  }

  private unmark(page: number): void {
    this.marked[page >>> 5]! &= ~(1 << (page & 31));
  }

  private grow(): void {
    const bigger = new Int32Array(this.pages.length * 2);
    bigger.set(this.pages);
    this.pages = bigger;
  }
}

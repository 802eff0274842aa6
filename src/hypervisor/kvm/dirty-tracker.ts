/**
 * How the restore plan learns which pages the guest wrote (native enum dirty_mode):
 * KVM_GET_DIRTY_LOG re-protecting everything, the same in manual-protect mode with hot
 * pages kept writable, or the vCPU's dirty ring.
 */
export const enum DirtyMode { Bitmap = 0, Manual = 1, Ring = 2 }

/**
 * The buffers of KVM dirty logging, with "hot" pages kept writable. After each read of
 * the log KVM write-protects the pages it reported, and the guest's next write to each
 * costs a fault (~6 µs on PVM). Pages the guest writes on every cycle — its stack, the
 * output buffer, the SDK's state — are therefore left unprotected (manual-protect
 * mode): KVM keeps reporting them dirty, so they are always copied back. Correct by
 * construction: a page is only ever left out of the log while it is reported dirty.
 *
 * The work (read the log, learn hot pages — dirty in two reads in a row, at most about
 * 64 — and re-protect the others over the range of words that have any) is done in C
 * (native/vcpu_restore.c), on these preallocated bitmaps: nothing per restore is
 * allocated or scanned in JavaScript.
 *
 * With a dirty ring (the default where the kernel has one) no ioctl is needed to learn
 * the dirty pages: the ring is shared memory. A page the ring reported stays writable
 * until the ring is reset, so it is copied on every restore until then (native/
 * dirty_ring.c, RING_MAX_WRITABLE in native/vcpu_restore.c); `hot` holds those pages and
 * `previous` the pages written before a reset that still need restoring.
 */
export class DirtyTracker {
  /** Pages the guest wrote, as of the last read (bit n = page n). */
  readonly bitmap: BigUint64Array;
  /** The previous read, for learning hot pages. */
  readonly previous: BigUint64Array;
  /** Pages left writable. */
  readonly hot: BigUint64Array;
  /** Scratch for KVM_CLEAR_DIRTY_LOG; all zero between reads. */
  readonly toClear: BigUint64Array;

  constructor(readonly pages: number, readonly mode: DirtyMode) {
    const words = Math.ceil(pages / 64);
    this.bitmap = new BigUint64Array(words);
    this.previous = new BigUint64Array(words);
    this.hot = new BigUint64Array(words);
    this.toClear = new BigUint64Array(words);
  }
}

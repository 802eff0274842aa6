/**
 * Where the host writes a message into guest memory. Every byte range is recorded
 * (`record`, which marks the pages host-written) before a byte of it is written, so a
 * write that fails half-way is still undone by the next restore. Encoders get bytes
 * only through claim() and recordUpTo(); all sizes are checked as plain numbers
 * (exact to 2^53), never with 32-bit operators.
 */
import { BufferTooSmallError } from "../errors/errors.js";

/** Records [address, address + length) as written by the host, before the write. */
export type RecordHostWrite = (address: number, length: number) => void;

const PAGE = 4096;
const U32_MAX = 0xffffffff;

/** `n` rounded up to a multiple of 8, exact for any length up to 2^53 (no 32-bit wrap). */
export function pad8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

export class WriteCursor {
  /** Everything below this address has been recorded. */
  private recordedEnd: number;

  constructor(
    readonly bytes: Uint8Array,
    readonly view: DataView,
    /** Next free byte (absolute address). */
    public offset: number,
    /** Absolute end of the buffer. */
    readonly end: number,
    private readonly record: RecordHostWrite,
  ) {
    this.recordedEnd = offset;
  }

  /** Bytes left in the buffer. */
  get room(): number {
    return this.end - this.offset;
  }

  /**
   * Takes the next `length` bytes (checked against the buffer and against u32, the
   * width of every length field on the wire), records them and moves past them.
   * Nothing is recorded or written when they do not fit. Returns their address.
   */
  claim(length: number, describe: () => string): number {
    if (!(length >= 0) || length > U32_MAX || length > this.room) {
      throw new BufferTooSmallError(`${describe()} (${length} bytes) does not fit the ${this.end - this.offset}-byte space left in the buffer`);
    }
    const at = this.offset;
    this.recordUpTo(at + length);
    this.offset = at + length;
    return at;
  }

  /**
   * Records up to `to` (at most the buffer's end) ahead of a write whose length is known
   * only afterwards (a string being encoded). Records whole pages: a message's later
   * values in the same page cost nothing.
   */
  recordUpTo(to: number): void {
    if (to <= this.recordedEnd) return;
    const until = Math.min(this.end, Math.ceil(to / PAGE) * PAGE);
    this.record(this.recordedEnd, until - this.recordedEnd);
    this.recordedEnd = until;
  }
}

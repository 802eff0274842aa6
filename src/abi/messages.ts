/**
 * Messages in the I/O buffers (docs/abi.md): a 24-byte header then values.
 * The host writes CALL (input buffer) and HOST_RETURN (output buffer) and reads
 * RETURN, HOST_CALL, LOG and ABORT, trusting nothing the guest wrote.
 */
import { GuestProtocolError } from "../errors/errors.js";
import { ABI_VERSION, MESSAGE_MAGIC, MSG, MessageKind } from "./constants.js";
import type { GuestValue, ValueType } from "./types.js";
import { readValue, writeValue, type Cursor } from "./values.js";
import { WriteCursor, type RecordHostWrite } from "./write-cursor.js";

/** A buffer in guest memory. */
export interface Buffer {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly address: number;
  readonly size: number;
}

/** A buffer the host writes messages into: only through a WriteCursor, which records each range before writing it. */
export interface WritableBuffer extends Buffer {
  readonly recordWrite: RecordHostWrite;
}

export function startMessage(buf: WritableBuffer, kind: MessageKind, a: number, b: number): WriteCursor {
  const c = new WriteCursor(buf.bytes, buf.view, buf.address, buf.address + buf.size, buf.recordWrite);
  const at = c.claim(MSG.headerSize, () => "message header");
  const v = buf.view;
  v.setUint32(at + MSG.magic, MESSAGE_MAGIC, true);
  v.setUint16(at + MSG.version, ABI_VERSION, true);
  v.setUint16(at + MSG.kind, kind, true);
  v.setUint32(at + MSG.a, a, true);
  v.setUint32(at + MSG.b, b, true);
  return c;
}

/** Completes the header (recorded by startMessage); returns the message's length in bytes. */
export function finishMessage(buf: WritableBuffer, c: WriteCursor, count: number): number {
  const length = c.offset - buf.address;
  buf.view.setUint32(buf.address + MSG.length, length, true);
  buf.view.setUint32(buf.address + MSG.count, count, true);
  return length;
}

/** Writes a whole message of typed values. */
export function writeMessage(
  buf: WritableBuffer,
  kind: MessageKind,
  a: number,
  b: number,
  types: readonly ValueType[],
  values: readonly unknown[],
  describe: (i: number) => string,
): number {
  const c = startMessage(buf, kind, a, b);
  for (let i = 0; i < types.length; i++) writeValue(c, types[i]!, values[i], () => describe(i));
  return finishMessage(buf, c, types.length);
}

export interface ReceivedMessage {
  readonly a: number;
  readonly b: number;
  readonly count: number;
  readonly cursor: Cursor;
}

const MAX_VALUES = 64;

/** Checks the header of a guest-written message; values are then read one by one. */
export function receiveMessage(buf: Buffer, kind: MessageKind, what: string): ReceivedMessage {
  const v = buf.view;
  const at = buf.address;
  const magic = v.getUint32(at + MSG.magic, true);
  const version = v.getUint16(at + MSG.version, true);
  const got = v.getUint16(at + MSG.kind, true);
  const length = v.getUint32(at + MSG.length, true);
  const count = v.getUint32(at + MSG.count, true);
  if (magic !== MESSAGE_MAGIC) throw new GuestProtocolError(`${what}: bad message magic 0x${magic.toString(16)}`);
  if (version !== ABI_VERSION) throw new GuestProtocolError(`${what}: guest speaks ABI version ${version}, host ${ABI_VERSION}`);
  if (got !== kind) throw new GuestProtocolError(`${what}: expected message kind ${kind}, got ${got}`);
  if (length < MSG.headerSize || length > buf.size) throw new GuestProtocolError(`${what}: message length ${length} outside 24..${buf.size}`);
  if (count > MAX_VALUES) throw new GuestProtocolError(`${what}: ${count} values is more than ${MAX_VALUES}`);
  return {
    a: v.getUint32(at + MSG.a, true),
    b: v.getUint32(at + MSG.b, true),
    count,
    cursor: { bytes: buf.bytes, view: v, offset: at + MSG.headerSize, end: at + length },
  };
}

/** Reads all values of a received message. */
export function readValues(msg: ReceivedMessage, what: string): Array<{ type: ValueType; value: GuestValue }> {
  const out = [];
  for (let i = 0; i < msg.count; i++) out.push(readValue(msg.cursor, `${what}, value ${i}`));
  return out;
}

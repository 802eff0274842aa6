/**
 * Encoding and decoding of single values: [u32 tag][u32 length][payload padded to 8].
 * Encoders check the JavaScript value against the declared type and write only what
 * a WriteCursor handed them (recorded first); decoders check every length and offset
 * against the message bounds. Sizes are plain numbers: no 32-bit operator touches one.
 */
import { ArgumentMismatchError, BufferTooSmallError, GuestProtocolError } from "../errors/errors.js";
import { TAG, VALUE_HEADER_SIZE } from "./constants.js";
import type { GuestValue, ValueType } from "./types.js";
import { typeOfTag } from "./types.js";
import { pad8, type WriteCursor } from "./write-cursor.js";

export { pad8 } from "./write-cursor.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const I32_MIN = -0x80000000;
const I32_MAX = 0x7fffffff;
const U32_MAX = 0xffffffff;

/** Where a message is read: guest memory and the message's bounds. */
export interface Cursor {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  offset: number;
  /** Absolute end of the message. */
  readonly end: number;
}

/** Appends one value; `describe` names it in errors ("argument 2 of add"). */
export function writeValue(c: WriteCursor, type: ValueType, value: unknown, describe: () => string): void {
  switch (type) {
    case "string":
      return writeString(c, value, describe);
    case "bytes":
      return writeBytes(c, value, describe);
    default:
      return writeScalar(c, type, value, describe);
  }
}

function mismatch(describe: () => string, expected: string, value: unknown): never {
  const got = value instanceof Uint8Array ? "Uint8Array" : typeof value === "number" || typeof value === "bigint" ? `${typeof value} ${String(value)}` : typeof value;
  throw new ArgumentMismatchError(`${describe()} must be ${expected}, got ${got}`);
}

/** Claims a value's header and padded payload; returns the header's address. */
function reserve(c: WriteCursor, payload: number, describe: () => string): number {
  return c.claim(VALUE_HEADER_SIZE + pad8(payload), describe);
}

function writeScalar(c: WriteCursor, type: ValueType, value: unknown, describe: () => string): void {
  const at = reserve(c, 8, describe);
  const v = c.view;
  v.setUint32(at, TAG[type], true);
  v.setUint32(at + 4, 8, true);
  const p = at + VALUE_HEADER_SIZE;
  switch (type) {
    case "i32":
      if (typeof value !== "number" || !Number.isInteger(value) || value < I32_MIN || value > I32_MAX) mismatch(describe, "an integer in the i32 range", value);
      v.setInt32(p, value, true);
      v.setInt32(p + 4, value < 0 ? -1 : 0, true);
      return;
    case "u32":
      if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > U32_MAX) mismatch(describe, "an integer in the u32 range", value);
      v.setUint32(p, value, true);
      v.setUint32(p + 4, 0, true);
      return;
    case "i64":
      v.setBigInt64(p, toBigInt(value, true, describe), true);
      return;
    case "u64":
      v.setBigUint64(p, toBigInt(value, false, describe), true);
      return;
    case "f32":
      if (typeof value !== "number") mismatch(describe, "a number", value);
      v.setFloat32(p, value, true);
      v.setUint32(p + 4, 0, true);
      return;
    case "f64":
      if (typeof value !== "number") mismatch(describe, "a number", value);
      v.setFloat64(p, value, true);
      return;
    case "bool":
      if (typeof value !== "boolean") mismatch(describe, "a boolean", value);
      v.setUint32(p, value ? 1 : 0, true);
      v.setUint32(p + 4, 0, true);
      return;
  }
}

function toBigInt(value: unknown, signed: boolean, describe: () => string): bigint {
  const range = signed ? "an integer in the i64 range" : "an integer in the u64 range";
  let big: bigint;
  if (typeof value === "bigint") big = value;
  else if (typeof value === "number" && Number.isSafeInteger(value)) big = BigInt(value);
  else mismatch(describe, `${range} (bigint or safe integer)`, value);
  if ((signed ? BigInt.asIntN(64, big) : BigInt.asUintN(64, big)) !== big) mismatch(describe, range, value);
  return big;
}

function writeString(c: WriteCursor, value: unknown, describe: () => string): void {
  if (typeof value !== "string") mismatch(describe, "a string", value);
  if (value.includes("\0")) throw new ArgumentMismatchError(`${describe()} contains a NUL character, which C strings cannot carry`);
  const start = c.offset + VALUE_HEADER_SIZE;
  const room = c.end - start - 1; // the NUL needs one byte
  // UTF-8 takes at least one byte per UTF-16 unit: a longer string cannot fit, and nothing is written.
  const tooLarge = (): BufferTooSmallError => new BufferTooSmallError(`${describe()} (${value.length} chars) does not fit the buffer`);
  if (value.length > room) throw tooLarge();
  // Most strings are ASCII (one byte per unit): try exactly that much first; others need up to 3 bytes per unit.
  let { read, written } = encodeRecorded(c, value, start, value.length);
  if (read !== value.length) ({ read, written } = encodeRecorded(c, value, start, Math.min(room, 3 * value.length)));
  if (read !== value.length) throw tooLarge();
  const at = reserve(c, written + 1, describe);
  c.bytes[start + written] = 0;
  c.view.setUint32(at, TAG.string, true);
  c.view.setUint32(at + 4, written + 1, true);
}

/** Encodes `value` into at most `limit` bytes at `start`, recording them first. */
function encodeRecorded(c: WriteCursor, value: string, start: number, limit: number): TextEncoderEncodeIntoResult {
  c.recordUpTo(start + limit);
  return encoder.encodeInto(value, c.bytes.subarray(start, start + limit));
}

function writeBytes(c: WriteCursor, value: unknown, describe: () => string): void {
  if (!(value instanceof Uint8Array)) mismatch(describe, "a Uint8Array", value);
  const at = reserve(c, value.length, describe);
  c.view.setUint32(at, TAG.bytes, true);
  c.view.setUint32(at + 4, value.length, true);
  c.bytes.set(value, at + VALUE_HEADER_SIZE);
}

/** Reads one value; throws GuestProtocolError on any bounds or format violation. */
export function readValue(c: Cursor, what: string): { type: ValueType; value: GuestValue } {
  if (c.end - c.offset < VALUE_HEADER_SIZE) throw new GuestProtocolError(`${what}: value header past the end of the message`);
  const tag = c.view.getUint32(c.offset, true);
  const len = c.view.getUint32(c.offset + 4, true);
  const p = c.offset + VALUE_HEADER_SIZE;
  if (len > c.end - p || pad8(len) > c.end - p) throw new GuestProtocolError(`${what}: value of ${len} bytes runs past the message`);
  const type = typeOfTag(tag);
  if (type === undefined || type === "void") throw new GuestProtocolError(`${what}: unknown type tag ${tag}`);
  if (type !== "string" && type !== "bytes" && len !== 8) throw new GuestProtocolError(`${what}: ${type} with length ${len}`);
  c.offset = p + pad8(len);
  return { type, value: decodePayload(c, type, p, len, what) };
}

function decodePayload(c: Cursor, type: ValueType, p: number, len: number, what: string): GuestValue {
  const v = c.view;
  switch (type) {
    case "i32": return v.getInt32(p, true);
    case "u32": return v.getUint32(p, true);
    case "i64": return v.getBigInt64(p, true);
    case "u64": return v.getBigUint64(p, true);
    case "f32": return v.getFloat32(p, true);
    case "f64": return v.getFloat64(p, true);
    case "bool": return v.getUint32(p, true) !== 0 || v.getUint32(p + 4, true) !== 0;
    case "bytes": return c.bytes.slice(p, p + len);
    case "string":
      if (len === 0 || c.bytes[p + len - 1] !== 0) throw new GuestProtocolError(`${what}: string is not NUL-terminated`);
      return decodeString(c.bytes, p, p + len - 1);
  }
}

/** Short ASCII strings (function names, small results) skip TextDecoder, which costs microseconds per call. */
function decodeString(bytes: Uint8Array, start: number, end: number): string {
  if (end - start <= 32) {
    let text = "";
    for (let i = start; i < end; i++) {
      const b = bytes[i]!;
      if (b >= 0x80) return decoder.decode(bytes.subarray(start, end));
      text += String.fromCharCode(b);
    }
    return text;
  }
  return decoder.decode(bytes.subarray(start, end));
}

/**
 * Guest→host messages built on the host side, so the exit fuzzer can start from valid
 * ones and break them field by field. Mirrors docs/abi.md: a 24-byte header, then values
 * [u32 tag][u32 length][payload padded to 8].
 */
import { ABI_VERSION, MESSAGE_MAGIC, MSG, TAG, VALUE_HEADER_SIZE } from "../src/abi/constants.js";
import type { ValueType } from "../src/abi/types.js";

export interface WireValue {
  tag: number;
  /** The length field as written (may lie about the payload). */
  length: number;
  payload: Uint8Array;
}

export interface WireMessage {
  magic: number;
  version: number;
  kind: number;
  /** undefined: the real length of the encoding. */
  length: number | undefined;
  /** undefined: the number of values. */
  count: number | undefined;
  a: number;
  b: number;
  values: WireValue[];
}

const encoder = new TextEncoder();
const pad8 = (n: number): number => Math.ceil(n / 8) * 8;

export function message(kind: number, a: number, b: number, values: WireValue[]): WireMessage {
  return { magic: MESSAGE_MAGIC, version: ABI_VERSION, kind, length: undefined, count: undefined, a, b, values };
}

export function stringValue(text: string | Uint8Array): WireValue {
  const body = typeof text === "string" ? encoder.encode(text) : text;
  const payload = new Uint8Array(body.length + 1);
  payload.set(body);
  return { tag: TAG.string, length: payload.length, payload };
}

export function bytesValue(bytes: Uint8Array): WireValue {
  return { tag: TAG.bytes, length: bytes.length, payload: bytes };
}

/** A scalar of `type` from 8 raw bytes (any bit pattern is a valid i64, f64, ...). */
export function scalarValue(type: Exclude<ValueType, "string" | "bytes">, raw: Uint8Array): WireValue {
  return { tag: TAG[type], length: 8, payload: raw.subarray(0, 8) };
}

/** The bytes of `m`: each value's payload padded to 8 by its real size, whatever its length field says. */
export function encode(m: WireMessage): Uint8Array {
  const size = MSG.headerSize + m.values.reduce((n, v) => n + VALUE_HEADER_SIZE + pad8(v.payload.length), 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(MSG.magic, m.magic >>> 0, true);
  view.setUint16(MSG.version, m.version & 0xffff, true);
  view.setUint16(MSG.kind, m.kind & 0xffff, true);
  view.setUint32(MSG.length, (m.length ?? size) >>> 0, true);
  view.setUint32(MSG.count, (m.count ?? m.values.length) >>> 0, true);
  view.setUint32(MSG.a, m.a >>> 0, true);
  view.setUint32(MSG.b, m.b >>> 0, true);
  let at = MSG.headerSize;
  for (const v of m.values) {
    view.setUint32(at, v.tag >>> 0, true);
    view.setUint32(at + 4, v.length >>> 0, true);
    out.set(v.payload, at + VALUE_HEADER_SIZE);
    at += VALUE_HEADER_SIZE + pad8(v.payload.length);
  }
  return out;
}

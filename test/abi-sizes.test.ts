/**
 * Sizes and offsets at their exact boundaries (issue 11, item 3): lengths equal to the
 * room left and one past it, 2^31 − 1, 2^32 − 1 and 2^32 + 8, for the encoder, the
 * decoder and the length rounding. Nothing may wrap at 2^31 or 2^32, and a value that
 * does not fit is BufferTooSmallError (host values) or GuestProtocolError (guest values)
 * with no byte written outside the buffer. Guest memory is a plain array: no KVM needed.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { MSG, MessageKind, TAG, VALUE_HEADER_SIZE } from "../src/abi/constants.js";
import { readValues, receiveMessage, writeMessage, type WritableBuffer } from "../src/abi/messages.js";
import { readValue } from "../src/abi/values.js";
import { WriteCursor, pad8 } from "../src/abi/write-cursor.js";
import { BufferTooSmallError, GuestProtocolError } from "../src/errors/errors.js";

const GUARD = 0xa5;
const ADDRESS = 64;

/** A buffer of `size` bytes at ADDRESS with guard bytes on both sides. */
function guarded(size: number): WritableBuffer {
  const bytes = new Uint8Array(ADDRESS + size + 4096).fill(GUARD);
  return { bytes, view: new DataView(bytes.buffer), address: ADDRESS, size, recordWrite: () => undefined };
}

function guardsIntact(buf: WritableBuffer): boolean {
  const { bytes, address, size } = buf;
  return bytes.subarray(0, address).every((b) => b === GUARD) && bytes.subarray(address + size).every((b) => b === GUARD);
}

/** Payload bytes a lone value can take in a buffer of `size`: message and value headers come first. */
const roomFor = (size: number): number => size - MSG.headerSize - VALUE_HEADER_SIZE;

test("pad8 rounds up to 8 without wrapping at 2^31 or 2^32", () => {
  const cases: Array<[number, number]> = [
    [0, 0], [1, 8], [7, 8], [8, 8], [9, 16],
    [2 ** 31 - 1, 2 ** 31], [2 ** 31, 2 ** 31], [2 ** 31 + 1, 2 ** 31 + 8],
    [2 ** 32 - 1, 2 ** 32], [2 ** 32, 2 ** 32], [2 ** 32 + 8, 2 ** 32 + 8], [2 ** 32 + 9, 2 ** 32 + 16],
  ];
  for (const [n, padded] of cases) assert.equal(pad8(n), padded, `pad8(${n})`);
});

test("bytes exactly the room left fit and decode; one byte more is BufferTooSmallError", () => {
  const size = 4096;
  const fits = guarded(size);
  const payload = new Uint8Array(roomFor(size)).fill(1);
  writeMessage(fits, MessageKind.Call, 0, 0, ["bytes"], [payload], () => "b");
  assert.deepEqual(readValues(receiveMessage(fits, MessageKind.Call, "t"), "t")[0]!.value, payload);
  assert.ok(guardsIntact(fits));

  const over = guarded(size);
  assert.throws(() => writeMessage(over, MessageKind.Call, 0, 0, ["bytes"], [new Uint8Array(roomFor(size) + 1)], () => "b"), BufferTooSmallError);
  assert.ok(guardsIntact(over));
});

test("bytes whose padding does not fit are refused: room − 7 … room − 1 with the room a multiple of 8", () => {
  const size = 4096; // room 4064: a multiple of 8, so room − 1 pads to room and fits; check the next buffer size down too
  for (const delta of [1, 7]) {
    const buf = guarded(size - delta); // room 4064 − delta: payloads padding up past it must fail
    const room = roomFor(size - delta);
    assert.throws(() => writeMessage(buf, MessageKind.Call, 0, 0, ["bytes"], [new Uint8Array(room)], () => "b"), BufferTooSmallError, `delta ${delta}`);
    writeMessage(buf, MessageKind.Call, 0, 0, ["bytes"], [new Uint8Array(room - (room % 8))], () => "b");
    assert.ok(guardsIntact(buf));
  }
});

test("bytes of 2^31 − 1 and 2^32 − 1 are BufferTooSmallError, with nothing written outside the buffer", () => {
  for (const length of [2 ** 31 - 1, 2 ** 32 - 1]) {
    const buf = guarded(4096);
    const huge = new Uint8Array(length); // zero pages, never touched: only its length is read
    assert.throws(() => writeMessage(buf, MessageKind.Call, 0, 0, ["bytes"], [huge], () => "b"), BufferTooSmallError, `length ${length}`);
    assert.ok(guardsIntact(buf), `length ${length}`);
  }
});

test("a string exactly the room left fits (NUL included); one byte more is BufferTooSmallError", () => {
  const size = 4096;
  const room = roomFor(size) - 1; // the NUL takes a byte
  const fits = guarded(size);
  writeMessage(fits, MessageKind.Call, 0, 0, ["string"], ["s".repeat(room)], () => "s");
  assert.equal(readValues(receiveMessage(fits, MessageKind.Call, "t"), "t")[0]!.value, "s".repeat(room));
  const multiByte = "✓".repeat(Math.floor(room / 3)) + "s".repeat(room % 3);
  writeMessage(fits, MessageKind.Call, 0, 0, ["string"], [multiByte], () => "s");
  assert.equal(readValues(receiveMessage(fits, MessageKind.Call, "t"), "t")[0]!.value, multiByte);
  assert.ok(guardsIntact(fits));

  for (const text of ["s".repeat(room + 1), `${multiByte}s`]) {
    const over = guarded(size);
    assert.throws(() => writeMessage(over, MessageKind.Call, 0, 0, ["string"], [text], () => "s"), BufferTooSmallError);
    assert.ok(guardsIntact(over));
  }
});

test("WriteCursor.claim: exactly the room left, one past it, and lengths past u32 (the wire's width)", () => {
  const records: Array<[number, number]> = [];
  const bytes = new Uint8Array(8192);
  const cursor = (room: number): WriteCursor => new WriteCursor(bytes, new DataView(bytes.buffer), 0, room, (a, l) => void records.push([a, l]));
  assert.equal(cursor(100).claim(100, () => "v"), 0);
  assert.throws(() => cursor(100).claim(101, () => "v"), BufferTooSmallError);
  // A cursor whose room is larger than any real buffer: only the u32 limit stops these.
  const vast = 2 ** 40;
  assert.equal(cursor(vast).claim(2 ** 32 - 1, () => "v"), 0);
  for (const length of [2 ** 32, 2 ** 32 + 8, -1, NaN]) {
    records.length = 0;
    assert.throws(() => cursor(vast).claim(length, () => "v"), BufferTooSmallError, `length ${length}`);
    assert.deepEqual(records, [], `length ${length}: nothing recorded`);
  }
});

/** A guest-written message holding one value header with `len`, the message ending `extra` bytes after the header. */
function guestValue(len: number, messageLength: number, tag: number = TAG.bytes): WritableBuffer {
  const buf = guarded(1 << 16);
  const v = buf.view;
  v.setUint32(buf.address + MSG.magic, 0x4d4c4d56, true);
  v.setUint16(buf.address + MSG.version, 1, true);
  v.setUint16(buf.address + MSG.kind, MessageKind.Return, true);
  v.setUint32(buf.address + MSG.length, messageLength, true);
  v.setUint32(buf.address + MSG.count, 1, true);
  v.setUint32(buf.address + MSG.headerSize, tag, true);
  v.setUint32(buf.address + MSG.headerSize + 4, len, true);
  return buf;
}

test("guest value lengths: exactly the message's end decodes; one past, 2^31 − 1, 2^32 − 1 are GuestProtocolError", () => {
  const payload = 64;
  const length = MSG.headerSize + VALUE_HEADER_SIZE + payload;
  const read = (len: number, messageLength = length): unknown => readValue(receiveMessage(guestValue(len, messageLength), MessageKind.Return, "t").cursor, "t").value;
  assert.equal((read(payload) as Uint8Array).length, payload);
  assert.equal((read(payload - 7) as Uint8Array).length, payload - 7, "pads to exactly the end");
  for (const len of [payload + 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1]) {
    assert.throws(() => read(len), GuestProtocolError, `len ${len}`);
  }
  // A length that fits but whose padding runs past the message's end.
  assert.throws(() => read(payload - 3, length - 4), GuestProtocolError);
});

test("guest message lengths: the buffer's size is accepted, one past it and 2^32 − 1 are GuestProtocolError", () => {
  const size = 1 << 16;
  assert.doesNotThrow(() => receiveMessage(guestValue(0, size), MessageKind.Return, "t"));
  for (const length of [size + 1, 2 ** 31 - 1, 2 ** 32 - 1, MSG.headerSize - 1]) {
    assert.throws(() => receiveMessage(guestValue(0, length), MessageKind.Return, "t"), GuestProtocolError, `length ${length}`);
  }
});

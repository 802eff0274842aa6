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

/** A guest-written RETURN holding `count` u32 values (16 bytes each), its length covering them all. */
function guestScalars(count: number): WritableBuffer {
  const buf = guestValue(8, MSG.headerSize + count * 16, TAG.u32);
  buf.view.setUint32(buf.address + MSG.count, count, true);
  for (let i = 0; i < count; i++) {
    const at = buf.address + MSG.headerSize + i * 16;
    buf.view.setUint32(at, TAG.u32, true);
    buf.view.setUint32(at + 4, 8, true);
    buf.view.setUint32(at + 8, i, true);
  }
  return buf;
}

test("value counts: 64 values are read; 65, though each is well-formed, are GuestProtocolError", () => {
  const values = readValues(receiveMessage(guestScalars(64), MessageKind.Return, "t"), "t");
  assert.deepEqual(values.map((v) => v.value), Array.from({ length: 64 }, (_, i) => i));
  assert.throws(() => receiveMessage(guestScalars(65), MessageKind.Return, "t"), GuestProtocolError);
});

test("a well-formed message of another kind is GuestProtocolError", () => {
  const buf = guestScalars(1);
  assert.equal(receiveMessage(buf, MessageKind.Return, "t").count, 1);
  for (const kind of [MessageKind.HostCall, MessageKind.Log, MessageKind.Abort, MessageKind.Call]) {
    assert.throws(() => receiveMessage(buf, kind, "t"), GuestProtocolError, `kind ${kind}`);
  }
});

test("a value header needs its 8 bytes: an empty value ending at the message's end decodes, with 8 bytes left and no fewer", () => {
  const empty = guestValue(0, MSG.headerSize + VALUE_HEADER_SIZE);
  assert.deepEqual(readValues(receiveMessage(empty, MessageKind.Return, "t"), "t")[0]!.value, new Uint8Array(0));
  assert.throws(() => readValues(receiveMessage(guestValue(0, MSG.headerSize + VALUE_HEADER_SIZE - 1), MessageKind.Return, "t"), "t"), GuestProtocolError);
});

test("a value that fits but whose padding to 8 does not is GuestProtocolError (only the padding is past the end)", () => {
  const room = 60; // payload bytes the message leaves: not a multiple of 8
  const read = (len: number): unknown => readValue(receiveMessage(guestValue(len, MSG.headerSize + VALUE_HEADER_SIZE + room), MessageKind.Return, "t").cursor, "t").value;
  assert.equal((read(56) as Uint8Array).length, 56, "pads to 56: fits");
  for (const len of [57, 60]) assert.throws(() => read(len), GuestProtocolError, `len ${len} pads to 64`);
});

test("scalars must say length 8: 0, 4 and 16 are GuestProtocolError; strings need their NUL, so length 0 is one too", () => {
  const length = MSG.headerSize + VALUE_HEADER_SIZE + 16;
  const read = (len: number, tag: number): unknown => {
    const buf = guestValue(len, length, tag);
    buf.bytes.fill(0, buf.address + MSG.headerSize + VALUE_HEADER_SIZE, buf.address + length); // zero payload
    return readValue(receiveMessage(buf, MessageKind.Return, "t").cursor, "t").value;
  };
  assert.equal(read(8, TAG.u32), 0);
  for (const tag of [TAG.i32, TAG.u32, TAG.i64, TAG.u64, TAG.f32, TAG.f64, TAG.bool]) {
    for (const len of [0, 4, 16]) assert.throws(() => read(len, tag), GuestProtocolError, `tag ${tag}, length ${len}`);
  }
  assert.throws(() => read(0, TAG.string), GuestProtocolError, "an empty string value without its NUL");
  assert.equal(read(1, TAG.string), "", "a lone NUL is the empty string");
});

test("an ASCII string longer than the room left is refused before any of it is written", () => {
  const size = 4096;
  const buf = guarded(size);
  assert.throws(() => writeMessage(buf, MessageKind.Call, 0, 0, ["string"], ["s".repeat(roomFor(size))], () => "s"), BufferTooSmallError);
  assert.ok(buf.bytes.subarray(ADDRESS + MSG.headerSize).every((b) => b === GUARD), "no byte past the message header was written");
});

/** The host side of the wire format: round trips, and hostile bytes give only GuestProtocolError. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { MessageKind } from "../src/abi/constants.js";
import { readValues, receiveMessage, writeMessage, type WritableBuffer } from "../src/abi/messages.js";
import type { ValueType } from "../src/abi/types.js";
import { ArgumentMismatchError, BufferTooSmallError, GuestProtocolError } from "../src/errors/errors.js";

function buffer(size: number, address = 64): WritableBuffer {
  const bytes = new Uint8Array(address + size + 64);
  return { bytes, view: new DataView(bytes.buffer), address, size, recordWrite: () => undefined };
}

test("a message of every type decodes to the values written", () => {
  const buf = buffer(4096);
  const types: ValueType[] = ["i32", "u32", "i64", "u64", "f32", "f64", "bool", "string", "bytes"];
  const values = [-7, 4294967295, -(2n ** 63n), 2n ** 64n - 1n, 1.5, Math.PI, true, "héllo ✓", new Uint8Array([1, 2, 3])];
  writeMessage(buf, MessageKind.Return, 0, 0, types, values, (i) => `value ${i}`);
  const decoded = readValues(receiveMessage(buf, MessageKind.Return, "test"), "test");
  assert.deepEqual(decoded.map((d) => d.type), types);
  assert.deepEqual(decoded.map((d) => d.value), values);
});

test("values that do not fit their type are rejected before anything is sent", () => {
  const buf = buffer(256);
  const cases: Array<[ValueType, unknown]> = [
    ["i32", 2 ** 31], ["i32", 1.5], ["u32", -1], ["i64", 2n ** 63n], ["u64", -1n], ["u64", 2 ** 60],
    ["f64", "1"], ["bool", 1], ["string", 5], ["string", "a\0b"], ["bytes", [1, 2]],
  ];
  for (const [type, value] of cases) {
    assert.throws(() => writeMessage(buf, MessageKind.Call, 0, 0, [type], [value], () => `arg of ${type}`), ArgumentMismatchError, `${type} ${String(value)}`);
  }
});

test("a message larger than the buffer is rejected with BufferTooSmallError", () => {
  const buf = buffer(128);
  assert.throws(() => writeMessage(buf, MessageKind.Call, 0, 0, ["string"], ["x".repeat(200)], () => "s"), BufferTooSmallError);
  assert.throws(() => writeMessage(buf, MessageKind.Call, 0, 0, ["bytes"], [new Uint8Array(200)], () => "b"), BufferTooSmallError);
});

test("random bytes in a guest buffer give GuestProtocolError or a valid message, never anything else", () => {
  let seed = 12345;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const template = buffer(512);
  writeMessage(template, MessageKind.Return, 0, 0, ["string", "bytes", "u64"], ["abc", new Uint8Array(9), 5n], () => "v");
  let rejected = 0;
  for (let round = 0; round < 5000; round++) {
    const buf = buffer(512);
    buf.bytes.set(template.bytes);
    const flips = 1 + Math.floor(rand() * 6);
    for (let f = 0; f < flips; f++) buf.bytes[buf.address + Math.floor(rand() * 120)] = Math.floor(rand() * 256);
    try {
      readValues(receiveMessage(buf, MessageKind.Return, "fuzz"), "fuzz");
    } catch (error) {
      assert.ok(error instanceof GuestProtocolError, `unexpected ${String(error)}`);
      rejected++;
    }
  }
  assert.ok(rejected > 1000, `fuzzing should reject many mutations (rejected ${rejected})`);
});

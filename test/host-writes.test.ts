/**
 * Host writes into guest memory are recorded before they happen (issue 11, item 2):
 * HostWrites itself, page by page, and every path that writes a message, including
 * the ones that fail half-way (a bad argument after a string, a value larger than the
 * buffer, a host result too large for the output buffer). No KVM needed: guest memory
 * is a plain array and the VM a fake that resets a page to the "snapshot" when the
 * host records it, as a pending deferred restore does.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { MessageKind } from "../src/abi/constants.js";
import { readValues, receiveMessage, writeMessage, type WritableBuffer } from "../src/abi/messages.js";
import type { ValueType } from "../src/abi/types.js";
import { ArgumentMismatchError, BufferTooSmallError, VmletError } from "../src/errors/errors.js";
import type { VirtualMachine } from "../src/hypervisor/virtual-machine.js";
import { HostWrites } from "../src/mem/host-writes.js";
import { CallSession, callContext } from "../src/sandbox/call-session.js";
import { HostFunctionRegistry } from "../src/sandbox/host-functions.js";

const PAGE = 4096;
/** What every byte of the "snapshot" holds; a host write leaves other values. */
const SNAPSHOT_BYTE = 0xee;

test("mark() covers exactly the pages of [address, address + length)", () => {
  const cases: Array<[number, number, number[]]> = [
    [0, 1, [0]],
    [4095, 1, [0]],
    [4095, 2, [0, 1]],
    [4096, 4096, [1]],
    [4096, 4097, [1, 2]],
    [8192, 0, [2]], // an empty write still names its page
    [100, 3 * PAGE, [0, 1, 2, 3]],
  ];
  for (const [address, length, pages] of cases) {
    const writes = new HostWrites(16 * PAGE);
    writes.mark(address, length);
    assert.deepEqual([...writes.takePages()], pages, `mark(${address}, ${length})`);
  }
});

test("takePages() lists each marked page once, in marking order, and forgets them", () => {
  const writes = new HostWrites(64 * PAGE);
  writes.mark(5 * PAGE, 10);
  writes.mark(2 * PAGE, 2 * PAGE);
  writes.mark(5 * PAGE + 100, 8);
  assert.deepEqual([...writes.takePages()], [5, 2, 3]);
  assert.deepEqual([...writes.takePages()], []);
  writes.mark(3 * PAGE, 1);
  assert.deepEqual([...writes.takePages()], [3], "a page taken can be marked again");
});

test("more marked pages than the initial list holds are all kept", () => {
  const writes = new HostWrites(1000 * PAGE);
  for (let page = 0; page < 1000; page += 3) writes.mark(page * PAGE, 1);
  const taken = [...writes.takePages()];
  assert.equal(taken.length, 334);
  assert.deepEqual(taken.slice(0, 3), [0, 3, 6]);
  assert.equal(taken.at(-1), 999);
});

test("drainWith() merges the guest's dirty bitmap with the host's pages, each once, and clears both", () => {
  const writes = new HostWrites(128 * PAGE);
  writes.mark(1 * PAGE, 1);
  writes.mark(70 * PAGE, 1);
  const guest = new BigUint64Array(2);
  guest[0] = (1n << 1n) | (1n << 2n) | (1n << 63n); // pages 1 (also the host's), 2, 63
  guest[1] = 1n << 6n; // page 70 (also the host's)
  assert.deepEqual(writes.drainWith(guest).sort((a, b) => a - b), [1, 2, 63, 70]);
  assert.deepEqual([...writes.takePages()], [], "the marks are cleared");
  assert.deepEqual(writes.drainWith(new BigUint64Array(2)), []);
});

test("clear() forgets every mark", () => {
  const writes = new HostWrites(8 * PAGE);
  writes.mark(0, 3 * PAGE);
  writes.clear();
  assert.deepEqual([...writes.takePages()], []);
});

/**
 * Guest memory whose every recorded range is first reset to the snapshot, as
 * vm.beforeHostWrite does with a restore pending: a byte written before its range was
 * recorded is lost, and a message so written does not decode.
 */
function recordingMemory(size: number): { bytes: Uint8Array; writes: HostWrites; reset: (address: number, length: number) => void } {
  const bytes = new Uint8Array(size).fill(SNAPSHOT_BYTE);
  const writes = new HostWrites(size);
  const reset = (address: number, length: number): void => void bytes.fill(SNAPSHOT_BYTE, address, address + length);
  return { bytes, writes, reset };
}

function recordingBuffer(address: number, size: number): { buf: WritableBuffer; bytes: Uint8Array; writes: HostWrites } {
  const { bytes, writes, reset } = recordingMemory(address + size + PAGE);
  const recordWrite = (at: number, length: number): void => {
    reset(at, length);
    writes.mark(at, length);
  };
  return { buf: { bytes, view: new DataView(bytes.buffer), address, size, recordWrite }, bytes, writes };
}

/** Pages holding a byte the host changed that were never recorded: what a restore would miss. */
function unrecordedPages(bytes: Uint8Array, writes: HostWrites): number[] {
  const recorded = new Set(writes.takePages());
  const missed = new Set<number>();
  bytes.forEach((b, i) => {
    if (b !== SNAPSHOT_BYTE && !recorded.has(Math.floor(i / PAGE))) missed.add(Math.floor(i / PAGE));
  });
  return [...missed];
}

test("a message written through a recording buffer decodes: every range was recorded before it was written", () => {
  const { buf, bytes, writes } = recordingBuffer(PAGE + 100, 8 * PAGE);
  const types: ValueType[] = ["string", "bytes", "string", "u64"];
  const values = ["a".repeat(5000), new Uint8Array(9000).fill(7), "é✓".repeat(3000), 5n];
  writeMessage(buf, MessageKind.Call, 0, 0, types, values, (i) => `argument ${i + 1}`);
  assert.deepEqual(readValues(receiveMessage(buf, MessageKind.Call, "test"), "test").map((v) => v.value), values);
  assert.deepEqual(unrecordedPages(bytes, writes), []);
});

test("a message that fails half-way leaves no unrecorded byte", () => {
  const size = 16 * PAGE;
  const secret = "SECRET-".repeat(2000); // 14 000 bytes: several pages
  const cases: Array<[string, ValueType[], unknown[], new (...a: never[]) => VmletError]> = [
    ["a bad argument after a string", ["string", "i32"], [secret, "not an i32"], ArgumentMismatchError],
    ["a bad argument after bytes", ["bytes", "bool"], [new Uint8Array(9000).fill(0x5a), 1], ArgumentMismatchError],
    ["bytes larger than the buffer after a string", ["string", "bytes"], [secret, new Uint8Array(size)], BufferTooSmallError],
    ["an ASCII string larger than the buffer", ["string"], ["x".repeat(size)], BufferTooSmallError],
    ["a non-ASCII string that fits in UTF-16 units but not in UTF-8 bytes", ["string"], ["é".repeat(size / 2)], BufferTooSmallError],
    ["a 3-byte-per-unit string one byte too long", ["string"], [oneByteTooLong(size)], BufferTooSmallError],
  ];
  for (const [what, types, values, error] of cases) {
    const { buf, bytes, writes } = recordingBuffer(PAGE, size);
    assert.throws(() => writeMessage(buf, MessageKind.Call, 0, 0, types, values, (i) => `argument ${i + 1}`), error, what);
    assert.notEqual(bytes.findIndex((b) => b !== SNAPSHOT_BYTE), -1, `${what}: the host wrote something first`);
    assert.deepEqual(unrecordedPages(bytes, writes), [], what);
  }
});

/** A string whose UTF-8 form is one byte longer than a lone string value can take in a buffer of `size`. */
function oneByteTooLong(size: number): string {
  const room = size - 24 - 8 - 1; // message header, value header, NUL
  const units = Math.floor((room + 1) / 3);
  return "✓".repeat(units) + "x".repeat(room + 1 - 3 * units);
}

/** A fake VM whose beforeHostWrite resets the range to the snapshot (a restore pending). */
function fakeVm(bytes: Uint8Array, reset: (address: number, length: number) => void): VirtualMachine {
  return { memory: bytes, beforeHostWrite: reset } as unknown as VirtualMachine;
}

test("a host function result too large for the output buffer leaves no unrecorded byte (callContext's recording)", () => {
  const { bytes, writes, reset } = recordingMemory(64 * PAGE);
  const ctx = callContext(fakeVm(bytes, reset), { input: { address: PAGE, size: 4 * PAGE }, output: { address: 8 * PAGE, size: 4 * PAGE } }, new HostFunctionRegistry(), writes, () => undefined, () => false);
  const session = new CallSession(ctx, "f", "void", undefined);
  const fn = { name: "big", params: [], returns: "string" as const, impl: () => "" };
  session.hostReturned(fn, "é".repeat(3 * PAGE)); // 6 pages of UTF-8 for a 4-page buffer
  const reply = receiveMessage(ctx.output, MessageKind.HostReturn, "test");
  assert.notEqual(reply.a, 0, "the guest is told the host call failed");
  assert.deepEqual(unrecordedPages(bytes, writes), []);
});

test("a CALL that fails half-way through its arguments leaves no unrecorded byte (callContext's recording)", () => {
  const { bytes, writes, reset } = recordingMemory(64 * PAGE);
  const ctx = callContext(fakeVm(bytes, reset), { input: { address: PAGE, size: 4 * PAGE }, output: { address: 8 * PAGE, size: 4 * PAGE } }, new HostFunctionRegistry(), writes, () => undefined, () => false);
  const fn = { name: "g", index: 0, params: ["string", "f64"] as const, returns: "void" as const };
  assert.throws(() => CallSession.writeCall(ctx, { ...fn, params: [...fn.params] }, ["SECRET".repeat(2000), "not a number"]), ArgumentMismatchError);
  assert.deepEqual(unrecordedPages(bytes, writes), []);
});

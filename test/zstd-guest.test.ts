/**
 * The zstd example guest (examples/zstd-guest/) against the same pinned zstd source and
 * the same wrapper code compiled for the host (build/zstd-host): every frame the guest
 * writes must equal the host's byte for byte, every decompression must give the same
 * bytes or the same zstd error, and bad input must leave the sandbox usable.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { random, randomBytes, records, text } from "../examples/zstd-guest/corpus.js";
import { hostCompress, hostDecompress, hostVersion, type HostAnswer } from "../examples/zstd-guest/zstd-host.js";
import { ZstdError, ZstdSandbox } from "../examples/zstd-guest/zstd-sandbox.js";
import { BufferTooSmallError } from "../src/index.js";

let zstd: ZstdSandbox;
before(async () => {
  zstd = await ZstdSandbox.open();
});
after(() => zstd.close());

const INPUTS: Array<[string, Uint8Array]> = [
  ["empty", new Uint8Array(0)],
  ["one byte", Uint8Array.of(42)],
  ["every byte value", Uint8Array.from({ length: 256 }, (_, i) => i)],
  ["1,000 × 'a'", new Uint8Array(1000).fill(97)],
  ["text 10 KiB", text(10_000, 1)],
  ["records 200 KiB", records(200_000, 2)],
  ["random 64 KiB (incompressible)", randomBytes(65_536, 3)],
  ["zeros 2 MiB", new Uint8Array(2 << 20)],
  ["text with random runs 1 MiB", Uint8Array.from(text(1 << 20, 4), (b, i) => ((i >> 12) % 5 === 0 ? (b * 131 + i) & 255 : b))],
];

const guestCompress = (data: Uint8Array, level: number): HostAnswer => answer(() => zstd.compress(data, level));
const guestDecompress = (data: Uint8Array, maxSize: number): HostAnswer => answer(() => zstd.decompress(data, maxSize));

function answer(call: () => Uint8Array): HostAnswer {
  try {
    return { bytes: call() };
  } catch (error) {
    if (!(error instanceof ZstdError)) throw error;
    return { zstdCode: error.zstdCode, name: error.message };
  }
}

function assertSameAnswer(guest: HostAnswer, host: HostAnswer, what: string): void {
  if ("bytes" in guest && "bytes" in host) {
    // Byte for byte, without printing megabytes on a mismatch.
    assert.equal(guest.bytes.length, host.bytes.length, `${what}: length`);
    assert.ok(Buffer.from(guest.bytes).equals(host.bytes), `${what}: bytes differ`);
  } else {
    assert.deepEqual(guest, host, what);
  }
}

test("the guest is built from the same zstd version as the host reference", () => {
  assert.equal(zstd.version(), hostVersion());
  assert.match(zstd.version(), /^1\.5\.\d+$/);
});

test("the guest writes the same frames as zstd on the host, byte for byte, and reads them back", () => {
  for (const [name, data] of INPUTS) {
    const levels = data.length > 100_000 ? [-5, 1, 3, 9] : [-5, 1, 3, 9, 19, 22];
    for (const level of levels) {
      const what = `${name}, level ${level}`;
      const frame = guestCompress(data, level);
      assertSameAnswer(frame, hostCompress(data, level), what);
      assert.ok("bytes" in frame);
      assertSameAnswer(guestDecompress(frame.bytes, data.length), { bytes: data }, `${what}: round trip`);
    }
  }
});

test("level 19 on a large input gives the host's frame too", () => {
  const data = records(1 << 20, 5);
  assertSameAnswer(guestCompress(data, 19), hostCompress(data, 19), "records 1 MiB, level 19");
});

test("bad frames get the same answer as on the host: zstd's error, never a crash", () => {
  const data = text(50_000, 6);
  const frameAnswer = hostCompress(data, 3);
  assert.ok("bytes" in frameAnswer);
  const frame = frameAnswer.bytes;
  const max = 1 << 20;
  const cases: Array<[string, Uint8Array, number]> = [
    ["no input", new Uint8Array(0), max],
    ["random bytes", randomBytes(1000, 7), max],
    ["the magic number alone", frame.subarray(0, 4), max],
    ["a frame header alone", frame.subarray(0, 6), max],
    ["a frame cut in half", frame.subarray(0, frame.length >> 1), max],
    ["a frame less its last byte", frame.subarray(0, frame.length - 1), max],
    ["a frame and a stray byte", Uint8Array.of(...frame, 0), max],
    ["two frames in a row", Uint8Array.of(...frame, ...frame), max],
    ["a skippable frame alone", Uint8Array.of(0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3), max],
    ["exactly maxSize", frame, data.length],
    ["one byte over maxSize", frame, data.length - 1],
    ["maxSize 0", frame, 0],
  ];
  for (const [name, input, maxSize] of cases) assertSameAnswer(guestDecompress(input, maxSize), hostDecompress(input, maxSize), name);
  // Flipped bits anywhere in the frame: each gives the host's bytes or the host's error.
  const next = random(8);
  for (let i = 0; i < 150; i++) {
    const bad = Uint8Array.from(frame);
    for (let flips = 1 + (next() % 3); flips > 0; flips--) bad[next() % bad.length]! ^= 1 << next() % 8;
    assertSameAnswer(guestDecompress(bad, max), hostDecompress(bad, max), `mutation ${i}`);
  }
  assert.equal(zstd.sandbox.poisoned, undefined);
});

test("a decompression bomb stops at maxSize with zstd's dstSize_tooSmall", () => {
  const bomb = hostCompress(new Uint8Array(64 << 20), 19);
  assert.ok("bytes" in bomb);
  assert.ok(bomb.bytes.length < 10_000);
  const guest = guestDecompress(bomb.bytes, 1 << 20);
  assertSameAnswer(guest, hostDecompress(bomb.bytes, 1 << 20), "64 MiB of zeros into 1 MiB");
  assert.deepEqual(guest, { zstdCode: 70, name: "Destination buffer is too small" });
  assert.throws(() => zstd.decompress(bomb.bytes, zstd.maxOutput + 1), RangeError);
});

test("the largest input fits even when it does not compress, whatever maxOutput is", async () => {
  const small = await ZstdSandbox.open({ maxInput: 2 << 20, maxOutput: 64 << 10, heapSize: 64 << 20 });
  try {
    const data = randomBytes(2 << 20, 10);
    assertSameAnswer(answer(() => small.compress(data, 1)), hostCompress(data, 1), "random 2 MiB, level 1");
  } finally {
    small.close();
  }
});

test("an input larger than the sandbox's buffer is a typed error and the sandbox goes on", () => {
  assert.throws(() => zstd.compress(new Uint8Array((8 << 20) + 8192)), BufferTooSmallError);
  assert.equal(zstd.sandbox.poisoned, undefined);
  const data = text(1000, 9);
  assert.deepEqual(zstd.decompress(zstd.compress(data)), data);
});

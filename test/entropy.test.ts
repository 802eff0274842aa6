/**
 * Guests' seeds and lineage ids come from getrandom(2) through the addon (src/sandbox/entropy.ts,
 * native/random.c), not node:crypto: the addon fills whole buffers, refuses what is not one,
 * and the ids are well-formed version 4 UUIDs that never repeat.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { HypervisorError } from "../src/index.js";
import { loadAddon } from "../src/native/addon.js";
import { randomSeed, randomUuid, randomWord } from "../src/sandbox/entropy.js";

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test("fillRandom fills every byte of a buffer, odd lengths and offsets included", () => {
  const addon = loadAddon();
  const backing = new Uint8Array(4099);
  const view = backing.subarray(3, 4098); // 4095 bytes, not page- or word-aligned
  const seen = new Uint8Array(view.length);
  for (let round = 0; round < 8; round++) {
    addon.fillRandom(view);
    for (let i = 0; i < view.length; i++) seen[i]! |= view[i]!;
  }
  // After 8 fills, a byte that stayed 0 each time has odds 2^-64: the whole view was written.
  assert.equal(seen.indexOf(0), -1, `byte ${seen.indexOf(0)} was never written`);
  assert.deepEqual([backing[0], backing[1], backing[2], backing[4098]], [0, 0, 0, 0], "bytes outside the view untouched");
  addon.fillRandom(new Uint8Array(0));
});

test("fillRandom refuses what is not a buffer", () => {
  const addon = loadAddon() as unknown as { fillRandom(v: unknown): void };
  for (const bad of [undefined, 42, "bytes", {}, [1, 2, 3]]) assert.throws(() => addon.fillRandom(bad), /getrandom.*bad arguments|bad arguments/);
});

test("lineage ids are version 4 UUIDs that do not repeat", () => {
  const ids = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const id = randomUuid();
    assert.match(id, UUID_V4);
    ids.add(id);
  }
  assert.equal(ids.size, 5000);
});

test("seeds are 64 bits wide and words cross the pool's refill", () => {
  const seeds = new Set<bigint>();
  let high = 0n;
  for (let i = 0; i < 2000; i++) {
    const s = randomSeed(); // 2000 seeds = 4000 words: the 1024-word pool refills several times
    seeds.add(s);
    high |= s >> 32n;
  }
  assert.equal(seeds.size, 2000);
  assert.equal(high, 0xffffffffn, "every bit of the upper half was set by some seed");
  const w = randomWord();
  assert.ok(Number.isInteger(w) && w >= 0 && w <= 0xffffffff);
});

test("a getrandom failure is a typed HypervisorError naming it, and the next draw tries again", () => {
  const addon = loadAddon() as unknown as { fillRandom: (buf: Uint32Array) => void };
  const real = addon.fillRandom;
  // Draw until the pool refills, then the rest of it: the next word must refill it again.
  let refills = 0;
  addon.fillRandom = (buf) => {
    refills++;
    real(buf);
  };
  while (refills === 0) randomWord();
  for (let i = 1; i < 1024; i++) randomWord();
  addon.fillRandom = () => {
    throw Object.assign(new Error("getrandom: Function not implemented"), { code: "ENOSYS", operation: "getrandom" });
  };
  try {
    assert.throws(() => randomWord(), (e: unknown) => e instanceof HypervisorError && e.code === "HYPERVISOR" && /getrandom/.test(e.message));
  } finally {
    addon.fillRandom = real;
  }
  assert.ok(Number.isInteger(randomWord()));
});

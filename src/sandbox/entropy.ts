/** Seeds for guests' random number generators, from the OS CSPRNG, drawn in batches (a crypto call per restore would cost microseconds). */
import { randomFillSync } from "node:crypto";

const pool = new Uint32Array(1024);
let next = pool.length;

/** 32 random bits; a 64-bit seed is two of them (numbers, not BigInt: this runs on every restore). */
export function randomWord(): number {
  if (next === pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  return pool[next++]!;
}

/** 64 random bits as a bigint, for set-up paths. */
export function randomSeed(): bigint {
  return (BigInt(randomWord()) << 32n) | BigInt(randomWord());
}

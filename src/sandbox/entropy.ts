/** Seeds for guests' random number generators, from the OS CSPRNG, drawn in batches (a crypto call per restore would cost microseconds). */
import { randomFillSync } from "node:crypto";

const pool = new BigUint64Array(512);
let next = pool.length;

export function randomSeed(): bigint {
  if (next === pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  return pool[next++]!;
}

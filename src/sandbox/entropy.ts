/**
 * Seeds for guests' random number generators and ids for sandbox lineages, from the kernel's
 * CSPRNG (getrandom(2) in the addon, which a sandbox loads anyway: node:crypto would add 5–10 ms
 * to the first sandbox of a process; docs/benchmarks.md § Cold start). Drawn in batches, since a
 * call per restore would cost microseconds.
 */
import { loadAddon } from "../native/addon.js";
import { native } from "../native/errors.js";

const pool = new Uint32Array(1024);
let next = pool.length;

/** 32 random bits; a 64-bit seed is two of them (numbers, not BigInt: this runs on every restore). */
export function randomWord(): number {
  if (next === pool.length) {
    native("getrandom", () => loadAddon().fillRandom(pool)); // a failure (seccomp, an old kernel) is a typed HypervisorError
    next = 0;
  }
  return pool[next++]!;
}

/** 64 random bits as a bigint, for set-up paths. */
export function randomSeed(): bigint {
  return (BigInt(randomWord()) << 32n) | BigInt(randomWord());
}

/** A random (version 4, RFC 9562) UUID, as crypto.randomUUID() writes it. */
export function randomUuid(): string {
  const hex = [randomWord(), randomWord(), randomWord(), randomWord()].map((w) => w.toString(16).padStart(8, "0")).join("");
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * Readers for untrusted JSON: each takes a value and the place it came from, and
 * returns it typed or throws SnapshotInvalidError naming that place.
 */
import { SnapshotInvalidError } from "./errors.js";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function parseJson(bytes: Uint8Array, where: string): Json {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as Json;
  } catch (error) {
    throw new SnapshotInvalidError(where, `not valid UTF-8 JSON (${(error as Error).message})`, { cause: error });
  }
}

export function object(value: Json | undefined, where: string): JsonObject {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new SnapshotInvalidError(where, "must be an object");
  return value;
}

export function array(value: Json | undefined, where: string, maxLength: number): Json[] {
  if (!Array.isArray(value)) throw new SnapshotInvalidError(where, "must be an array");
  if (value.length > maxLength) throw new SnapshotInvalidError(where, `has ${value.length} entries, at most ${maxLength} allowed`);
  return value;
}

export function string(value: Json | undefined, where: string, pattern?: RegExp, maxLength = 4096): string {
  if (typeof value !== "string") throw new SnapshotInvalidError(where, "must be a string");
  if (value.length > maxLength) throw new SnapshotInvalidError(where, `longer than ${maxLength} characters`);
  if (pattern && !pattern.test(value)) throw new SnapshotInvalidError(where, `"${value.slice(0, 80)}" does not match ${pattern}`);
  return value;
}

export function integer(value: Json | undefined, where: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new SnapshotInvalidError(where, `must be an integer in [${min}, ${max}] (got ${JSON.stringify(value) ?? "nothing"})`);
  }
  return value;
}

export function oneOf<T extends string>(value: Json | undefined, where: string, allowed: readonly T[]): T {
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
    throw new SnapshotInvalidError(where, `must be one of ${allowed.join(", ")} (got ${JSON.stringify(value) ?? "nothing"})`);
  }
  return value as T;
}

export function exactly(value: Json | undefined, where: string, expected: string | number): void {
  if (value !== expected) throw new SnapshotInvalidError(where, `must be ${JSON.stringify(expected)} (got ${JSON.stringify(value) ?? "nothing"})`);
}

const U64_HEX = /^0x[0-9a-f]{1,16}$/;

/** A 64-bit value written as a lower-case hex string ("0x…"). */
export function u64(value: Json | undefined, where: string): bigint {
  return BigInt(string(value, where, U64_HEX));
}

export const hex64 = (n: bigint): string => `0x${n.toString(16)}`;

export function base64(value: Json | undefined, where: string, maxBytes: number): Uint8Array {
  const text = string(value, where, /^[A-Za-z0-9+/]*={0,2}$/, Math.ceil(maxBytes / 3) * 4);
  return new Uint8Array(Buffer.from(text, "base64"));
}

/** Throws when a name appears twice. */
export function unique(names: readonly string[], where: string): void {
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw new SnapshotInvalidError(where, `"${n}" appears twice`);
    seen.add(n);
  }
}

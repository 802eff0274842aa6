/**
 * Readers for untrusted JSON: each takes a value and the place it came from, and
 * returns it typed or throws SnapshotInvalidError naming that place.
 */
import { SnapshotInvalidError } from "./errors.js";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** Deepest nesting of arrays and objects accepted; vmlet's own documents nest at most 5 deep. */
export const MAX_JSON_DEPTH = 32;
/** Largest JSON document parsed (the largest per-file cap, MAX_BYTES.index and .config). */
export const MAX_JSON_BYTES = 4 * 1024 * 1024;

/**
 * Parses untrusted JSON. Size and nesting depth are checked on the bytes first: a deeply
 * nested value parses, but every recursive walk of it afterwards (JSON.stringify in an
 * error message, a deep compare) overflows the stack with a raw RangeError.
 */
export function parseJson(bytes: Uint8Array, where: string): Json {
  if (bytes.byteLength > MAX_JSON_BYTES) throw new SnapshotInvalidError(where, `is ${bytes.byteLength} bytes of JSON; at most ${MAX_JSON_BYTES} are allowed`);
  const depth = nestingDepth(bytes);
  if (depth > MAX_JSON_DEPTH) throw new SnapshotInvalidError(where, `nests arrays and objects more than ${MAX_JSON_DEPTH} deep`);
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as Json;
  } catch (error) {
    throw new SnapshotInvalidError(where, `not valid UTF-8 JSON (${(error as Error).message})`, { cause: error });
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPENERS = new Set([0x5b, 0x7b]); // [ {
const CLOSERS = new Set([0x5d, 0x7d]); // ] }

/**
 * The deepest bracket nesting outside strings, stopping once past MAX_JSON_DEPTH. A byte
 * scan is exact for UTF-8: bytes of multi-byte characters are never ASCII brackets or quotes.
 */
function nestingDepth(bytes: Uint8Array): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < bytes.byteLength && deepest <= MAX_JSON_DEPTH; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (OPENERS.has(b)) deepest = Math.max(deepest, ++depth);
    else if (CLOSERS.has(b)) depth--;
  }
  return deepest;
}

/** A value for an error message: JSON, cut to 80 characters (it can be a 4 MiB string). */
const shown = (value: Json | undefined): string => {
  const text = JSON.stringify(value) ?? "nothing";
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
};

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
    throw new SnapshotInvalidError(where, `must be an integer in [${min}, ${max}] (got ${shown(value)})`);
  }
  return value;
}

export function oneOf<T extends string>(value: Json | undefined, where: string, allowed: readonly T[]): T {
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
    throw new SnapshotInvalidError(where, `must be one of ${allowed.join(", ")} (got ${shown(value)})`);
  }
  return value as T;
}

export function exactly(value: Json | undefined, where: string, expected: string | number): void {
  if (value !== expected) throw new SnapshotInvalidError(where, `must be ${JSON.stringify(expected)} (got ${shown(value)})`);
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

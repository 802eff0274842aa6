/**
 * Guest-function arguments from command-line text, and results back to text or JSON,
 * driven by the function's signature.
 */
import fs from "node:fs";
import type { GuestValue, ReturnType, ValueType } from "../abi/types.js";
import { isReturnType, isValueType } from "../abi/types.js";
import { UnknownFunctionError } from "../errors/errors.js";
import { CliFailure, UsageError } from "./args.js";

export interface FunctionSignature {
  readonly name: string;
  readonly params: readonly ValueType[];
  readonly returns: ReturnType;
  /** "name(i32, string) -> i32" */
  readonly text: string;
}

const SIGNATURE = /^([A-Za-z_][A-Za-z0-9_]*)\(([^)]*)\) -> ([a-z0-9]+)$/;

/**
 * Parses the signature strings `Sandbox.functions` and `Snapshot.functions` return
 * ("add(i32, i32) -> i32"): the public API gives signatures only as text.
 */
export function parseSignature(text: string): FunctionSignature {
  const m = SIGNATURE.exec(text);
  const params = m?.[2] === "" ? [] : (m?.[2]?.split(", ") ?? []);
  if (!m || !params.every(isValueType) || !isReturnType(m[3])) throw new Error(`unexpected function signature "${text}"`);
  return { name: m[1]!, params: params as ValueType[], returns: m[3], text };
}

/** The named function's signature, or the library's UnknownFunctionError listing what the guest exports. */
export function findFunction(signatures: readonly string[], name: string): FunctionSignature {
  const all = signatures.map(parseSignature);
  const fn = all.find((f) => f.name === name);
  if (!fn) throw new UnknownFunctionError(name, all.map((f) => f.text));
  return fn;
}

const INTEGER = /^([+-]?)(0x[0-9a-f]+|0b[01]+|0o[0-7]+|\d+)$/i;
const RANGE: Record<"i32" | "u32" | "i64" | "u64", readonly [bigint, bigint]> = {
  i32: [-(2n ** 31n), 2n ** 31n - 1n],
  u32: [0n, 2n ** 32n - 1n],
  i64: [-(2n ** 63n), 2n ** 63n - 1n],
  u64: [0n, 2n ** 64n - 1n],
};

/** Converts the command-line arguments of a call; a wrong count or a malformed value is a UsageError. */
export function parseCallArgs(fn: FunctionSignature, texts: readonly string[]): GuestValue[] {
  if (texts.length !== fn.params.length) {
    throw new UsageError(`${fn.text} takes ${fn.params.length} argument${fn.params.length === 1 ? "" : "s"}, got ${texts.length}${texts.length ? `: ${texts.join(" ")}` : ""}`);
  }
  return texts.map((text, i) => parseValue(text, fn.params[i]!, `argument ${i + 1} of ${fn.text}`));
}

/** One argument; a malformed value is a UsageError naming where it goes and what was expected. */
export function parseValue(text: string, type: ValueType, where: string): GuestValue {
  const bad = (what: string): UsageError => new UsageError(`${where}: ${JSON.stringify(text)} is not ${what}`);
  switch (type) {
    case "i32":
    case "u32":
    case "i64":
    case "u64": {
      const m = INTEGER.exec(text);
      if (!m) throw bad("an integer (decimal, or 0x/0o/0b)");
      const value = (m[1] === "-" ? -1n : 1n) * BigInt(m[2]!);
      const [min, max] = RANGE[type];
      if (value < min || value > max) throw bad(`in the ${type} range ${min}..${max}`);
      return type === "i32" || type === "u32" ? Number(value) : value;
    }
    case "f32":
    case "f64": {
      const lower = text.trim().toLowerCase();
      const special: Record<string, number> = { nan: NaN, inf: Infinity, "+inf": Infinity, infinity: Infinity, "+infinity": Infinity, "-inf": -Infinity, "-infinity": -Infinity };
      if (lower in special) return special[lower]!;
      const value = Number(text);
      if (lower === "" || Number.isNaN(value)) throw bad("a number");
      return value;
    }
    case "bool":
      if (text === "true") return true;
      if (text === "false") return false;
      throw bad("true or false");
    case "string":
      return text;
    case "bytes": {
      if (text.startsWith("@")) {
        try {
          return new Uint8Array(fs.readFileSync(text.slice(1)));
        } catch (error) {
          throw new CliFailure(`${where}: cannot read ${text.slice(1)}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
        }
      }
      const hex = text.replace(/^0x/i, "");
      if (!/^([0-9a-f]{2})*$/i.test(hex)) throw bad("hex bytes (e.g. 01ff, 0x01ff) or @file");
      return new Uint8Array(Buffer.from(hex, "hex"));
    }
  }
}

/** A result as text: bigints in decimal, bytes as hex, strings as they are; undefined for void. */
export function formatResult(value: GuestValue | undefined, type: ReturnType): string | undefined {
  if (type === "void" || value === undefined) return undefined;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex");
  if (typeof value === "number" && Object.is(value, -0)) return "-0";
  return String(value);
}

/** A result as JSON: bigints as decimal strings, bytes as hex strings, non-finite floats as "NaN"/"Infinity"/"-Infinity", void as null. */
export function jsonResult(value: GuestValue | undefined, type: ReturnType): string | number | boolean | null {
  if (type === "void" || value === undefined) return null;
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex");
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  return value;
}

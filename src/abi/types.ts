/** The value types of the call ABI and their JavaScript representations. */
import { TAG } from "./constants.js";

export type ValueType = "i32" | "u32" | "i64" | "u64" | "f32" | "f64" | "bool" | "string" | "bytes";
export type ReturnType = ValueType | "void";

/** The JavaScript type each ABI type maps to. 64-bit integers are bigints (numbers are accepted as arguments). */
export interface JsTypes {
  i32: number;
  u32: number;
  i64: bigint;
  u64: bigint;
  f32: number;
  f64: number;
  bool: boolean;
  string: string;
  bytes: Uint8Array;
  void: void;
}

/** What the guest accepts as an argument of each type. */
export interface JsArgTypes extends Omit<JsTypes, "i64" | "u64"> {
  i64: bigint | number;
  u64: bigint | number;
}

/** Any value that can cross the boundary. */
export type GuestValue = number | bigint | boolean | string | Uint8Array;

/** Maps a tuple of ABI types to the tuple of their JS types. */
export type JsTuple<P extends readonly ValueType[]> = { -readonly [K in keyof P]: JsTypes[P[K]] };

export interface Signature {
  readonly params: readonly ValueType[];
  readonly returns: ReturnType;
}

const TYPE_BY_TAG: readonly ReturnType[] = ["void", "i32", "u32", "i64", "u64", "f32", "f64", "bool", "string", "bytes"];

export function tagOf(type: ReturnType): number {
  return TAG[type];
}

/** The type for a wire tag, or undefined for an unknown tag. */
export function typeOfTag(tag: number): ReturnType | undefined {
  return TYPE_BY_TAG[tag];
}

export function isValueType(value: unknown): value is ValueType {
  return typeof value === "string" && value !== "void" && (TYPE_BY_TAG as readonly string[]).includes(value);
}

export function isReturnType(value: unknown): value is ReturnType {
  return typeof value === "string" && (TYPE_BY_TAG as readonly string[]).includes(value);
}

export function formatSignature(name: string, sig: Signature): string {
  return `${name}(${sig.params.join(", ")}) -> ${sig.returns}`;
}

/**
 * Checks of the options of save, load, checkedLoad and the layout tools, done before any
 * file is touched: a lockTimeoutMs of "abc" or NaN used to make the lock wait forever.
 */
import { InvalidConfigError } from "../../errors/errors.js";
import { optionalBoolean, optionalFunction, optionalString, optionsObject, waitMs } from "../../sandbox/option-checks.js";
import type { Progress } from "./digest.js";
import { DIGEST_PATTERN, TAG_PATTERN } from "./format.js";

/** How long writers wait for another writer's lock unless told otherwise. */
export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;

export interface CheckedSaveOptions {
  readonly guestName: string | undefined;
  readonly lockTimeoutMs: number;
  readonly onProgress: Progress | undefined;
  readonly base: string | undefined;
  /** Diff over the nearest ancestor the layout holds (save's `diff: true`). */
  readonly diff: boolean;
}

export function checkSaveOptions(options: unknown): CheckedSaveOptions {
  const o = optionsObject(options, "save option", ["guestName", "lockTimeoutMs", "onProgress", "base", "diff"]);
  const base = optionalString("base", o.base);
  if (base !== undefined && !TAG_PATTERN.test(base) && !DIGEST_PATTERN.test(base)) {
    throw new InvalidConfigError(`base "${base}" is neither an OCI tag nor a sha256 manifest digest`);
  }
  return {
    guestName: optionalString("guestName", o.guestName),
    lockTimeoutMs: lockTimeout(o.lockTimeoutMs),
    onProgress: optionalFunction("onProgress", o.onProgress as Progress | undefined),
    base,
    diff: diffOption(o.diff, base),
  };
}

function diffOption(value: unknown, base: string | undefined): boolean {
  const diff = optionalBoolean("diff", value) ?? false;
  if (diff && base !== undefined) throw new InvalidConfigError("save() takes base or diff, not both: diff: true picks the base itself");
  return diff;
}

export interface CheckedLoadOptions {
  readonly verify: boolean;
  readonly onProgress: Progress | undefined;
  /** Checked by the loader (load.ts), which owns its default. */
  readonly maxMemorySize: unknown;
}

export function checkLoadOptions(options: unknown): CheckedLoadOptions {
  const o = optionsObject(options, "load option", ["verify", "onProgress", "maxMemorySize"]);
  return {
    verify: optionalBoolean("verify", o.verify) ?? false,
    onProgress: optionalFunction("onProgress", o.onProgress as Progress | undefined),
    maxMemorySize: o.maxMemorySize,
  };
}

/** checkedLoad() options: those of load() but `verify`, which it sets. */
export function checkCheckedLoadOptions(options: unknown): Record<string, unknown> {
  return optionsObject(options, "checkedLoad option", ["onProgress", "maxMemorySize"]);
}

/** The lock wait of remove() and gc(). */
export function checkLayoutWriteOptions(options: unknown): number {
  return lockTimeout(optionsObject(options, "layout write option", ["lockTimeoutMs"]).lockTimeoutMs);
}

/** squash(): the lock wait of its save, and progress. */
export function checkSquashOptions(options: unknown): { lockTimeoutMs: number; onProgress: Progress | undefined } {
  const o = optionsObject(options, "squash option", ["lockTimeoutMs", "onProgress"]);
  return { lockTimeoutMs: lockTimeout(o.lockTimeoutMs), onProgress: optionalFunction("onProgress", o.onProgress as Progress | undefined) };
}

export function checkVerifyOptions(options: unknown): Progress | undefined {
  return optionalFunction("onProgress", optionsObject(options, "verify option", ["onProgress"]).onProgress as Progress | undefined);
}

/** A directory argument: a non-empty path. */
export function checkDir(dir: unknown, action: string): string {
  if (typeof dir !== "string" || dir === "") throw new InvalidConfigError(`${action} needs a directory path`);
  return dir;
}

function lockTimeout(value: unknown): number {
  return value === undefined ? DEFAULT_LOCK_TIMEOUT_MS : waitMs("lockTimeoutMs", value);
}

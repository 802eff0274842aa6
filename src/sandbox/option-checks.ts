/**
 * Checks shared by every public options object (sandbox configs, call options, pool,
 * save, load, layout tools). Each throws InvalidConfigError naming the option, before
 * anything is created: a wrong type must never surface as a raw TypeError, a wait that
 * never ends, or a Node timer that fires at once.
 */
import { InvalidConfigError } from "../errors/errors.js";
import { BACKEND_CHOICES, type BackendChoice } from "../hypervisor/backend-choice.js";
import { HUGE_PAGES_CHOICES, type HugePages } from "../mem/huge-pages.js";

/** Node timers fire after ~1 ms for any delay above this (a 32-bit signed millisecond count). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A plain options object (or undefined, meaning none) whose keys are all in `known`.
 * `what` names one field's kind: "SandboxPool option", "sandbox config field".
 */
export function optionsObject(value: unknown, what: string, known: readonly string[]): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new InvalidConfigError(`${what}s must be an object (got ${describe(value)})`);
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) throw new InvalidConfigError(`unknown ${what} "${key}" (known: ${known.join(", ")})`);
  }
  return value as Record<string, unknown>;
}

/** A backend choice: "auto" (KVM where it works, else the process backend), "kvm" or "process". */
export function backendChoice(name: string, value: unknown): BackendChoice | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !(BACKEND_CHOICES as readonly string[]).includes(value)) {
    throw new InvalidConfigError(`${name} must be one of ${BACKEND_CHOICES.join(", ")} (got ${describe(value)})`);
  }
  return value as BackendChoice;
}

/** Where guest memory uses 2 MiB pages: "auto" (default when undefined), "off" or "on" (mem/huge-pages.ts). */
export function hugePagesChoice(name: string, value: unknown): HugePages {
  if (value === undefined) return "auto";
  if (typeof value !== "string" || !(HUGE_PAGES_CHOICES as readonly string[]).includes(value)) {
    throw new InvalidConfigError(`${name} must be one of ${HUGE_PAGES_CHOICES.join(", ")} (got ${describe(value)})`);
  }
  return value as HugePages;
}

/** Where core dumps go: the option, else VMLET_COREDUMP_DIR, else none. */
export function coreDumpDir(value: unknown): string | undefined {
  if (value === undefined) {
    const env = process.env.VMLET_COREDUMP_DIR;
    return env === undefined || env === "" ? undefined : env;
  }
  if (typeof value !== "string" || value === "") throw new InvalidConfigError(`coreDumpDir must be a directory path (got ${describe(value)})`);
  return value;
}

/** A time limit in ms: positive, finite and at most MAX_TIMER_MS. */
export function timeout(name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > MAX_TIMER_MS) {
    throw new InvalidConfigError(`${name} must be a positive number of milliseconds up to ${MAX_TIMER_MS} (got ${describe(value)})`);
  }
  return value;
}

/** How long to wait for something, in ms: 0 (do not wait) up to MAX_TIMER_MS. */
export function waitMs(name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > MAX_TIMER_MS) {
    throw new InvalidConfigError(`${name} must be a number of milliseconds from 0 to ${MAX_TIMER_MS} (got ${describe(value)})`);
  }
  return value;
}

export function optionalFunction<T>(name: string, value: T | undefined): T | undefined {
  if (value !== undefined && typeof value !== "function") throw new InvalidConfigError(`${name} must be a function (got ${describe(value)})`);
  return value;
}

export function optionalString(name: string, value: unknown): string | undefined {
  if (value !== undefined && typeof value !== "string") throw new InvalidConfigError(`${name} must be a string (got ${describe(value)})`);
  return value;
}

export function optionalBoolean(name: string, value: unknown): boolean | undefined {
  if (value !== undefined && typeof value !== "boolean") throw new InvalidConfigError(`${name} must be a boolean (got ${describe(value)})`);
  return value;
}

/** A value for an error message: strings quoted (so "5" and 5 differ), objects by kind (String() throws for some). */
export function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "object" && value !== null) return Array.isArray(value) ? "an array" : "an object";
  if (typeof value === "symbol") return "a symbol";
  return String(value);
}

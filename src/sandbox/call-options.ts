/** Per-call options: the optional last argument of call()/callSync(), checked field by field. */
import type { GuestValue } from "../abi/types.js";
import { InvalidConfigError } from "../errors/errors.js";

/** Per-call options, passed as the last argument of call()/callSync(). */
export interface CallOptions {
  /** Overrides the sandbox's default timeout for this call. */
  timeoutMs?: number;
  /** Overrides the sandbox's default CPU-time limit for this call. */
  cpuTimeMs?: number;
  /** Cancels the call when aborted; for callSync() only an abort from a host function can land. */
  signal?: AbortSignal;
}

const OPTION_KEYS = new Set(["timeoutMs", "cpuTimeMs", "signal"]);

/** Removes and returns a trailing CallOptions object, if the last argument is one. */
export function popOptions(args: Array<GuestValue | CallOptions>): CallOptions | undefined {
  if (args.length === 0 || !isOptions(args[args.length - 1])) return undefined;
  const options = args.pop() as CallOptions;
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new InvalidConfigError(`unknown call option "${key}" (known: timeoutMs, cpuTimeMs, signal)`);
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new InvalidConfigError("signal must be an AbortSignal");
  return options;
}

function isOptions(value: unknown): value is CallOptions {
  return typeof value === "object" && value !== null && !(value instanceof Uint8Array) && Object.getPrototypeOf(value) === Object.prototype;
}


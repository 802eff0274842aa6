import { HypervisorError, OutOfMemoryError } from "../errors/errors.js";
import type { NativeError } from "./addon.js";

/**
 * Runs a native call and turns its error into a typed one naming the step: running out
 * of memory or shmem space is an OutOfMemoryError, anything else a HypervisorError.
 */
export function native<T>(operation: string, call: () => T): T {
  try {
    return call();
  } catch (error) {
    const e = error as NativeError;
    if (e.code === "ENOMEM" || e.code === "ENOSPC") {
      throw new OutOfMemoryError(`${e.operation ?? operation} failed: ${e.message}`, { cause: error });
    }
    throw new HypervisorError(e.operation ?? operation, e.code, e.message, { cause: error });
  }
}

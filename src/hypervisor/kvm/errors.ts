import { HypervisorError } from "../../errors/errors.js";
import type { NativeError } from "../../native/addon.js";

/** Runs a native call and turns its error into a HypervisorError naming the step. */
export function native<T>(operation: string, call: () => T): T {
  try {
    return call();
  } catch (error) {
    const e = error as NativeError;
    throw new HypervisorError(e.operation ?? operation, e.code, e.message, { cause: error });
  }
}

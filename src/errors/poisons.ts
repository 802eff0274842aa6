import type { ErrorCode } from "./errors.js";

/**
 * Whether an error leaves the sandbox poisoned. Exhaustive on purpose: a new error
 * code does not compile until someone decides whether the guest state is still good.
 */
export function poisons(code: ErrorCode): boolean {
  switch (code) {
    // The guest stopped somewhere other than a call boundary: its state is unknown.
    case "GUEST_ABORTED":
    case "GUEST_FAULT":
    case "GUEST_PROTOCOL":
    case "OUT_OF_MEMORY":
    case "TIMEOUT":
    case "CPU_TIME_LIMIT":
    case "CANCELLED":
    case "HYPERVISOR":
      return true;
    // Rejected before the guest ran, or the guest returned normally afterwards.
    case "UNKNOWN_FUNCTION":
    case "ARGUMENT_MISMATCH":
    case "BUFFER_TOO_SMALL":
    case "HOST_FUNCTION_MISSING":
    case "HOST_FUNCTION_THREW":
    case "HOST_FUNCTION_SIGNATURE":
    case "POISONED":
    case "SANDBOX_BUSY":
    case "SANDBOX_CLOSED":
    case "BAD_GUEST_BINARY":
    case "INVALID_CONFIG":
    case "BACKEND_UNAVAILABLE":
    case "SNAPSHOT_MISMATCH":
    case "POOL_TIMEOUT":
    case "POOL_CLOSED":
    case "HOST_FUNCTIONS_INCOMPATIBLE":
    // Snapshot files: raised while saving or loading, never by a call.
    case "SNAPSHOT_NOT_FOUND":
    case "SNAPSHOT_INVALID":
    case "SNAPSHOT_DIGEST_MISMATCH":
    case "SNAPSHOT_INCOMPATIBLE":
    case "SNAPSHOT_TOO_LARGE":
    case "CPU_INCOMPATIBLE":
    case "LAYOUT_LOCKED":
    case "STORAGE":
      return false;
  }
}

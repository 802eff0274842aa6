/**
 * One error family for everything vmlet throws. Every error has a stable `code`
 * that callers can switch on; `instanceof VmletError` works for all of them.
 * Whether an error poisons the sandbox is decided once, in `poisons.ts`.
 */

import { describeThrown } from "./describe.js";

/** Every error code vmlet can produce. Adding one forces a poisoning decision. */
export type ErrorCode =
  | "GUEST_ABORTED"
  | "GUEST_FAULT"
  | "GUEST_PROTOCOL"
  | "OUT_OF_MEMORY"
  | "UNKNOWN_FUNCTION"
  | "ARGUMENT_MISMATCH"
  | "BUFFER_TOO_SMALL"
  | "HOST_FUNCTION_MISSING"
  | "HOST_FUNCTION_THREW"
  | "HOST_FUNCTION_SIGNATURE"
  | "TIMEOUT"
  | "CPU_TIME_LIMIT"
  | "CANCELLED"
  | "POISONED"
  | "SANDBOX_BUSY"
  | "SANDBOX_CLOSED"
  | "BAD_GUEST_BINARY"
  | "INVALID_CONFIG"
  | "BACKEND_UNAVAILABLE"
  | "SNAPSHOT_MISMATCH"
  | "POOL_TIMEOUT"
  | "POOL_CLOSED"
  | "HOST_FUNCTIONS_INCOMPATIBLE"
  | "SNAPSHOT_NOT_FOUND"
  | "SNAPSHOT_INVALID"
  | "SNAPSHOT_DIGEST_MISMATCH"
  | "SNAPSHOT_INCOMPATIBLE"
  | "SNAPSHOT_TOO_LARGE"
  | "CPU_INCOMPATIBLE"
  | "LAYOUT_LOCKED"
  | "STORAGE"
  | "HYPERVISOR";

export interface VmletErrorOptions {
  cause?: unknown;
}

/** Base class of every vmlet error. */
export abstract class VmletError extends Error {
  abstract readonly code: ErrorCode;
  constructor(message: string, options?: VmletErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The guest called `vmlet_abort`/`vmlet_panic` or failed an SDK check. */
export class GuestAbortedError extends VmletError {
  readonly code = "GUEST_ABORTED";
  /** The core dump written for this abort, when the sandbox has a coreDumpDir (docs/debugging.md). */
  coreDump: string | undefined;
  constructor(
    readonly guestMessage: string,
    readonly file: string,
    readonly line: number,
  ) {
    super(`guest aborted: ${guestMessage}${file ? ` (${file}:${line})` : ""}`);
  }
}

/** The guest CPU raised an exception (page fault, #UD, #DE, …). */
export class GuestFaultError extends VmletError {
  readonly code = "GUEST_FAULT";
  /** The core dump written for this fault, when the sandbox has a coreDumpDir (docs/debugging.md). */
  coreDump: string | undefined;
  constructor(
    /** x86 exception vector, e.g. 14 for a page fault. */
    readonly vector: number,
    /** Mnemonic of the vector, e.g. "#PF". */
    readonly mnemonic: string,
    /** Guest RIP of the faulting instruction. */
    readonly rip: bigint,
    /** Faulting address (CR2) for page faults, otherwise undefined. */
    readonly address: bigint | undefined,
    /** Error code pushed by the CPU, when the vector has one. */
    readonly errorCode: number | undefined,
    detail: string,
  ) {
    super(`guest fault ${mnemonic} (vector ${vector}) at rip 0x${rip.toString(16)}${detail}`);
  }
}

/** The guest wrote something into the call buffers that breaks the wire format. */
export class GuestProtocolError extends VmletError {
  readonly code = "GUEST_PROTOCOL";
}

/** Guest memory or host memory for the sandbox ran out. */
export class OutOfMemoryError extends VmletError {
  readonly code = "OUT_OF_MEMORY";
}

/** The guest exports no function of that name. */
export class UnknownFunctionError extends VmletError {
  readonly code = "UNKNOWN_FUNCTION";
  constructor(readonly functionName: string, available: readonly string[]) {
    super(`guest has no function "${functionName}" (it exports: ${available.join(", ") || "nothing"})`);
  }
}

/** Arguments do not match the function's signature (count or type). */
export class ArgumentMismatchError extends VmletError {
  readonly code = "ARGUMENT_MISMATCH";
}

/** A message does not fit the guest's I/O buffer. */
export class BufferTooSmallError extends VmletError {
  readonly code = "BUFFER_TOO_SMALL";
}

/** The guest called a host function that is not registered. */
export class HostFunctionMissingError extends VmletError {
  readonly code = "HOST_FUNCTION_MISSING";
  constructor(readonly functionName: string) {
    super(`guest called host function "${functionName}", which is not registered`);
  }
}

/** A host function threw; the guest was told, then the caller gets this. */
export class HostFunctionError extends VmletError {
  readonly code = "HOST_FUNCTION_THREW";
  constructor(readonly functionName: string, cause: unknown) {
    super(`host function "${functionName}" threw: ${describeThrown(cause)}`, { cause });
  }
}

/** The guest called a host function with types other than the registered ones. */
export class HostFunctionSignatureError extends VmletError {
  readonly code = "HOST_FUNCTION_SIGNATURE";
}

/** The call ran past its `timeoutMs`. */
export class TimeoutError extends VmletError {
  readonly code = "TIMEOUT";
  constructor(readonly timeoutMs: number) {
    super(`guest call exceeded its timeout of ${timeoutMs} ms`);
  }
}

/** The guest used more CPU time in one call than its `cpuTimeMs` allows (time it waited, e.g. for host functions, does not count). */
export class CpuTimeLimitError extends VmletError {
  readonly code = "CPU_TIME_LIMIT";
  constructor(readonly cpuTimeMs: number) {
    super(`guest call used more than its CPU-time limit of ${cpuTimeMs} ms`);
  }
}

/** The call was cancelled through an AbortSignal or `sandbox.kill()`. */
export class CancelledError extends VmletError {
  readonly code = "CANCELLED";
}

/** An earlier failure left the sandbox in an unknown state; it refuses calls. */
export class PoisonedError extends VmletError {
  readonly code = "POISONED";
}

/** A call was made while another call on the same sandbox is in flight. */
export class SandboxBusyError extends VmletError {
  readonly code = "SANDBOX_BUSY";
}

/** The sandbox was closed. */
export class SandboxClosedError extends VmletError {
  readonly code = "SANDBOX_CLOSED";
}

/** The guest ELF is malformed or does not fit vmlet's rules. */
export class BadGuestBinaryError extends VmletError {
  readonly code = "BAD_GUEST_BINARY";
}

/** A configuration value is missing, out of range or not allowed here. */
export class InvalidConfigError extends VmletError {
  readonly code = "INVALID_CONFIG";
}

/** The virtualisation backend cannot be used (no /dev/kvm, no permission, addon missing). */
export class BackendUnavailableError extends VmletError {
  readonly code = "BACKEND_UNAVAILABLE";
}

/** The snapshot cannot be restored into this sandbox (another lineage or layout). */
export class SnapshotMismatchError extends VmletError {
  readonly code = "SNAPSHOT_MISMATCH";
}

/** The host functions offered do not cover the snapshot's set (missing or different signatures). */
export class HostFunctionsIncompatibleError extends VmletError {
  readonly code = "HOST_FUNCTIONS_INCOMPATIBLE";
  constructor(
    action: string,
    /** Signatures the snapshot needs that are not registered. */
    readonly missing: readonly string[],
    /** Snapshot signatures registered with a different signature. */
    readonly mismatched: readonly string[],
  ) {
    const parts = [
      missing.length ? `missing: ${missing.join(", ")}` : "",
      mismatched.length ? `different signature: ${mismatched.join(", ")}` : "",
    ].filter(Boolean);
    super(`${action} needs every host function the snapshot was taken with; ${parts.join("; ")}`);
  }
}

/** A hypervisor operation failed; `operation` names the step, `errno` the reason. */
export class HypervisorError extends VmletError {
  readonly code = "HYPERVISOR";
  constructor(
    readonly operation: string,
    readonly errno: string | undefined,
    message: string,
    options?: VmletErrorOptions,
  ) {
    super(`${operation} failed: ${message}`, options);
  }
}

/** vmlet: hardware-isolated micro-VM sandboxes for Node.js. The public API. */
export { SandboxBuilder, createSandbox } from "./sandbox/builder.js";
export type { SandboxStats, HeapUsage } from "./sandbox/stats.js";
export { Sandbox, type RestoreReport, type RestoreOptions, type DebugSession } from "./sandbox/sandbox.js";
export type { DebugOptions } from "./debug/gdb-stub.js";
export type { CallOptions } from "./sandbox/call-options.js";
export type { TypedGuest, GuestFunctionName, GuestCallArgs, GuestCallResult } from "./sandbox/typed-guest.js";
export { Snapshot } from "./snapshot/snapshot.js";
export type { SaveOptions } from "./snapshot/file/save.js";
export { DEFAULT_MAX_MEMORY_SIZE, type LoadOptions } from "./snapshot/file/load.js";
export {
  SnapshotLayout, type SnapshotListing, type SnapshotScan, type SnapshotInspection, type VerifyReport, type VerifyProblem, type GcReport, type LayoutWriteOptions, type MemoryLayerInfo,
} from "./snapshot/file/layout-tools.js";
export {
  SnapshotNotFoundError, SnapshotInvalidError, DigestMismatchError, SnapshotIncompatibleError, SnapshotTooLargeError, CpuIncompatibleError, LayoutLockedError, StorageError,
} from "./snapshot/file/errors.js";
export type { SnapshotSandboxConfig } from "./sandbox/snapshot-config.js";
export type { SandboxConfig } from "./sandbox/config.js";
export { defineHostFunction, type HostFunctionDefinition, type HostFunctionImpl } from "./sandbox/host-functions.js";
export type { GuestLogRecord, GuestLogger, LogLevel } from "./sandbox/logging.js";
export type { GuestValue, JsTypes, ReturnType, ValueType } from "./abi/types.js";
export type { BackendInfo } from "./hypervisor/virtual-machine.js";
export type { HugePages } from "./mem/huge-pages.js";
export { backendInfo, backendAvailability } from "./hypervisor/backend.js";
export type { BackendChoice } from "./hypervisor/backend-choice.js";
export { demoGuestPath } from "./guests.js";
export * from "./errors/errors.js";
export { SandboxPool, type PoolStats, type SandboxPoolOptions } from "./pool/sandbox-pool.js";
export { PoolClosedError, PoolTimeoutError } from "./pool/errors.js";

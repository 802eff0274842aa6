/**
 * Errors of snapshots on disk. They extend VmletError like every vmlet error; they are
 * raised by save/load and the layout tools, never by a call, so they never poison.
 */
import { VmletError, type VmletErrorOptions } from "../../errors/errors.js";

/** The directory holds no OCI layout, or the layout has no such tag or manifest digest. */
export class SnapshotNotFoundError extends VmletError {
  readonly code = "SNAPSHOT_NOT_FOUND";
  constructor(readonly dir: string, readonly ref: string | undefined, message: string) {
    super(message);
  }
}

/**
 * The layout breaks a structural rule: malformed JSON, a wrong media type or size, a
 * value out of range, a symlink, a file too large. `where` names the file or field.
 */
export class SnapshotInvalidError extends VmletError {
  readonly code = "SNAPSHOT_INVALID";
  constructor(readonly where: string, problem: string, options?: VmletErrorOptions) {
    super(`invalid snapshot layout: ${where}: ${problem}`, options);
  }
}

/** A blob's bytes do not hash to the digest that names it. */
export class DigestMismatchError extends VmletError {
  readonly code = "SNAPSHOT_DIGEST_MISMATCH";
  constructor(readonly blob: string, readonly expected: string, readonly actual: string) {
    super(`blob ${blob} is corrupt: expected ${expected}, its bytes hash to ${actual}`);
  }
}

/** The snapshot was written by a format, ABI or architecture this vmlet cannot resume. */
export class SnapshotIncompatibleError extends VmletError {
  readonly code = "SNAPSHOT_INCOMPATIBLE";
}

/** The snapshot's guest memory is larger than the loader allows (`maxMemorySize`, CLI `--max-memory`). */
export class SnapshotTooLargeError extends VmletError {
  readonly code = "SNAPSHOT_TOO_LARGE";
  constructor(readonly ref: string, readonly memorySize: number, readonly maxMemorySize: number) {
    super(`snapshot "${ref}" has ${memorySize} bytes of guest memory; this load allows at most ${maxMemorySize} (raise maxMemorySize, or --max-memory)`);
  }
}

/** The guest may use CPU features this machine's vCPUs do not offer. */
export class CpuIncompatibleError extends VmletError {
  readonly code = "CPU_INCOMPATIBLE";
  constructor(readonly missing: readonly string[]) {
    super(`the snapshot's guest may use CPU features this machine does not offer: ${missing.join(", ")}`);
  }
}

/** Another process is writing the layout and did not finish within `lockTimeoutMs`. */
export class LayoutLockedError extends VmletError {
  readonly code = "LAYOUT_LOCKED";
  constructor(readonly dir: string, readonly lockTimeoutMs: number) {
    super(`snapshot layout ${dir} is locked by another writer (waited ${lockTimeoutMs} ms)`);
  }
}

/** The file system refused: disk full, read-only, no permission. The previous layout is intact. */
export class StorageError extends VmletError {
  readonly code = "STORAGE";
  constructor(readonly path: string, readonly errno: string | undefined, message: string, options?: VmletErrorOptions) {
    super(`${path}: ${message}`, options);
  }
}

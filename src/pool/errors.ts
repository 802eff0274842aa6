/**
 * Errors of SandboxPool. They extend VmletError like every vmlet error; their codes
 * ("POOL_TIMEOUT", "POOL_CLOSED") never come from a call, so they never poison.
 */
import { VmletError } from "../errors/errors.js";

/** No sandbox became free within the pool's `acquireTimeoutMs`. `fn` did not run. */
export class PoolTimeoutError extends VmletError {
  readonly code = "POOL_TIMEOUT";
  constructor(
    /** The limit that expired, in ms. */
    readonly acquireTimeoutMs: number,
    /** Pool size: how many sandboxes were all busy (or being restored). */
    readonly size: number,
  ) {
    super(`no sandbox of the pool (size ${size}) became free within acquireTimeoutMs ${acquireTimeoutMs} ms`);
  }
}

/** The pool was closed: `run()` after `close()`, or a run still waiting for a sandbox when `close()` was called. */
export class PoolClosedError extends VmletError {
  readonly code = "POOL_CLOSED";
}

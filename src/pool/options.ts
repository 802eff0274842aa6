/** SandboxPool options: validated once, at construction. */
import { availableParallelism } from "node:os";
import { InvalidConfigError } from "../errors/errors.js";
import { describe, optionsObject, timeout } from "../sandbox/option-checks.js";
import { HostFunctionRegistry, type HostFunctionDefinition } from "../sandbox/host-functions.js";
import type { GuestLogger, LogLevel } from "../sandbox/logging.js";
import type { BackendChoice } from "../hypervisor/backend-choice.js";
import { resolveSnapshotConfig, type SnapshotSandboxConfig } from "../sandbox/snapshot-config.js";
import { requireSuperset } from "../snapshot/host-function-rules.js";
import { Snapshot } from "../snapshot/snapshot.js";

export interface SandboxPoolOptions {
  /** Most sandboxes the pool keeps (integer 1…1024). Default: `os.availableParallelism()`. */
  size?: number;
  /** Host functions of every sandbox; must cover the snapshot's set with identical signatures. */
  hostFunctions?: readonly HostFunctionDefinition[];
  /** Default per-call timeout in ms for every sandbox; none unless set. */
  timeoutMs?: number;
  /** Default per-call CPU-time limit in ms for every sandbox; none unless set. */
  cpuTimeMs?: number;
  /** Most verbose guest log level delivered. Default: the snapshot's level. */
  maxGuestLogLevel?: LogLevel;
  /** Receives guest log records. Default: stderr. */
  guestLogger?: GuestLogger;
  /** Longest a run() waits for a free sandbox before it rejects with PoolTimeoutError; none unless set. */
  acquireTimeoutMs?: number;
  /** Which backend runs the pool's sandboxes: "auto" (default; also VMLET_BACKEND), "kvm" or "process". */
  backend?: BackendChoice;
}

export interface ResolvedPoolOptions {
  readonly size: number;
  readonly acquireTimeoutMs: number | undefined;
  /** What Sandbox.fromSnapshot gets for every sandbox. */
  readonly sandbox: SnapshotSandboxConfig;
}

export const MAX_POOL_SIZE = 1024;
const KNOWN = ["size", "hostFunctions", "timeoutMs", "cpuTimeMs", "maxGuestLogLevel", "guestLogger", "acquireTimeoutMs", "backend"];

export function resolvePoolOptions(snapshot: unknown, options: unknown): ResolvedPoolOptions {
  if (!(snapshot instanceof Snapshot)) throw new InvalidConfigError("SandboxPool takes a Snapshot as its first argument (sandbox.snapshot())");
  const o = optionsObject(options ?? undefined, "SandboxPool option", KNOWN);
  const size = o.size === undefined ? availableParallelism() : o.size;
  if (typeof size !== "number" || !Number.isInteger(size) || size < 1 || size > MAX_POOL_SIZE) {
    throw new InvalidConfigError(`size must be an integer from 1 to ${MAX_POOL_SIZE} (got ${describe(o.size)})`);
  }
  const acquireTimeoutMs = o.acquireTimeoutMs === undefined ? undefined : timeout("acquireTimeoutMs", o.acquireTimeoutMs);
  // The per-sandbox fields: the same checks (and messages naming the option) as Sandbox.fromSnapshot.
  const sandbox: SnapshotSandboxConfig = {};
  for (const key of ["hostFunctions", "timeoutMs", "cpuTimeMs", "maxGuestLogLevel", "guestLogger", "backend"] as const) {
    if (o[key] !== undefined) (sandbox as Record<string, unknown>)[key] = o[key];
  }
  resolveSnapshotConfig(sandbox);
  // Fail now, not at the first run(), when the host functions do not cover the snapshot's.
  const registry = new HostFunctionRegistry();
  for (const f of sandbox.hostFunctions ?? []) registry.register(f.name, f.params, f.returns, f.impl); // checked above
  requireSuperset(snapshot.state.hostFunctions, registry, "SandboxPool");
  return { size, acquireTimeoutMs, sandbox };
}

/**
 * The config of a sandbox made from a snapshot. Memory sizes, the guest binary, stack
 * and heap come from the snapshot: the type has no such fields, and a plain-JS caller
 * passing one gets an InvalidConfigError rather than a silent ignore.
 */
import { InvalidConfigError } from "../errors/errors.js";
import { backendChoice, coreDumpDir, hugePagesChoice, optionalFunction, timeout } from "./option-checks.js";
import type { HugePages } from "../mem/huge-pages.js";
import type { BackendChoice } from "../hypervisor/backend-choice.js";
import { checkHostFunctions, type HostFunctionDefinition } from "./host-functions.js";
import { parseLogLevel, type GuestLogger, type LogLevel } from "./logging.js";

export interface SnapshotSandboxConfig {
  /** Must cover the snapshot's host functions with identical signatures; extras are fine. */
  hostFunctions?: readonly HostFunctionDefinition[];
  /** Default: the level the snapshot was taken with. */
  maxGuestLogLevel?: LogLevel;
  /** Default: stderr. */
  guestLogger?: GuestLogger;
  /** Default per-call timeout in ms; undefined = none. */
  timeoutMs?: number;
  /** Default per-call limit on the guest's CPU time in ms; undefined = none. */
  cpuTimeMs?: number;
  /** Which backend runs the sandbox: "auto" (default; also VMLET_BACKEND), "kvm" or "process". Any backend resumes any snapshot. */
  backend?: BackendChoice;
  /** Where a guest fault or abort writes an ELF core dump (docs/debugging.md). Default: VMLET_COREDUMP_DIR, else none. */
  coreDumpDir?: string;
  /** Transparent huge pages behind the sandbox's memory: "auto" (default), "off" or "on". The guest's page tables come from the snapshot (docs/snapshots.md, "Huge pages"). */
  hugePages?: HugePages;
}

export interface ResolvedSnapshotConfig {
  readonly hostFunctions: readonly HostFunctionDefinition[];
  readonly maxGuestLogLevel: LogLevel | undefined;
  readonly guestLogger: GuestLogger | undefined;
  readonly timeoutMs: number | undefined;
  readonly cpuTimeMs: number | undefined;
  readonly backend: BackendChoice | undefined;
  readonly coreDumpDir: string | undefined;
  readonly hugePages: HugePages;
}

const KNOWN = new Set(["hostFunctions", "maxGuestLogLevel", "guestLogger", "timeoutMs", "cpuTimeMs", "backend", "coreDumpDir", "hugePages"]);
const FROM_SNAPSHOT = new Set(["guest", "heapSize", "stackSize", "inputSize", "outputSize", "initTimeoutMs", "memorySize"]);

export function resolveSnapshotConfig(config: SnapshotSandboxConfig | undefined): ResolvedSnapshotConfig {
  const c = config ?? {};
  if (typeof c !== "object" || Array.isArray(c)) throw new InvalidConfigError("snapshot sandbox config must be an object");
  for (const key of Object.keys(c)) {
    if (FROM_SNAPSHOT.has(key)) {
      throw new InvalidConfigError(`"${key}" comes from the snapshot and cannot be set for a sandbox made from one`);
    }
    if (!KNOWN.has(key)) throw new InvalidConfigError(`unknown snapshot sandbox config field "${key}" (known: ${[...KNOWN].join(", ")})`);
  }
  return {
    hostFunctions: checkHostFunctions(c.hostFunctions),
    maxGuestLogLevel: c.maxGuestLogLevel === undefined ? undefined : parseLogLevel(c.maxGuestLogLevel, "maxGuestLogLevel"),
    guestLogger: optionalFunction("guestLogger", c.guestLogger),
    timeoutMs: c.timeoutMs === undefined ? undefined : timeout("timeoutMs", c.timeoutMs),
    cpuTimeMs: c.cpuTimeMs === undefined ? undefined : timeout("cpuTimeMs", c.cpuTimeMs),
    backend: backendChoice("backend", c.backend),
    coreDumpDir: coreDumpDir(c.coreDumpDir),
    hugePages: hugePagesChoice("hugePages", c.hugePages),
  };
}

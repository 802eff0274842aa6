/**
 * The config of a sandbox built from a guest binary. Only fields that apply to it
 * exist; unknown fields are rejected, never ignored (the snapshot config will be
 * a separate type with its own fields).
 */
import { InvalidConfigError } from "../errors/errors.js";
import { checkHostFunctions, type HostFunctionDefinition } from "./host-functions.js";
import { backendChoice, coreDumpDir, describe, hugePagesChoice, optionalFunction, optionsObject, timeout } from "./option-checks.js";
import type { HugePages } from "../mem/huge-pages.js";
import type { BackendChoice } from "../hypervisor/backend-choice.js";
import { parseLogLevel, type GuestLogger, type LogLevel } from "./logging.js";

export interface SandboxConfig {
  /** Path to a guest ELF, or its bytes. Required. */
  guest: string | Uint8Array;
  /** Guest heap for malloc, bytes. Default 1 MiB. */
  heapSize?: number;
  /** Guest stack, bytes. Default 256 KiB. */
  stackSize?: number;
  /** Host → guest message buffer (arguments), bytes. Default 64 KiB. */
  inputSize?: number;
  /** Guest → host message buffer (results, host calls, logs), bytes. Default 64 KiB. */
  outputSize?: number;
  /** Most verbose guest log level delivered. Default "info". */
  maxGuestLogLevel?: LogLevel;
  /** Receives guest log records. Default: stderr. */
  guestLogger?: GuestLogger;
  /** Default per-call timeout in ms; undefined = none. */
  timeoutMs?: number;
  /** Default per-call limit on the guest's CPU time in ms (waits for host functions do not count); undefined = none. */
  cpuTimeMs?: number;
  /** Limit for the guest's start-up (its constructors and vmlet_init), ms. Default 5000. */
  initTimeoutMs?: number;
  hostFunctions?: readonly HostFunctionDefinition[];
  /** Which backend runs the sandbox: "auto" (default; also VMLET_BACKEND), "kvm" or "process" (docs/backends.md). */
  backend?: BackendChoice;
  /** Where a guest fault or abort writes an ELF core dump (docs/debugging.md). Default: VMLET_COREDUMP_DIR, else none. */
  coreDumpDir?: string;
  /** 2 MiB pages for guest memory: "auto" (default: where measured to pay), "off" or "on" (docs/snapshots.md, "Huge pages"). */
  hugePages?: HugePages;
}

export interface ResolvedConfig {
  readonly guest: string | Uint8Array;
  readonly heapSize: number;
  readonly stackSize: number;
  readonly inputSize: number;
  readonly outputSize: number;
  readonly maxGuestLogLevel: LogLevel;
  readonly guestLogger: GuestLogger | undefined;
  readonly timeoutMs: number | undefined;
  readonly cpuTimeMs: number | undefined;
  readonly initTimeoutMs: number;
  readonly hostFunctions: readonly HostFunctionDefinition[];
  readonly backend: BackendChoice | undefined;
  readonly coreDumpDir: string | undefined;
  readonly hugePages: HugePages;
}

export const DEFAULTS = {
  heapSize: 1 << 20,
  stackSize: 256 << 10,
  inputSize: 64 << 10,
  outputSize: 64 << 10,
  maxGuestLogLevel: "info",
  initTimeoutMs: 5000,
} as const;

const KNOWN = ["guest", "heapSize", "stackSize", "inputSize", "outputSize", "maxGuestLogLevel", "guestLogger", "timeoutMs", "cpuTimeMs", "initTimeoutMs", "hostFunctions", "backend", "coreDumpDir", "hugePages"];
const GIB = 1 << 30;

export function resolveConfig(config: SandboxConfig): ResolvedConfig {
  if (typeof config !== "object" || config === null) throw new InvalidConfigError("sandbox config must be an object");
  optionsObject(config, "sandbox config field", KNOWN);
  const guest = config.guest;
  if (typeof guest !== "string" && !(guest instanceof Uint8Array)) throw new InvalidConfigError("guest must be a path or a Uint8Array of an ELF file");
  return {
    guest,
    heapSize: size("heapSize", orDefault(config.heapSize, DEFAULTS.heapSize), 4096, 16 * GIB),
    stackSize: size("stackSize", orDefault(config.stackSize, DEFAULTS.stackSize), 16 << 10, GIB),
    inputSize: size("inputSize", orDefault(config.inputSize, DEFAULTS.inputSize), 4096, 256 << 20),
    outputSize: size("outputSize", orDefault(config.outputSize, DEFAULTS.outputSize), 4096, 256 << 20),
    maxGuestLogLevel: parseLogLevel(orDefault(config.maxGuestLogLevel, DEFAULTS.maxGuestLogLevel), "maxGuestLogLevel"),
    guestLogger: optionalFunction("guestLogger", config.guestLogger),
    timeoutMs: config.timeoutMs === undefined ? undefined : timeout("timeoutMs", config.timeoutMs),
    cpuTimeMs: config.cpuTimeMs === undefined ? undefined : timeout("cpuTimeMs", config.cpuTimeMs),
    initTimeoutMs: timeout("initTimeoutMs", orDefault(config.initTimeoutMs, DEFAULTS.initTimeoutMs)),
    hostFunctions: checkHostFunctions(config.hostFunctions),
    backend: backendChoice("backend", config.backend),
    coreDumpDir: coreDumpDir(config.coreDumpDir),
    hugePages: hugePagesChoice("hugePages", config.hugePages),
  };
}

/** Only a missing field takes the default: null is a wrong value like any other. */
function orDefault<T>(value: T | undefined, fallback: T): T {
  return value === undefined ? fallback : value;
}

function size(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidConfigError(`${name} must be an integer number of bytes between ${min} and ${max} (got ${describe(value)})`);
  }
  return value;
}

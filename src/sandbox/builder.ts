/** SandboxBuilder: the fluent way to configure and build a sandbox from a guest ELF. */
import type { ReturnType, ValueType } from "../abi/types.js";
import { buildSandbox } from "./create.js";
import { resolveConfig, type SandboxConfig } from "./config.js";
import { checkHostFunctions, hostFunctionFrom, type HostFunctionArgs, type HostFunctionDefinition, type HostFunctionImpl } from "./host-functions.js";
import type { GuestLogger, LogLevel } from "./logging.js";
import type { Sandbox } from "./sandbox.js";
import type { BackendChoice } from "../hypervisor/backend-choice.js";
import type { HugePages } from "../mem/huge-pages.js";

export class SandboxBuilder {
  private config: Partial<SandboxConfig> = {};
  private readonly definitions: HostFunctionDefinition[] = [];

  /** The guest ELF: a path or its bytes. */
  guest(guest: string | Uint8Array): this {
    this.config.guest = guest;
    return this;
  }

  heapSize(bytes: number): this {
    this.config.heapSize = bytes;
    return this;
  }

  stackSize(bytes: number): this {
    this.config.stackSize = bytes;
    return this;
  }

  inputSize(bytes: number): this {
    this.config.inputSize = bytes;
    return this;
  }

  outputSize(bytes: number): this {
    this.config.outputSize = bytes;
    return this;
  }

  maxGuestLogLevel(level: LogLevel): this {
    this.config.maxGuestLogLevel = level;
    return this;
  }

  guestLogger(logger: GuestLogger): this {
    this.config.guestLogger = logger;
    return this;
  }

  /** Default timeout for every call, in ms. */
  timeoutMs(ms: number): this {
    this.config.timeoutMs = ms;
    return this;
  }

  /** Default limit on the guest's CPU time for every call, in ms. */
  cpuTimeMs(ms: number): this {
    this.config.cpuTimeMs = ms;
    return this;
  }

  initTimeoutMs(ms: number): this {
    this.config.initTimeoutMs = ms;
    return this;
  }

  /** Where a guest fault or abort writes an ELF core dump that gdb loads (docs/debugging.md); default VMLET_COREDUMP_DIR. */
  coreDumpDir(dir: string): this {
    this.config.coreDumpDir = dir;
    return this;
  }

  /** 2 MiB pages for guest memory: "auto" (the default: where measured to pay), "off" or "on" (docs/snapshots.md, "Huge pages"). */
  hugePages(mode: HugePages): this {
    this.config.hugePages = mode;
    return this;
  }

  /** Which backend runs the sandbox: "auto" (the default, or VMLET_BACKEND), "kvm" or "process". */
  backend(choice: BackendChoice): this {
    this.config.backend = choice;
    return this;
  }

  /** Registers a host function the guest can call by name: a defineHostFunction() result, or its four parts. */
  hostFunction<const P extends readonly ValueType[], const R extends ReturnType>(definition: HostFunctionDefinition<P, R>): this;
  hostFunction<const P extends readonly ValueType[], const R extends ReturnType>(
    name: string,
    params: P,
    returns: R,
    impl: HostFunctionImpl<P, R>,
  ): this;
  hostFunction(...args: HostFunctionArgs): this {
    this.definitions.push(hostFunctionFrom(args));
    return this;
  }

  /** Registers several host functions, e.g. defineHostFunction() results. */
  hostFunctions(definitions: readonly HostFunctionDefinition[]): this {
    for (const definition of checkHostFunctions(definitions)) this.definitions.push(definition);
    return this;
  }

  /** Builds the sandbox and runs the guest's initialisation. */
  async build(): Promise<Sandbox> {
    const resolved = resolveConfig({ ...this.config, hostFunctions: this.definitions } as SandboxConfig);
    return buildSandbox(resolved);
  }
}

/**
 * Builds a sandbox from a plain config object — what SandboxBuilder does. Every field
 * is checked; an unknown or misplaced field is an InvalidConfigError, never ignored.
 */
export async function createSandbox(config: SandboxConfig): Promise<Sandbox> {
  return buildSandbox(resolveConfig(config));
}

/**
 * A running guest. Lifecycle: built (guest initialised, idle) → calls → closed.
 * A call that faults, aborts, times out or is cancelled poisons the sandbox:
 * later calls reject with PoisonedError.
 */
import { fpuAreaInStack, fpuResume, guestXsaveMask } from "../hypervisor/fpu-reload.js";
import { CB, PORT_READY } from "../abi/constants.js";
import type { GuestFunction } from "../abi/function-table.js";
import { formatSignature, type GuestValue, type ReturnType, type ValueType } from "../abi/types.js";
import {
  ArgumentMismatchError, CancelledError, GuestAbortedError, GuestFaultError, HypervisorError, InvalidConfigError, PoisonedError,
  SandboxBusyError, SandboxClosedError, SnapshotMismatchError, UnknownFunctionError, VmletError,
} from "../errors/errors.js";
import { describeThrown } from "../errors/describe.js";
import path from "node:path";
import { SIGABRT, signalForVector, writeCoreDump, type CoreSource } from "../debug/core-dump.js";
import type { GdbStub, DebugOptions } from "../debug/gdb-stub.js";
import { memoryProfile } from "../debug/memory-profile.js";

/** A debugger server attached to a sandbox (Sandbox.debug()). */
export interface DebugSession {
  /** The TCP port on 127.0.0.1 gdb connects to. */
  readonly port: number;
  /** Resolves when gdb next resumes the guest (continue or step): a call started then stops at its breakpoints. */
  whenResumed(): Promise<void>;
  /** Detaches gdb (breakpoints removed, a stopped guest resumed) and stops the server. */
  close(): Promise<void>;
}
import { poisons } from "../errors/poisons.js";
import type { BackendInfo, SystemSetup, VirtualMachine, VmExit } from "../hypervisor/virtual-machine.js";
import { guestCpuIdentity } from "../hypervisor/backend.js";
import type { MemoryLayout } from "../mem/layout.js";
import type { GuestMemory } from "../mem/guest-memory.js";
import { HostWrites } from "../mem/host-writes.js";
import { MemoryImage } from "../snapshot/memory-image.js";
import { checkCapturedImage } from "../snapshot/image-checks.js";
import { SnapshotInvalidError } from "../snapshot/file/errors.js";
import { requireSuperset } from "../snapshot/host-function-rules.js";
import { Snapshot, SNAPSHOT_STATE_VERSION, type Lineage } from "../snapshot/snapshot.js";
import { partsFromSnapshot } from "./from-snapshot.js";
import { parkVm } from "./parked-vms.js";
import { resolveSnapshotConfig, type SnapshotSandboxConfig } from "./snapshot-config.js";
import { randomWord } from "./entropy.js";
import { CallSession, callContext, finishSync, readReturn, type CallContext, type Step } from "./call-session.js";
import { popOptions, type CallOptions } from "./call-options.js";
import { invokeHostAsync } from "./host-wait.js";
import { timeout } from "./option-checks.js";
import { typedGuest, type TypedGuest } from "./typed-guest.js";
import { StatsCounter, heapUsage, type HeapUsage, type SandboxStats } from "./stats.js";
import { HostFunctionRegistry, hostFunctionFrom, type HostFunctionArgs, type HostFunctionDefinition, type HostFunctionImpl } from "./host-functions.js";
import { levelNumber, parseLogLevel, type GuestLogger, type LogLevel } from "./logging.js";

/** @internal What the creation code hands a new Sandbox. */
export interface SandboxParts {
  readonly vm: VirtualMachine;
  readonly memory: GuestMemory;
  readonly layout: MemoryLayout;
  readonly system: SystemSetup;
  readonly lineage: Lineage;
  /** The snapshot guest memory currently derives from, if any. */
  readonly base: Snapshot | undefined;
  readonly functions: ReadonlyMap<string, GuestFunction>;
  readonly hostFunctions: HostFunctionRegistry;
  readonly logger: GuestLogger;
  readonly maxGuestLogLevel: LogLevel;
  readonly timeoutMs: number | undefined;
  readonly cpuTimeMs: number | undefined;
  /** Where a guest fault or abort writes a core dump (docs/debugging.md); undefined: none. */
  readonly coreDumpDir: string | undefined;
}

type State = "idle" | "busy" | "closed";

/** What restore() did: the pages it copied back, or whether it remapped all of memory. */
export interface RestoreReport {
  /** Pages copied from the snapshot (the guest's dirty pages plus pages the host wrote). */
  readonly pagesCopied: number;
  /** True when the snapshot was not this sandbox's base: memory was remapped onto it instead. */
  readonly remapped: boolean;
}

/** Options of restore(). */
export interface RestoreOptions {
  /**
   * Defer the copying part of the restore (dirty log, page copies, CPU registers) to the
   * start of the sandbox's next call, where it runs in the same crossing into the
   * backend as the call: restore + call then costs one crossing instead of two. All
   * checks still happen in restore(), which still throws synchronously, and the sandbox
   * behaves exactly as if restored at once. Anything that needs the state first (a
   * snapshot(), another restore()) does the pending part then; close() drops it.
   * `pagesCopied` of the report is known once the part has run: reading it earlier runs
   * it at that moment. Default false. Not for restores off the request path (a pool's):
   * deferring moves the work onto the next call.
   */
  readonly deferred?: boolean;
}

/** The report of a deferred restore: pagesCopied is settled when the deferred part runs. */
class DeferredRestoreReport implements RestoreReport {
  readonly remapped = false;
  private copied: number | undefined;

  constructor(private readonly flush: () => number) {}

  /** pagesCopied if the deferred part has run, without running it. */
  get settledCount(): number | undefined {
    return this.copied;
  }

  get pagesCopied(): number {
    this.copied ??= Math.max(0, this.flush());
    return this.copied;
  }

  /** Records the count before it can be overwritten by a later restore (or is lost with the VM). */
  settle(copied: number): void {
    this.copied ??= Math.max(0, copied);
  }
}

/** Per base snapshot: a view of its image, and how this host's guests save their FPU state and must fix the snapshot's record of it. */
interface BaseFacts {
  readonly base: Snapshot;
  readonly view: DataView;
  readonly xsaveMask: number;
  readonly fixMarkAt: number | undefined;
}

/** Core dumps written by this process (their file names count up). */
let coreDumps = 0;
const GPR_RSP = 6;

/** Frees the VM of a sandbox that was garbage-collected without close(). */
const leaked = new FinalizationRegistry<VirtualMachine>((vm) => vm.destroy());

export class Sandbox {
  private state: State = "idle";
  private poisonedBy: VmletError | undefined;
  private cancelRequested = false;
  private closeWhenIdle = false;
  /** Ends the wait for a pending async host function (set only while one is pending). */
  private stopHostWait: (() => void) | undefined;
  private maxLogLevel: LogLevel;
  private readonly ctx: CallContext;
  private readonly vm: VirtualMachine;
  private readonly hostWrites: HostWrites;
  private base: Snapshot | undefined;
  /** Whether guest state may differ from `base` (a call ran, or the base was replaced). */
  private modified = true;
  /** A snapshot whose host-function set the registered functions were found to cover (reset by registerHostFunction). */
  private coveredSnapshot: Snapshot | undefined;
  /** The GDB server attached by debug(), if any. */
  private stub: GdbStub | undefined;
  /** The report of the latest deferred restore, until its count is known. */
  private openReport: DeferredRestoreReport | undefined;
  private lastRestore: RestoreReport | undefined;
  private readonly counter = new StatsCounter();
  /** vm.run, counted in stats() (one function for every call: no closure per call). */
  /**
   * The guest is stopped inside a call: its last run ended somewhere other than READY (or
   * threw). Any error then poisons, whatever its code: the guest is not at a call boundary.
   */
  private midCall = false;
  private readonly countedRun = (timeoutNs: number): VmExit => {
    this.midCall = true;
    const exit = this.counter.run(this.vm, timeoutNs);
    this.midCall = !isReady(exit);
    return exit;
  };
  /** baseFacts() of the current base. */
  private facts: BaseFacts | undefined;

  /** @internal Use SandboxBuilder or Sandbox.fromSnapshot. */
  constructor(private readonly parts: SandboxParts) {
    this.vm = parts.vm;
    this.hostWrites = new HostWrites(parts.vm.memory.byteLength);
    this.base = parts.base;
    this.modified = parts.base === undefined;
    this.ctx = callContext(parts.vm, parts.layout, parts.hostFunctions, this.hostWrites, parts.logger, () => this.cancelRequested);
    this.maxLogLevel = parts.maxGuestLogLevel;
    leaked.register(this, parts.vm, this);
  }

  /**
   * A new sandbox resumed from `snapshot`. Its memory shares the snapshot's pages
   * copy-on-write, so the cost does not grow with memory size. Host functions must
   * cover the snapshot's set (docs/host-functions.md).
   */
  static async fromSnapshot(snapshot: Snapshot, config?: SnapshotSandboxConfig): Promise<Sandbox> {
    if (!(snapshot instanceof Snapshot)) throw new InvalidConfigError("fromSnapshot() takes a Snapshot");
    const sandbox = new Sandbox(partsFromSnapshot(snapshot, resolveSnapshotConfig(config)));
    try {
      sandbox.applyHostFields();
    } catch (error) {
      const typed = sandbox.failMidway("Sandbox.fromSnapshot()", error);
      sandbox.close(); // poisoned: its VM is destroyed, not parked
      throw typed;
    }
    return sandbox;
  }

  /** The backend running this sandbox (e.g. KVM, flavour "pvm" or "hardware"). */
  get backend(): BackendInfo {
    return this.vm.backend;
  }

  /** Functions the guest exports, with their signatures. */
  get functions(): string[] {
    return [...this.parts.functions.values()].map((f) => formatSignature(f.name, f));
  }

  /** The error that poisoned the sandbox, if any. */
  get poisoned(): VmletError | undefined {
    return this.poisonedBy;
  }

  get closed(): boolean {
    return this.state === "closed";
  }

  /** Guest memory size in bytes. */
  get memorySize(): number {
    return this.parts.layout.memorySize;
  }

  /**
   * Calls a guest function on the calling thread: the lowest latency, but the event
   * loop waits. Host functions must be synchronous here.
   */
  callSync(name: string, ...args: Array<GuestValue | CallOptions>): GuestValue | undefined {
    this.refuseIfClosed(`call "${name}"`);
    if (this.stub) throw new SandboxBusyError(`a debugger is attached: call "${name}" with call(), which keeps the event loop free for it`);
    const options = popOptions(args);
    const fn = this.lookup(name, args);
    const timeoutMs = this.timeoutFor(options);
    const cpuTimeMs = this.cpuTimeFor(options);
    const unwatch = this.watchSignal(name, options?.signal);
    this.enter();
    let session: CallSession | undefined;
    const run = this.countedRun;
    try {
      CallSession.writeCall(this.ctx, fn, args);
      if (timeoutMs === undefined && cpuTimeMs === undefined) {
        // Fast path: most calls are one run ending at READY, with no session state needed.
        const exit = run(0);
        if (isReady(exit)) return readReturn(this.ctx.output, name, fn.returns, undefined);
        session = new CallSession(this.ctx, name, fn.returns, undefined);
        return finishSync(this.vm, session, exit, run);
      }
      session = new CallSession(this.ctx, name, fn.returns, timeoutMs, cpuTimeMs);
      return finishSync(this.vm, session, run(session.nextRunTimeoutNs()), run);
    } catch (error) {
      throw this.fail(error);
    } finally {
      this.counter.hostCalls += session?.hostCalls ?? 0;
      unwatch?.();
      this.leave();
    }
  }

  /**
   * Calls a guest function on the sandbox's own vCPU thread; the event loop stays
   * free and host functions may be async.
   */
  async call(name: string, ...args: Array<GuestValue | CallOptions>): Promise<GuestValue | undefined> {
    this.refuseIfClosed(`call "${name}"`);
    const options = popOptions(args);
    const fn = this.lookup(name, args);
    const session = new CallSession(this.ctx, name, fn.returns, this.timeoutFor(options), this.cpuTimeFor(options));
    const unwatch = this.watchSignal(name, options?.signal);
    this.enter();
    try {
      CallSession.writeCall(this.ctx, fn, args);
      for (;;) {
        const timeoutNs = session.nextRunTimeoutNs();
        const startedAt = this.counter.runStarted();
        this.midCall = true;
        const exit = await (this.stub ? this.stub.run(timeoutNs) : this.vm.runAsync(timeoutNs));
        this.midCall = !isReady(exit);
        this.counter.ran(startedAt);
        const step: Step = session.onExit(exit);
        if (step.kind === "done") return step.value;
        if (step.kind === "host-call") await invokeHostAsync(session, step, (stop) => (this.stopHostWait = stop));
      }
    } catch (error) {
      throw this.fail(error);
    } finally {
      this.counter.hostCalls += session.hostCalls;
      unwatch?.();
      this.leave();
    }
  }

  /** Counts since the sandbox was made: calls, guest time, exits, host calls; the latest restore; memory size. */
  stats(): SandboxStats {
    this.refuseIfClosed("read stats");
    const last = this.lastRestore;
    return this.counter.snapshot(last && { pagesCopied: this.knownPagesCopied(last), remapped: last.remapped }, this.memorySize, this.heapUsage());
  }

  /** The heap figures in the control block: the base image's while a deferred restore waits (memory is stale until it runs). */
  private heapUsage(): HeapUsage {
    const { layout, memory } = this.parts;
    const at = layout.controlBlock + CB.heapUsed;
    const words = this.vm.restorePending && this.base ? this.base.image.read(at, 16) : memory.bytes.subarray(at, at + 16);
    return heapUsage(words, layout.heap.size);
  }

  /** A report's count, without running a deferred restore that is still pending (reading pagesCopied would). */
  private knownPagesCopied(report: RestoreReport): number | undefined {
    if (!(report instanceof DeferredRestoreReport) || report.settledCount !== undefined) return report.pagesCopied;
    return this.vm.restorePending ? undefined : report.pagesCopied;
  }

  /** A view whose call()/callSync() tsc checks against the guest interface T (e.g. from `vmlet guest types`). */
  typed<T extends object>(): TypedGuest<T> {
    this.refuseIfClosed("make a typed view");
    return typedGuest<T>(this);
  }

  /** Adds or replaces a host function (a defineHostFunction() result, or its four parts); it applies from the guest's next host call, even during a call. */
  registerHostFunction<const P extends readonly ValueType[], const R extends ReturnType>(definition: HostFunctionDefinition<P, R>): this;
  registerHostFunction<const P extends readonly ValueType[], const R extends ReturnType>(
    name: string,
    params: P,
    returns: R,
    impl: HostFunctionImpl<P, R>,
  ): this;
  registerHostFunction(...args: HostFunctionArgs): this {
    this.refuseIfClosed("register a host function");
    const { name, params, returns, impl } = hostFunctionFrom(args);
    this.parts.hostFunctions.register(name, params, returns, impl);
    this.modified = true; // a new snapshot must record the new set
    this.coveredSnapshot = undefined;
    return this;
  }

  /** Host functions registered now, as signatures. */
  get hostFunctions(): string[] {
    return this.parts.hostFunctions.signatures();
  }

  /** Changes which guest log records are sent; the guest checks before every record. */
  setMaxGuestLogLevel(level: LogLevel): void {
    this.refuseIfClosed("set the guest log level");
    this.maxLogLevel = parseLogLevel(level, "level");
    this.writeLogLevel();
    this.modified = true; // a new snapshot must record the new level
  }

  get maxGuestLogLevel(): LogLevel {
    return this.maxLogLevel;
  }

  /**
   * Stops the call in progress (from a host function, a timer, or an AbortSignal);
   * it rejects with CancelledError and the sandbox is poisoned. Returns false if no
   * call was running.
   */
  kill(): boolean {
    this.refuseIfClosed("kill", { closingOk: true }); // close() itself kills a running call
    if (this.state !== "busy") return false;
    this.cancelRequested = true;
    this.vm.interrupt();
    this.stopHostWait?.();
    return true;
  }

  /**
   * Frees the VM. Idempotent. A call in progress is killed first; the VM is freed
   * as soon as that call has stopped (it rejects with CancelledError).
   */
  close(): void {
    if (this.state === "closed") return;
    if (this.state === "busy") {
      this.closeWhenIdle = true;
      this.kill();
      return;
    }
    this.state = "closed";
    leaked.unregister(this);
    if (this.stub) void this.stub.close(); // detaches gdb; the server stops
    this.stub = undefined;
    // A deferred restore that never ran is dropped with the VM: it copied nothing.
    this.openReport?.settle(this.vm.restorePending ? 0 : this.vm.flushRestore());
    this.openReport = undefined;
    if (this.base && !this.poisonedBy) {
      // Kept for the next sandbox of this snapshot (src/sandbox/parked-vms.ts), which
      // resets it as fromSnapshot() sets up a new VM. Its memory goes back to the base as
      // restore() puts it back (the pages the guest and the host wrote, O(written)) while
      // no restore is pending; else the whole image is mapped again.
      const base = this.base;
      const restoreBase = this.vm.restorePending ? undefined : (): void => void this.vm.restoreFrom(base.image.view, this.hostWrites.takePages(), base.state.cpu);
      parkVm(base.image, this.vm, this.parts.memory, restoreBase);
    } else {
      this.vm.destroy();
    }
  }

  /**
   * An already-aborted signal cancels the call before it runs (not poisoning); a later
   * abort kills it. For callSync an abort can only come from a host function.
   */
  private watchSignal(name: string, signal: AbortSignal | undefined): (() => void) | undefined {
    if (!signal) return undefined;
    if (signal.aborted) throw new CancelledError(`call to "${name}" was cancelled before it started`, { cause: signal.reason });
    const onAbort = (): void => void this.kill();
    signal.addEventListener("abort", onAbort, { once: true });
    return () => signal.removeEventListener("abort", onAbort);
  }

  /** Checks the open sandbox can take a call and finds the function; `args` has no options. */
  private lookup(name: string, args: readonly unknown[]): GuestFunction {
    if (this.poisonedBy) throw new PoisonedError(`sandbox is poisoned by an earlier ${this.poisonedBy.code}: ${this.poisonedBy.message}`, { cause: this.poisonedBy });
    if (this.state === "busy") throw new SandboxBusyError(`sandbox is already running a call; "${name}" must wait`);
    const fn = this.parts.functions.get(name);
    if (!fn) throw new UnknownFunctionError(name, [...this.parts.functions.keys()]);
    if (args.length !== fn.params.length) {
      throw new ArgumentMismatchError(`${formatSignature(name, fn)} takes ${fn.params.length} arguments, got ${args.length}`);
    }
    return fn;
  }

  private timeoutFor(options: CallOptions | undefined): number | undefined {
    if (options?.timeoutMs !== undefined) return timeout("timeoutMs", options.timeoutMs);
    return this.parts.timeoutMs;
  }

  private cpuTimeFor(options: CallOptions | undefined): number | undefined {
    if (options?.cpuTimeMs !== undefined) return timeout("cpuTimeMs", options.cpuTimeMs);
    return this.parts.cpuTimeMs;
  }

  private enter(): void {
    this.midCall = false;
    this.counter.calls++;
    this.state = "busy";
    this.modified = true;
    this.cancelRequested = false;
    this.vm.clearInterrupt();
  }

  private leave(): void {
    if (this.counter.calls === 1 && this.base) this.recordWorkingSet();
    if (this.state === "busy") this.state = "idle";
    if (this.closeWhenIdle) this.close();
  }

  /** After a snapshot's sandbox's first call: what it touched is the snapshot's working set (a hint; never fails a call). */
  private recordWorkingSet(): void {
    try {
      this.vm.recordWorkingSet?.();
    } catch {
      // a hint: the next new VM simply faults its pages in
    }
  }

  /**
   * Writes the guest as an ELF core file that gdb loads, and a copy of the guest ELF next to
   * it (`<path>.elf`): `gdb <path>.elf <path>`. At any time the sandbox is not running a
   * call; after a fault (before a restore) it shows where the guest faulted.
   */
  coreDump(file: string): { core: string; elf: string } {
    this.refuseIfClosed("write a core dump");
    if (this.state === "busy") throw new SandboxBusyError("a core dump needs the sandbox idle (not inside a call)");
    if (typeof file !== "string" || file === "") throw new InvalidConfigError("coreDump() needs a file path");
    const fault = this.poisonedBy instanceof GuestFaultError ? this.poisonedBy : undefined;
    const signal = fault ? signalForVector(fault.vector) : this.poisonedBy instanceof GuestAbortedError ? SIGABRT : 0;
    return writeCoreDump(file, this.coreSource(), signal, fault);
  }

  private coreSource(): CoreSource {
    return { vm: this.vm, layout: this.parts.layout, guestElf: this.parts.lineage.guestElf };
  }

  /**
   * The guest's memory profile as gzip-compressed pprof (`go tool pprof -http=: profile.pb.gz`):
   * every allocation site of a guest built with profiling on (`make VMLET_PROFILE=1`;
   * docs/debugging.md), with alloc and in-use objects and bytes. Sites counted before a
   * snapshot stay in sandboxes made from it. InvalidConfigError for a guest built without it.
   */
  memoryProfile(): Uint8Array {
    this.refuseIfClosed("read a memory profile");
    if (this.state === "busy") throw new SandboxBusyError("a memory profile needs the sandbox idle (not inside a call)");
    return memoryProfile({ memory: this.vm.memory, guestElf: this.parts.lineage.guestElf });
  }

  /** With coreDumpDir set, a fault or abort leaves a core dump there; the error names it (`coreDump`). */
  private dumpOnFault(error: VmletError): void {
    const dir = this.parts.coreDumpDir;
    if (dir === undefined || !(error instanceof GuestFaultError || error instanceof GuestAbortedError)) return;
    const file = path.join(dir, `vmlet-${this.parts.lineage.id.slice(0, 8)}-${process.pid}-${++coreDumps}.core`);
    try {
      const signal = error instanceof GuestFaultError ? signalForVector(error.vector) : SIGABRT;
      error.coreDump = writeCoreDump(file, this.coreSource(), signal, error instanceof GuestFaultError ? error : undefined).core;
      error.message += ` (core dumped: ${error.coreDump})`;
    } catch (dumpError) {
      error.coreDump = undefined;
      error.message += ` (no core dump: ${(dumpError as Error).message})`;
    }
  }

  /**
   * Starts a GDB remote-protocol server for this sandbox on 127.0.0.1 (docs/debugging.md):
   * `gdb guest.elf -ex 'target remote :PORT'`. While it is attached, calls go through it
   * (async `call()` only: a debugger needs the event loop) and stop at breakpoints, steps,
   * Ctrl-C and faults; call deadlines do not apply. `close()` on the session detaches.
   */
  async debug(options?: DebugOptions): Promise<DebugSession> {
    this.refuseIfClosed("start a debugger");
    if (this.stub) throw new SandboxBusyError("a debugger is already attached to this sandbox");
    // Loaded here, not at `import "vmlet"`: the stub and node:net are for debugging only (issue 17).
    const { GdbStub } = await import("../debug/gdb-stub.js");
    const stub = await GdbStub.listen({ vm: this.vm, system: this.parts.system, markHostWrite: (a, n) => this.hostWrites.mark(a, n) }, options);
    this.stub = stub;
    return {
      port: stub.port,
      whenResumed: () => stub.whenResumed(),
      close: async () => {
        if (this.stub === stub) this.stub = undefined;
        await stub.close();
      },
    };
  }

  /** Classifies an error: poisoning ones mark the sandbox; unknown errors poison too. */
  private fail(error: unknown): unknown {
    if (error instanceof VmletError) {
      this.dumpOnFault(error);
      if (poisons(error.code) || this.midCall) this.poisonedBy = error;
    } else {
      this.poisonedBy = new PoisonedError(`internal error during a call: ${describeThrown(error)}`, { cause: error });
    }
    return error;
  }

  private writeLogLevel(): void {
    this.writeHostU32(this.parts.layout.controlBlock + CB.maxLogLevel, levelNumber(this.maxLogLevel));
  }

  /**
   * The one way this class writes guest memory: the page is marked host-written before the
   * write, so the next restore puts it back whatever happens after. (vm.writeU32 itself
   * orders the write after a pending deferred restore.)
   */
  private writeHostU32(address: number, value: number): void {
    this.hostWrites.mark(address, 4);
    this.vm.writeU32(address, value);
  }

  /**
   * @internal Host-owned fields after the guest state came from a snapshot: log level, new
   * seed, how this host's guests save their FPU state, and (for a snapshot taken where the
   * guest saved it another way) the guest's record of how to reload it (hypervisor/fpu-reload.ts).
   */
  applyHostFields(): void {
    this.refuseIfClosed("write host fields");
    const at = this.parts.layout.controlBlock;
    // Only sandboxes resumed from a snapshot get here, or one whose restore failed (no base: restore it first).
    if (!this.base) {
      if (this.poisonedBy) throw new PoisonedError("cannot write host fields: the sandbox is poisoned; restore() it first", { cause: this.poisonedBy });
      throw new InvalidConfigError("host fields come from a snapshot: this sandbox has none");
    }
    const base = this.baseFacts(this.base);
    // The generation the restored control block holds is the snapshot's: read it there (a deferred restore has not run yet).
    const low = base.view.getUint32(at + CB.rngGeneration, true);
    const high = base.view.getUint32(at + CB.rngGeneration + 4, true);
    this.writeHostU32(at + CB.maxLogLevel, levelNumber(this.maxLogLevel));
    this.writeHostU32(at + CB.fpuXsaveMask, base.xsaveMask);
    this.writeHostU32(at + CB.rngSeed, randomWord());
    this.writeHostU32(at + CB.rngSeed + 4, randomWord());
    // The generation is a u64 in two u32 halves: `>>> 0` wraps the low half on purpose.
    this.writeHostU32(at + CB.rngGeneration, (low + 1) >>> 0);
    this.writeHostU32(at + CB.rngGeneration + 4, low === 0xffffffff ? (high + 1) >>> 0 : high);
    if (base.fixMarkAt !== undefined) this.writeHostU32(base.fixMarkAt, 0);
  }

  /**
   * What applyHostFields() needs of the base, worked out once per base (hypervisor/fpu-reload.ts
   * for the FPU record). The record's address comes from the snapshot's RSP, the guest's
   * choice: a record the host would have to rewrite outside the stack refuses the snapshot.
   */
  private baseFacts(base: Snapshot): BaseFacts {
    if (this.facts?.base !== base) {
      const { vm } = this;
      const image = base.image.view;
      const { fixMarkAt } = fpuResume(image, base.state.cpu, vm.backend.flavour, vm.guestXcr0);
      const rsp = base.state.cpu.gprs[GPR_RSP]!;
      if (fixMarkAt !== undefined && !fpuAreaInStack(rsp, this.parts.layout.stack)) {
        throw new SnapshotInvalidError("cpuState.gprs[rsp]", `0x${rsp.toString(16)}: the FPU record the host must rewrite does not lie inside the guest's stack`);
      }
      this.facts = { base, view: new DataView(image.buffer, image.byteOffset, image.byteLength), xsaveMask: guestXsaveMask(vm.guestXcr0), fixMarkAt };
    }
    return this.facts;
  }

  /**
   * Captures the guest at this call boundary: memory, CPU state, exports and the
   * host-function set. Afterwards this sandbox shares its memory pages with the
   * snapshot (copy-on-write). An unchanged sandbox returns its last snapshot.
   */
  snapshot(): Snapshot {
    this.requireIdle("snapshot");
    if (this.base && !this.modified) return this.base;
    try {
      return this.capture();
    } catch (error) {
      throw this.failMidway("snapshot", error);
    }
  }

  /**
   * snapshot()'s work. The pages copied from guest memory are checked: a snapshot stores
   * vmlet's own supervisor pages (the base's were checked when it was made or loaded).
   */
  private capture(): Snapshot {
    this.settleReport();
    const { vm, memory, layout, system, lineage } = this.parts;
    const written = this.base ? this.hostWrites.drainWith(vm.takeDirtyPages()) : undefined;
    const image = this.base && written ? MemoryImage.captureOver(this.base.image, memory.bytes, written) : MemoryImage.capture(memory.bytes);
    checkCapturedImage(image, layout, written);
    const snapshot = new Snapshot(
      {
        version: SNAPSHOT_STATE_VERSION,
        lineage: lineage.id,
        generation: lineage.generation + 1,
        layout,
        system,
        cpu: vm.getCpuState(),
        guestCpu: guestCpuIdentity(vm.backend.name), // the CPU this sandbox ran on, not the default backend's
        takenBy: vm.backend,
        functions: [...this.parts.functions.values()],
        hostFunctions: this.parts.hostFunctions.list(),
        maxGuestLogLevel: this.maxLogLevel,
        createdAt: new Date(),
      },
      image,
      lineage,
    );
    lineage.generation = snapshot.generation;
    this.rebase(snapshot);
    return snapshot;
  }

  /**
   * Returns the sandbox to the snapshot's state; clears poisoning. Cost ∝ pages written
   * since the last snapshot/restore when `snapshot` is this sandbox's base; otherwise
   * memory is remapped onto the snapshot (O(1), pages fault in as used). A restore that
   * fails once it has begun changing the sandbox poisons it (the next restore remaps all of
   * memory); one refused by its checks changes nothing.
   */
  restore(snapshot: Snapshot, options?: RestoreOptions): RestoreReport {
    this.requireIdle("restore", true);
    if (!(snapshot instanceof Snapshot)) throw new InvalidConfigError("restore() takes a Snapshot");
    if (options !== undefined && (typeof options !== "object" || options === null)) throw new InvalidConfigError("restore() options must be an object");
    const deferred = options?.deferred ?? false;
    if (typeof deferred !== "boolean") throw new InvalidConfigError(`"deferred" must be a boolean, got ${typeof deferred}`);
    this.requireSameLineage(snapshot);
    if (snapshot !== this.coveredSnapshot) {
      requireSuperset(snapshot.state.hostFunctions, this.parts.hostFunctions, "restore()");
      this.coveredSnapshot = snapshot; // the set can only change through registerHostFunction()
    }
    this.baseFacts(snapshot); // refuses a snapshot whose FPU record the host could not fix safely
    try {
      return this.restoreNow(snapshot, deferred);
    } catch (error) {
      throw this.failMidway("restore", error);
    }
  }

  /** restore()'s work, after its checks: everything here changes the sandbox. */
  private restoreNow(snapshot: Snapshot, deferred: boolean): RestoreReport {
    const { vm } = this.parts;
    this.settleReport();
    let report: RestoreReport;
    const remapped = snapshot !== this.base;
    // A fault left the vCPU in ring 0: a poisoned sandbox's system registers are set again.
    // After a remap, not before: the process backend reads its mappings from the page tables
    // in memory, which a failed restore or snapshot may have left half-written.
    if (this.poisonedBy && !remapped) vm.configure(snapshot.state.system);
    if (remapped) {
      this.rebase(snapshot);
      if (this.poisonedBy) vm.configure(snapshot.state.system);
      vm.setCpuState(snapshot.state.cpu);
      report = { pagesCopied: 0, remapped: true };
    } else if (deferred) {
      vm.deferRestore(snapshot.image.view, this.hostWrites.takePages(), snapshot.state.cpu);
      report = this.openReport = new DeferredRestoreReport(() => (this.state === "closed" ? 0 : this.vm.flushRestore()));
    } else {
      report = { pagesCopied: vm.restoreFrom(snapshot.image.view, this.hostWrites.takePages(), snapshot.state.cpu), remapped: false };
    }
    this.applyHostFields();
    this.poisonedBy = undefined;
    this.modified = false;
    this.lastRestore = report;
    return report;
  }

  /**
   * A restore or snapshot (or fromSnapshot's set-up) failed part-way: guest state and the
   * record of written pages are unknown. The sandbox is poisoned by a typed error (calls
   * refuse with POISONED) and forgets its base, so the next restore remaps all of memory
   * and sets the system registers instead of trusting a dirty-page record.
   */
  private failMidway(action: string, error: unknown): VmletError {
    const typed = error instanceof VmletError ? error : new HypervisorError(action, undefined, `internal error: ${describeThrown(error)}`, { cause: error });
    this.poisonedBy = typed;
    this.base = undefined;
    this.facts = undefined;
    this.openReport?.settle(0);
    this.openReport = undefined;
    this.vm.discardRestore(); // a deferred restore queued before the failure is not run
    return typed;
  }

  /** Runs a pending deferred restore and records its count in its report. */
  private settleReport(): void {
    if (!this.openReport) return;
    this.openReport.settle(this.vm.flushRestore());
    this.openReport = undefined;
  }

  /** Memory now derives from `snapshot`: share its pages and start tracking writes from here. */
  private rebase(snapshot: Snapshot): void {
    this.vm.quiesce();
    this.parts.memory.mapImage(snapshot.image);
    this.vm.trackDirtyPages();
    this.vm.takeDirtyPages();
    this.hostWrites.clear();
    this.base = snapshot;
    this.modified = false;
  }

  private requireSameLineage(snapshot: Snapshot): void {
    const mine = this.parts.layout;
    const theirs = snapshot.state.layout;
    if (snapshot.state.lineage !== this.parts.lineage.id) {
      throw new SnapshotMismatchError("the snapshot comes from another guest build (lineage); restore only within one lineage, or use Sandbox.fromSnapshot");
    }
    if (mine.memorySize !== theirs.memorySize || mine.input.address !== theirs.input.address || mine.output.address !== theirs.output.address) {
      throw new SnapshotMismatchError("the snapshot's memory layout differs from this sandbox's");
    }
  }

  /**
   * The one check every public method makes first: a closed sandbox (or one closing once its
   * call ends) throws and touches nothing. Its VM may already serve another sandbox (a parked
   * VM reused by fromSnapshot), so a late write would land in that one's guest.
   */
  private refuseIfClosed(action: string, options: { closingOk?: boolean } = {}): void {
    if (this.state === "closed" || (this.closeWhenIdle && !options.closingOk)) {
      throw new SandboxClosedError(`cannot ${action}: the sandbox is closed`);
    }
  }

  /** Snapshots and restores need a quiet sandbox; a poisoned one may only be restored. */
  private requireIdle(action: string, poisonedOk = false): void {
    this.refuseIfClosed(action);
    if (this.state === "busy") throw new SandboxBusyError(`cannot ${action} while a call is running`);
    if (this.poisonedBy && !poisonedOk) throw new PoisonedError(`cannot ${action} a poisoned sandbox (${this.poisonedBy.code}); restore() it first`, { cause: this.poisonedBy });
  }
}

/** The exit of a finished call: a one-byte `out` to READY. */
function isReady(exit: VmExit): boolean {
  return exit.kind === "io-out" && exit.port === PORT_READY && exit.size === 1;
}

/**
 * One guest call from CALL to RETURN, as a state machine over VM exits. The sync
 * and async drivers in sandbox.ts run the vCPU and host functions; this file
 * decides what each exit means. Nothing here knows which backend runs the guest.
 */
import { AbortCode, HostStatus, MessageKind, PORT_ABORT, PORT_FAULT_BASE, PORT_HOST_CALL, PORT_LOG, PORT_READY, ReturnStatus, FAULT_VECTORS } from "../abi/constants.js";
import type { GuestFunction } from "../abi/function-table.js";
import { readValues, receiveMessage, startMessage, finishMessage, writeMessage, type Buffer, type WritableBuffer } from "../abi/messages.js";
import { formatSignature, tagOf, typeOfTag, type GuestValue, type ReturnType } from "../abi/types.js";
import { readValue, writeValue } from "../abi/values.js";
import {
  BufferTooSmallError, CancelledError, CpuTimeLimitError, GuestAbortedError, GuestProtocolError, HostFunctionError, HostFunctionMissingError,
  HostFunctionSignatureError, HypervisorError, OutOfMemoryError, TimeoutError, VmletError,
} from "../errors/errors.js";
import { describeThrown } from "../errors/describe.js";
import type { VirtualMachine, VmExit } from "../hypervisor/virtual-machine.js";
import type { HostWrites } from "../mem/host-writes.js";
import type { MemoryLayout } from "../mem/layout.js";
import { faultError, tripleFaultError } from "./faults.js";
import type { HostFunction, HostFunctionRegistry } from "./host-functions.js";
import { levelName, type GuestLogger } from "./logging.js";
import { nowMs } from "./clock.js";

/** What the sandbox lends a call. */
export interface CallContext {
  readonly vm: VirtualMachine;
  /** The I/O buffers; host writes into them are recorded first (recordHostWrite). */
  readonly input: WritableBuffer;
  readonly output: WritableBuffer;
  readonly hostFunctions: HostFunctionRegistry;
  readonly logger: GuestLogger;
  /** Set by kill() or an AbortSignal while the call runs. */
  readonly cancelled: () => boolean;
}

export type Step =
  | { readonly kind: "resume" }
  | { readonly kind: "done"; readonly value: GuestValue | undefined }
  | { readonly kind: "host-call"; readonly fn: HostFunction; readonly args: GuestValue[] };

/** The ports a guest leaves by at a protocol exit (the fault ports are the stubs' own). */
const PROTOCOL_PORTS: readonly number[] = [PORT_READY, PORT_HOST_CALL, PORT_LOG, PORT_ABORT];

/** Interrupts land within a timer tick of the deadline; this much early still counts as expired. */
const DEADLINE_SLACK_MS = 1;
/** CPU time this close to the limit counts as used up: a shorter run would cost more in exits than it could give. */
const CPU_SLACK_NS = 50_000;

export class CallSession {
  private pendingError: VmletError | undefined;
  private readonly deadline: number | undefined;
  /** The VM's CPU-time count when the call started (undefined without a CPU-time limit). */
  private readonly cpuAtStart: number | undefined;
  /** Host functions this call invoked, for sb.stats(). */
  hostCalls = 0;

  constructor(
    private readonly ctx: CallContext,
    private readonly name: string,
    private readonly returns: ReturnType,
    private readonly timeoutMs: number | undefined,
    private readonly cpuTimeMs?: number,
  ) {
    this.deadline = timeoutMs === undefined ? undefined : nowMs() + timeoutMs;
    this.cpuAtStart = cpuTimeMs === undefined ? undefined : ctx.vm.cpuTimeNs();
  }

  /**
   * Writes the CALL message for `fn` into the input buffer. Each range is recorded before
   * it is written (the buffer's recordWrite), so a call that fails half-way through its
   * arguments leaves nothing the next restore misses.
   */
  static writeCall(ctx: CallContext, fn: GuestFunction, args: readonly unknown[]): void {
    const describe = (i: number): string => `argument ${i + 1} of ${formatSignature(fn.name, fn)}`;
    writeMessage(ctx.input, MessageKind.Call, fn.index, 0, fn.params, args, describe);
  }

  /** Milliseconds until the deadline, or undefined without one. */
  msLeft(): number | undefined {
    return this.deadline === undefined ? undefined : Math.max(0, this.deadline - nowMs());
  }

  timeoutError(): TimeoutError {
    return new TimeoutError(this.timeoutMs!);
  }

  /**
   * Nanoseconds left for the next run (0 = no limit); throws once the call is cancelled,
   * late or out of CPU time. A run's wall-clock limit is at most the CPU time left: the guest
   * cannot use more CPU than wall-clock time, so the CPU check comes no later than needed.
   */
  nextRunTimeoutNs(): number {
    if (this.ctx.cancelled()) throw new CancelledError(`call to "${this.name}" was cancelled`);
    let limitNs = Infinity;
    if (this.deadline !== undefined) {
      const left = this.deadline - nowMs();
      if (left <= 0) throw new TimeoutError(this.timeoutMs!);
      limitNs = left * 1e6;
    }
    const cpuLeft = this.cpuLeftNs();
    if (cpuLeft !== undefined) {
      if (cpuLeft <= CPU_SLACK_NS) throw new CpuTimeLimitError(this.cpuTimeMs!);
      limitNs = Math.min(limitNs, cpuLeft);
    }
    return limitNs === Infinity ? 0 : Math.max(1, Math.round(limitNs));
  }

  /** CPU time the call may still use, ns; undefined without a limit. */
  private cpuLeftNs(): number | undefined {
    if (this.cpuAtStart === undefined) return undefined;
    return this.cpuTimeMs! * 1e6 - (this.ctx.vm.cpuTimeNs() - this.cpuAtStart);
  }

  onExit(exit: VmExit): Step {
    switch (exit.kind) {
      case "io-out":
        return this.onPort(exit.port, exit.size);
      case "interrupted":
        return this.onInterrupted();
      case "shutdown":
        throw tripleFaultError(this.ctx.vm.faultRegisters());
      case "internal-error":
        throw new HypervisorError("KVM_RUN", undefined, `internal error (suberror ${exit.suberror}) while running "${this.name}"`);
      case "error":
        if (exit.operation === "timer_create") {
          throw new HypervisorError("timer_create", `errno ${exit.errno}`, `could not arm the deadline timer for "${this.name}" (errno ${exit.errno}; is RLIMIT_SIGPENDING, \`ulimit -i\`, used up?): the guest did not run`);
        }
        if (exit.operation) throw new HypervisorError(exit.operation, `errno ${exit.errno}`, `the deferred restore failed (errno ${exit.errno}) before "${this.name}" ran`);
        throw new HypervisorError("KVM_RUN", `errno ${exit.errno}`, `the vCPU could not run (errno ${exit.errno}) during "${this.name}"`);
      case "lost":
        throw new HypervisorError("process backend", undefined, `${exit.reason} during "${this.name}"`);
      case "fail-entry":
        throw new HypervisorError("KVM_RUN", undefined, `vCPU entry failed (reason 0x${exit.reason.toString(16)})`);
      default:
        throw new GuestProtocolError(`guest caused an unexpected ${exit.kind} exit during "${this.name}"`);
    }
  }

  hostReturned(fn: HostFunction, result: unknown): void {
    try {
      const c = startMessage(this.ctx.output, MessageKind.HostReturn, HostStatus.Ok, 0);
      if (fn.returns !== "void") writeValue(c, fn.returns, result, () => `result of host function "${fn.name}"`);
      finishMessage(this.ctx.output, c, fn.returns === "void" ? 0 : 1);
    } catch (error) {
      this.hostThrew(fn, error);
    }
  }

  hostThrew(fn: HostFunction, error: unknown): void {
    this.failHostCall(HostStatus.Threw, new HostFunctionError(fn.name, error));
  }

  private onPort(port: number, size: number): Step {
    // The guest leaves only by a one-byte `out` (docs/abi.md); a wide one is no protocol exit.
    if (size !== 1 && PROTOCOL_PORTS.includes(port)) throw new GuestProtocolError(`guest wrote ${size} bytes to port 0x${port.toString(16)}; vmlet's exits are one-byte outs`);
    switch (port) {
      case PORT_READY:
        return { kind: "done", value: this.readReturn() };
      case PORT_HOST_CALL:
        return this.readHostCall();
      case PORT_LOG:
        this.readLog();
        return { kind: "resume" };
      case PORT_ABORT:
        throw this.readAbort();
    }
    if (port >= PORT_FAULT_BASE && port < PORT_FAULT_BASE + FAULT_VECTORS) {
      throw faultError(port - PORT_FAULT_BASE, this.ctx.vm.memory, this.ctx.vm.faultRegisters());
    }
    throw new GuestProtocolError(`guest wrote to unknown port 0x${port.toString(16)}`);
  }

  private onInterrupted(): Step {
    if (this.ctx.cancelled()) throw new CancelledError(`call to "${this.name}" was cancelled`);
    if (this.deadline !== undefined && nowMs() >= this.deadline - DEADLINE_SLACK_MS) throw new TimeoutError(this.timeoutMs!);
    const cpuLeft = this.cpuLeftNs();
    if (cpuLeft !== undefined && cpuLeft <= CPU_SLACK_NS) throw new CpuTimeLimitError(this.cpuTimeMs!);
    return { kind: "resume" }; // a stray signal, or a CPU-time slice that waited more than it ran: carry on
  }

  private readReturn(): GuestValue | undefined {
    return readReturn(this.ctx.output, this.name, this.returns, this.pendingError);
  }

  private readHostCall(): Step {
    // A kill() that landed while this exit was on its way must not start a host function.
    if (this.ctx.cancelled()) throw new CancelledError(`call to "${this.name}" was cancelled`);
    const msg = receiveMessage(this.ctx.output, MessageKind.HostCall, "host call");
    const values = readValues(msg, "host call");
    const head = values.shift();
    if (head?.type !== "string") throw new GuestProtocolError("host call without a function name");
    const name = head.value as string;
    const fn = this.ctx.hostFunctions.get(name);
    if (!fn) {
      this.failHostCall(HostStatus.Missing, new HostFunctionMissingError(name));
      return { kind: "resume" };
    }
    const sent = values.map((v) => v.type);
    const expected = msg.b;
    const wantReturn = fn.returns;
    if (sent.length !== fn.params.length || sent.some((t, i) => t !== fn.params[i]) || expected !== tagOf(wantReturn)) {
      this.failHostCall(
        HostStatus.Signature,
        new HostFunctionSignatureError(
          `guest called ${formatSignature(name, { params: sent, returns: typeOfTag(expected) ?? "void" })} but the host registered ${formatSignature(name, fn)}`,
        ),
      );
      return { kind: "resume" };
    }
    this.hostCalls++;
    return { kind: "host-call", fn, args: values.map((v) => v.value) };
  }

  /** Tells the guest the host call failed; the caller gets `error` once the guest returns. */
  private failHostCall(status: HostStatus, error: VmletError): void {
    this.pendingError ??= error;
    writeMessage(this.ctx.output, MessageKind.HostReturn, status, 0, ["string"], [cString(truncate(error.message))], () => "host error text");
  }

  private readLog(): void {
    const msg = receiveMessage(this.ctx.output, MessageKind.Log, "log record");
    const [message, file, line] = readValues(msg, "log record");
    const level = levelName(msg.b);
    if (!level || message?.type !== "string") throw new GuestProtocolError(`malformed log record (level ${msg.b})`);
    try {
      this.ctx.logger({
        level,
        message: message.value as string,
        file: file?.type === "string" ? (file.value as string) : "",
        line: line?.type === "u32" ? (line.value as number) : 0,
      });
    } catch (error) {
      // The guest stopped cleanly at a log exit; a broken logger must not poison it.
      process.emitWarning(`vmlet guest logger threw: ${describeThrown(error)}`, "VmletWarning");
    }
  }

  private readAbort(): VmletError {
    let message = "(malformed abort record)";
    let file = "";
    let line = 0;
    let code: number = AbortCode.Panic;
    try {
      const msg = receiveMessage(this.ctx.output, MessageKind.Abort, "abort record");
      const [m, f, l] = readValues(msg, "abort record");
      code = msg.b;
      if (m?.type === "string") message = m.value as string;
      if (f?.type === "string") file = f.value as string;
      if (l?.type === "u32") line = l.value as number;
    } catch {
      // A garbled record still means the guest aborted; report what is known.
    }
    if (code === AbortCode.OutOfMemory) return new OutOfMemoryError(`guest ran out of memory: ${message} (${file}:${line})`);
    if (code === AbortCode.Protocol) return new GuestProtocolError(`guest SDK rejected a message: ${message}`);
    return new GuestAbortedError(message, file, line);
  }
}

/**
 * Reads the RETURN message of a finished call. A failed status wins; then an error
 * recorded during the call (a host function that threw); then the result, which must
 * have the declared type.
 */
export function readReturn(output: Buffer, name: string, returns: ReturnType, pendingError: VmletError | undefined): GuestValue | undefined {
  const what = `result of "${name}"`;
  const msg = receiveMessage(output, MessageKind.Return, what);
  if (msg.a !== ReturnStatus.Ok) {
    const detail = msg.count > 0 ? readValue(msg.cursor, what) : undefined;
    const text = detail?.type === "string" ? String(detail.value) : "no detail";
    if (msg.a === ReturnStatus.ResultTooLarge) throw new BufferTooSmallError(`${what} does not fit the output buffer (raise outputSize)`);
    throw new GuestProtocolError(`guest rejected the call to "${name}" (status ${msg.a}: ${text})`);
  }
  if (pendingError) throw pendingError;
  const expected = returns === "void" ? 0 : 1;
  if (msg.count !== expected) throw new GuestProtocolError(`"${name}" returns ${returns} but the guest sent ${msg.count} values`);
  if (returns === "void") return undefined;
  const result = readValue(msg.cursor, what);
  if (result.type !== returns) throw new GuestProtocolError(`"${name}" should return ${returns}, the guest sent ${result.type}`);
  return result.value;
}

/** The context for calls into `vm`, whose I/O buffers lie where `layout` says. */
export function callContext(
  vm: VirtualMachine,
  layout: Pick<MemoryLayout, "input" | "output">,
  hostFunctions: HostFunctionRegistry,
  hostWrites: HostWrites,
  logger: GuestLogger,
  cancelled: () => boolean,
): CallContext {
  const memory = vm.memory;
  const view = new DataView(memory.buffer, memory.byteOffset, memory.byteLength);
  const recordWrite = recordHostWrite(vm, hostWrites);
  const buffer = (b: { address: number; size: number }): WritableBuffer => ({ bytes: memory, view, address: b.address, size: b.size, recordWrite });
  return { vm, input: buffer(layout.input), output: buffer(layout.output), hostFunctions, logger, cancelled };
}

/**
 * What must happen before the host writes guest memory: a pending deferred restore first
 * makes those pages the snapshot's (so it can skip them), and the pages are marked
 * host-written so the next restore puts them back. The backend's dirty log sees only the
 * guest's own writes.
 */
export function recordHostWrite(vm: VirtualMachine, hostWrites: HostWrites): (address: number, length: number) => void {
  return (address, length) => {
    vm.beforeHostWrite(address, length);
    hostWrites.mark(address, length);
  };
}

/** Drives a synchronous call from `exit` until the guest returns: host calls, logs, stray signals. */
export function finishSync(
  vm: VirtualMachine,
  session: CallSession,
  exit: VmExit,
  run: (timeoutNs: number) => VmExit = (timeoutNs) => vm.run(timeoutNs),
): GuestValue | undefined {
  for (;;) {
    const step = session.onExit(exit);
    if (step.kind === "done") return step.value;
    if (step.kind === "host-call") invokeHostSync(session, step);
    exit = run(session.nextRunTimeoutNs());
  }
}

/** Runs a host function for a synchronous call: a returned Promise is an error there. */
export function invokeHostSync(session: CallSession, step: Extract<Step, { kind: "host-call" }>): void {
  try {
    const result = (step.fn.impl as (...a: GuestValue[]) => unknown)(...step.args);
    if (isPromiseLike(result)) {
      void Promise.resolve(result).catch(() => undefined); // nobody will await it
      throw new TypeError(`host function "${step.fn.name}" returned a Promise; async host functions need call(), not callSync() or guest start-up`);
    }
    session.hostReturned(step.fn, result);
  } catch (error) {
    session.hostThrew(step.fn, error);
  }
}

export function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function";
}

/** The text with NULs shown as `\0`: error messages quote guest and host strings, and a C string ends at a NUL. */
function cString(text: string): string {
  return text.replaceAll("\0", "\\0");
}

function truncate(text: string): string {
  return text.length > 1000 ? `${text.slice(0, 1000)}…` : text;
}

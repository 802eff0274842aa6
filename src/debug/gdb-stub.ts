/**
 * A GDB remote-serial-protocol server for one sandbox (`sb.debug()`), on 127.0.0.1.
 *
 * The guest runs only inside calls, so the stub works with the sandbox's async call loop:
 * while it is attached, `call()` runs the guest through `run()` here, which hands every
 * debug event to gdb and waits for gdb to resume — a breakpoint (an int3 the stub wrote
 * into guest code), a single step (the trap flag), an interrupt (Ctrl-C in gdb), or a
 * fault (reported as the signal Linux would give; when gdb resumes, the call fails with
 * the fault as usual). Only this sandbox stops: the event loop and other sandboxes keep
 * running. Between calls gdb sees the guest where its last call left it.
 *
 * Breakpoint bytes are host writes into guest memory, recorded like every host write, so
 * a restore puts the original code back (and the stub forgets those breakpoints).
 */
import net from "node:net";
import { PORT_FAULT_BASE } from "../abi/constants.js";
import type { CpuState, SystemSetup, VirtualMachine, VmExit } from "../hypervisor/virtual-machine.js";
import { signalForVector } from "./core-dump.js";
import { InvalidConfigError } from "../errors/errors.js";
import { frame, fromHex, PacketReader, toHex } from "./gdb-packets.js";
import { readAllRegisters, readRegister, writeAllRegisters, writeRegister } from "./gdb-registers.js";
import { guestStateAt } from "./guest-state.js";

const INT3 = 0xcc;
const TRAP_FLAG = 0x100n;
const SIGINT = 2, SIGTRAP = 5;
const BP_VECTOR = 3, DB_VECTOR = 1;

export interface DebugTarget {
  readonly vm: VirtualMachine;
  readonly system: SystemSetup;
  /** Records a host write into guest memory (so a restore reverts it). */
  markHostWrite(address: number, length: number): void;
}

export interface DebugOptions {
  /** TCP port on 127.0.0.1; default VMLET_GDB_PORT, else 0 (a free one). */
  readonly port?: number;
}

/** The port to listen on: the option, else VMLET_GDB_PORT, else any free one. */
function portFor(options: DebugOptions): number {
  const value = options.port ?? (process.env.VMLET_GDB_PORT ? Number(process.env.VMLET_GDB_PORT) : 0);
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    throw new InvalidConfigError(`the debugger port must be an integer from 0 to 65535 (option port or VMLET_GDB_PORT; got ${String(options.port ?? process.env.VMLET_GDB_PORT)})`);
  }
  return value;
}

type Resume = "continue" | "step" | "detach";
interface Stop {
  readonly signal: number;
  /** The guest's state at the stop; gdb may change it before it resumes. */
  state: CpuState;
  /** A fault: after gdb resumes, the call fails with it. */
  readonly fault: boolean;
}

export class GdbStub {
  private readonly server: net.Server;
  private socket: net.Socket | undefined;
  private reader = new PacketReader();
  /** Inserted breakpoints: address -> the byte the int3 replaced. */
  private readonly breakpoints = new Map<number, number>();
  private stop: Stop | undefined;
  private resume: ((how: Resume) => void) | undefined;
  /** gdb sent c or s and waits for a stop reply. */
  private gdbWaits = false;
  private pendingStep: Resume | undefined;
  private interruptRequested = false;
  /** A breakpoint lifted to step over it, put back at the next stop. */
  private liftedBreakpoint: number | undefined;
  private closed = false;
  private readonly continuedListeners: Array<() => void> = [];

  private constructor(private readonly target: DebugTarget, server: net.Server) {
    this.server = server;
    server.on("connection", (socket) => this.accept(socket));
  }

  static async listen(target: DebugTarget, options: DebugOptions = {}): Promise<GdbStub> {
    const server = net.createServer();
    const stub = new GdbStub(target, server);
    const port = portFor(options);
    await new Promise<void>((resolve, reject) => {
      server.once("error", (error) => reject(new InvalidConfigError(`cannot listen for gdb on 127.0.0.1:${port}: ${error.message}`, { cause: error })));
      server.listen(port, "127.0.0.1", () => resolve());
    });
    server.unref(); // a debug server does not keep Node alive by itself
    return stub;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Resolves when gdb next resumes the guest (c or s): when a call may start and stop at its breakpoints. */
  whenResumed(): Promise<void> {
    return new Promise((resolve) => this.continuedListeners.push(resolve));
  }

  /** Detaches gdb (breakpoints removed, a stopped guest resumed) and stops listening. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.detach();
    this.socket?.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /**
   * One run of an async call while the stub is attached: the first exit that is not a
   * debug event. Call deadlines do not apply while a debugger is attached.
   */
  async run(timeoutNs: number): Promise<VmExit> {
    for (;;) {
      const exit = await this.target.vm.runAsync(this.closed ? timeoutNs : 0);
      const stop = this.classify(exit);
      if (!stop) return exit;
      if (stop === "carry-on") continue;
      const how = await this.waitForGdb(stop);
      if (stop.fault) return exit;
      this.prepareResume(stop.state, how);
    }
  }

  /** A debug stop to show gdb, "carry-on" for a step gdb did not ask for, or undefined for an exit the call handles. */
  private classify(exit: VmExit): Stop | "carry-on" | undefined {
    if (this.closed) return undefined;
    if (exit.kind === "interrupted" && this.interruptRequested) {
      this.interruptRequested = false;
      return { signal: SIGINT, state: guestStateAt(this.target.vm), fault: false };
    }
    if (exit.kind !== "io-out" || exit.port < PORT_FAULT_BASE || exit.port >= PORT_FAULT_BASE + 32) return undefined;
    const vector = exit.port - PORT_FAULT_BASE;
    const state = guestStateAt(this.target.vm, vector);
    this.putBackLiftedBreakpoint();
    if (vector === BP_VECTOR && this.breakpoints.has(Number(state.rip) - 1)) {
      return { signal: SIGTRAP, state: { ...state, rip: state.rip - 1n }, fault: false };
    }
    if (vector === DB_VECTOR && this.pendingStep !== undefined) {
      const how = this.pendingStep;
      this.pendingStep = undefined;
      const stepped = { ...state, rflags: state.rflags & ~TRAP_FLAG };
      if (how === "continue") {
        this.prepareResume(stepped, "continue"); // stepped over a breakpoint: carry on without telling gdb
        return "carry-on";
      }
      return { signal: SIGTRAP, state: stepped, fault: false };
    }
    return { signal: signalForVector(vector), state, fault: true };
  }

  /** Tells gdb where the guest stopped and waits until it resumes it. */
  private async waitForGdb(stop: Stop): Promise<Resume> {
    if (!this.socket) return "continue";
    this.stop = stop;
    if (this.gdbWaits) this.send(stopReply(stop.signal));
    this.gdbWaits = false;
    const how = await new Promise<Resume>((resolve) => (this.resume = resolve));
    this.resume = undefined;
    this.stop = undefined;
    return how;
  }

  /** Sets the state to resume from: back to the guest's own mode (configure), the trap flag for a step, a lifted breakpoint. */
  private prepareResume(state: CpuState, how: Resume): void {
    const vm = this.target.vm;
    let next = state;
    const address = Number(state.rip);
    if (how !== "detach" && this.breakpoints.has(address)) {
      this.writeByte(address, this.breakpoints.get(address)!); // lift it for one instruction
      this.liftedBreakpoint = address;
      this.pendingStep = how;
      next = { ...state, rflags: state.rflags | TRAP_FLAG };
    } else if (how === "step") {
      this.pendingStep = "step";
      next = { ...state, rflags: state.rflags | TRAP_FLAG };
    }
    vm.configure(this.target.system); // a fault or trap left a VM's vCPU in ring 0
    vm.setCpuState(next);
  }

  private putBackLiftedBreakpoint(): void {
    if (this.liftedBreakpoint === undefined) return;
    if (this.breakpoints.has(this.liftedBreakpoint)) this.writeByte(this.liftedBreakpoint, INT3);
    this.liftedBreakpoint = undefined;
  }

  private accept(socket: net.Socket): void {
    if (this.socket || this.closed) {
      socket.destroy(); // one debugger at a time
      return;
    }
    this.socket = socket;
    this.reader = new PacketReader();
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => this.receive(chunk));
    socket.on("close", () => {
      if (this.socket === socket) this.socket = undefined;
      this.detach();
    });
    socket.on("error", () => socket.destroy());
  }

  private receive(chunk: string): void {
    const { incoming, nacks } = this.reader.push(chunk);
    for (let i = 0; i < nacks; i++) this.socket?.write("-");
    for (const item of incoming) {
      if (item.kind === "interrupt") {
        this.interrupt();
        continue;
      }
      this.socket?.write("+");
      const reply = this.handle(item.data);
      if (reply !== undefined) this.send(reply);
    }
  }

  private send(data: string): void {
    this.socket?.write(frame(data), "latin1");
  }

  private interrupt(): void {
    if (this.stop) return;
    if (!this.gdbWaits) return; // the guest is not running on gdb's behalf
    this.interruptRequested = true;
    this.target.vm.interrupt();
  }

  /** A packet's reply, or undefined when the reply comes later (a stop after c or s). */
  private handle(packet: string): string | undefined {
    const [head, rest] = [packet[0], packet.slice(1)];
    switch (head) {
      case "?": return stopReply(this.stop?.signal ?? SIGTRAP);
      case "g": return readAllRegisters(this.currentState());
      case "G": return this.setState(writeAllRegisters(this.currentState(), rest));
      case "p": return readRegister(this.currentState(), Number.parseInt(rest, 16)) ?? "E01";
      case "P": {
        const [n, value] = rest.split("=");
        return this.setState(writeRegister(this.currentState(), Number.parseInt(n ?? "", 16), value ?? ""));
      }
      case "m": return this.readMemory(rest);
      case "M": return this.writeMemory(rest);
      case "Z": return this.setBreakpoint(rest, true);
      case "z": return this.setBreakpoint(rest, false);
      case "c": return this.resumeGuest("continue");
      case "s": return this.resumeGuest("step");
      case "D":
        this.detach();
        return "OK";
      case "k":
        this.detach();
        this.socket?.end();
        return undefined;
      case "H": return "OK";
      case "T": return "OK";
      case "q": return query(packet);
      default: return ""; // unsupported: gdb falls back (vCont → c/s, X → M)
    }
  }

  /** The state gdb looks at: the stop's, or the guest's between calls. */
  private currentState(): CpuState {
    if (this.stop) return this.stop.state;
    if (this.target.vm.restorePending) this.target.vm.flushRestore();
    return guestStateAt(this.target.vm);
  }

  private setState(next: CpuState | undefined): string {
    if (!next) return "E01";
    if (this.stop) this.stop.state = next;
    else this.target.vm.setCpuState(next);
    return "OK";
  }

  private readMemory(args: string): string {
    const range = this.range(args);
    if (!range) return "E01";
    return toHex(this.target.vm.memory.subarray(range.address, range.address + range.length));
  }

  private writeMemory(args: string): string {
    const [where, hex] = args.split(":");
    const range = this.range(where ?? "");
    const bytes = fromHex(hex ?? "");
    if (!range || !bytes || bytes.length !== range.length) return "E01";
    this.target.markHostWrite(range.address, range.length);
    this.target.vm.memory.set(bytes, range.address);
    return "OK";
  }

  /** "addr,length" inside guest memory. */
  private range(args: string): { address: number; length: number } | undefined {
    const [a, l] = args.split(",");
    const address = Number.parseInt(a ?? "", 16), length = Number.parseInt(l ?? "", 16);
    if (!Number.isSafeInteger(address) || !Number.isSafeInteger(length) || address < 0 || length < 0 || length > 0x10000) return undefined;
    if (address + length > this.target.vm.memory.byteLength) return undefined;
    if (this.target.vm.restorePending) this.target.vm.flushRestore();
    return { address, length };
  }

  /** Z0/z0: software breakpoints only (int3 in guest code). */
  private setBreakpoint(args: string, insert: boolean): string {
    const [type, a] = args.split(",");
    if (type !== "0") return "";
    const address = Number.parseInt(a ?? "", 16);
    if (!Number.isSafeInteger(address) || address < 0 || address >= this.target.vm.memory.byteLength) return "E01";
    if (insert && !this.breakpoints.has(address)) {
      this.breakpoints.set(address, this.target.vm.memory[address]!);
      if (this.liftedBreakpoint !== address) this.writeByte(address, INT3);
    } else if (!insert && this.breakpoints.has(address)) {
      if (this.liftedBreakpoint !== address) this.writeByte(address, this.breakpoints.get(address)!);
      this.breakpoints.delete(address);
    }
    return "OK";
  }

  private resumeGuest(how: Resume): string | undefined {
    this.gdbWaits = true;
    for (const listener of this.continuedListeners.splice(0)) listener();
    this.resume?.(how); // between calls nothing waits: the next call runs until gdb's breakpoints stop it
    return undefined; // the stop reply comes when the guest stops
  }

  /** Breakpoints out of guest code, a stopped guest resumed; the server keeps listening. */
  private detach(): void {
    for (const [address, original] of this.breakpoints) if (this.liftedBreakpoint !== address) this.writeByte(address, original);
    this.breakpoints.clear();
    this.liftedBreakpoint = undefined;
    this.pendingStep = undefined;
    this.gdbWaits = false;
    this.resume?.("detach");
  }

  private writeByte(address: number, value: number): void {
    if (this.target.vm.restorePending) this.target.vm.flushRestore();
    this.target.markHostWrite(address, 1);
    this.target.vm.memory[address] = value;
  }
}

function stopReply(signal: number): string {
  return `T${signal.toString(16).padStart(2, "0")}thread:01;`;
}

/** The general queries gdb sends while it connects. */
function query(packet: string): string {
  if (packet.startsWith("qSupported")) return "PacketSize=3fff";
  if (packet === "qAttached") return "1";
  if (packet === "qC") return "QC01";
  if (packet === "qfThreadInfo") return "m01";
  if (packet === "qsThreadInfo") return "l";
  if (packet === "qOffsets") return "Text=0;Data=0;Bss=0";
  if (packet.startsWith("qSymbol")) return "OK";
  return "";
}

/** A KVM vCPU file descriptor: run, exits, and register state as typed buffers. */
import type { VmExit } from "../virtual-machine.js";
import { native } from "../../native/errors.js";
import type { NativeVcpu } from "../../native/addon.js";
import { EVENTS_SIZE, REGS_SIZE, SREGS_SIZE, XSAVE_SIZE } from "./structs.js";
import type { KvmVm } from "./vm.js";
import type { DirtyTracker } from "./dirty-tracker.js";

/** KVM_EXIT_* reasons vmlet distinguishes. */
const EXIT_IO = 2;
const EXIT_HLT = 5;
const EXIT_MMIO = 6;
const EXIT_SHUTDOWN = 8;
const EXIT_FAIL_ENTRY = 9;
const EXIT_INTR = 10;
const EXIT_INTERNAL_ERROR = 17;
const IO_OUT = 1;
/** run() result flag for a one-byte `out` (native/kvm_vcpu.c RUN_OUT_BYTE); low 16 bits = port. */
const RUN_OUT_BYTE = 0x10000;
/** One shared exit object per port: the call path allocates nothing per exit. */
const outExits: VmExit[] = [];
function outExit(port: number): VmExit {
  return (outExits[port] ??= Object.freeze({ kind: "io-out", port, size: 1, value: 0 }));
}
const EINTR = 4;

/** run() result when a restore deferred into the run failed: RUN_RESTORE_FAILED - errno (native/kvm_vcpu.h). */
const RUN_RESTORE_FAILED = -0x20000;
/** run() result when the deadline timer could not be armed, before the guest ran: RUN_TIMER_FAILED - errno (native/kvm_vcpu.h). */
const RUN_TIMER_FAILED = -0x10000;
/** Which call of a deferred restore failed (ctl[CTL_ERROP], native/kvm_vcpu.h). */
const RESTORE_OPS = ["restore", "KVM_GET_DIRTY_LOG", "KVM_CLEAR_DIRTY_LOG", "KVM_SET_REGS", "KVM_SET_XSAVE"];

/** Slots of the exit record filled by native/kvm_vcpu.c. */
const enum Slot { Reason, Errno, A, B, C, D, E }

export class KvmVcpu {
  private readonly handle: NativeVcpu;
  private readonly exitRecord = new BigUint64Array(8);
  private pending: ((code: number) => void) | undefined;
  private threadStarted = false;

  constructor(vm: KvmVm, id: number) {
    const fd = vm.createVcpuFd(id);
    const { Vcpu } = vm.system.addon;
    this.handle = native("mmap kvm_run", () => new Vcpu(fd, vm.system.vcpuMmapSize, this.exitRecord));
  }

  /** KVM_RUN on this thread. */
  run(timeoutNs: number): VmExit {
    let code: number;
    try {
      code = this.handle.run(timeoutNs);
    } catch (error) {
      return native("KVM_RUN", () => { throw error; });
    }
    return this.decode(code);
  }

  /** KVM_RUN on the vCPU's dedicated thread. */
  runAsync(timeoutNs: number): Promise<VmExit> {
    if (!this.threadStarted) {
      native("pthread_create", () => this.handle.startThread((code) => this.settle(code)));
      this.threadStarted = true;
    }
    return new Promise((resolve) => {
      this.pending = (code) => resolve(this.decode(code));
      this.handle.runAsync(timeoutNs);
    });
  }

  interrupt(): void {
    this.handle.interrupt();
  }

  clearInterrupt(): void {
    this.handle.clearInterrupt();
  }

  /** CPU time of the threads inside KVM_RUN since the first call (CLOCK_THREAD_CPUTIME_ID), ns. */
  cpuTimeNs(): number {
    return this.handle.cpuTimeNs();
  }

  /** KVM_GET_REGS */
  getRegs(): BigUint64Array {
    const regs = new BigUint64Array(REGS_SIZE / 8);
    native("KVM_GET_REGS", () => this.handle.getRegs(new Uint8Array(regs.buffer)));
    return regs;
  }

  /** KVM_SET_REGS */
  setRegs(regs: BigUint64Array): void {
    native("KVM_SET_REGS", () => this.handle.setRegs(new Uint8Array(regs.buffer, regs.byteOffset, REGS_SIZE)));
  }

  /** KVM_GET_SREGS */
  getSregs(): DataView {
    const buf = new Uint8Array(SREGS_SIZE);
    native("KVM_GET_SREGS", () => this.handle.getSregs(buf));
    return new DataView(buf.buffer);
  }

  /** KVM_SET_SREGS */
  setSregs(sregs: DataView): void {
    native("KVM_SET_SREGS", () => this.handle.setSregs(new Uint8Array(sregs.buffer, sregs.byteOffset, SREGS_SIZE)));
  }

  /** KVM_GET_XSAVE */
  getXsave(): Uint8Array {
    const buf = new Uint8Array(XSAVE_SIZE);
    native("KVM_GET_XSAVE", () => this.handle.getXsave(buf));
    return buf;
  }

  /** KVM_SET_XSAVE */
  setXsave(xsave: Uint8Array): void {
    native("KVM_SET_XSAVE", () => this.handle.setXsave(xsave));
  }

  /** KVM_SET_REGS + KVM_SET_XSAVE */
  setRegsAndXsave(regs: BigUint64Array, xsave: Uint8Array): void {
    native("KVM_SET_REGS", () => this.handle.setRegsXsave(new Uint8Array(regs.buffer, regs.byteOffset, REGS_SIZE), xsave));
  }

  /** Registers the per-vCPU restore buffers (native/vcpu_restore.c restorePlan). */
  restorePlan(vm: KvmVm, dirty: DirtyTracker, memory: Uint8Array, control: Int32Array, hostCapacity: number): void {
    native("restorePlan", () =>
      this.handle.restorePlan(vm.fd, 0, dirty.mode, dirty.bitmap, dirty.previous, dirty.hot, dirty.toClear, memory, control, hostCapacity));
  }

  /** mmap of the vCPU's dirty ring (KVM_DIRTY_LOG_PAGE_OFFSET), `bytes` as the VM enabled it. */
  mapDirtyRing(bytes: number): void {
    native("mmap dirty ring", () => this.handle.mapDirtyRing(bytes));
  }

  /** Registers the snapshot a restore copies from; an empty `xsave` skips KVM_SET_XSAVE (the guest reloads its FPU on resume). */
  restoreSource(image: Uint8Array, regs: BigUint64Array, xsave: Uint8Array): void {
    native("restoreSource", () => this.handle.restoreSource(image, new Uint8Array(regs.buffer, regs.byteOffset, REGS_SIZE), xsave));
  }

  /** The restore the plan describes, now; returns pages copied. */
  restoreNow(): number {
    return native("restore", () => this.handle.restoreNow());
  }

  /** KVM_GET_DIRTY_LOG into the plan's bitmap, hot pages learnt, the others re-protected. */
  takeDirtyLog(): void {
    native("KVM_GET_DIRTY_LOG", () => this.handle.takeDirtyLog());
  }

  /** KVM_SET_VCPU_EVENTS with every pending event cleared. */
  clearEvents(): void {
    native("KVM_SET_VCPU_EVENTS", () => this.handle.setEvents(new Uint8Array(EVENTS_SIZE)));
  }

  /** KVM_SET_CPUID2 */
  setCpuid(entries: Uint8Array, count: number): void {
    native("KVM_SET_CPUID2", () => this.handle.setCpuid(entries, count));
  }

  close(): void {
    this.handle.close();
  }

  /** Set by KvmMachine: which call of a failed deferred restore failed. */
  restoreErrorOp: () => number = () => 0;

  private settle(code: number): void {
    const resolve = this.pending;
    this.pending = undefined;
    resolve?.(code);
  }

  private decode(code: number): VmExit {
    if (code >= RUN_OUT_BYTE) return outExit(code & 0xffff);
    const r = this.exitRecord;
    if (code < 0) {
      if (code <= RUN_RESTORE_FAILED) return { kind: "error", errno: RUN_RESTORE_FAILED - code, operation: RESTORE_OPS[this.restoreErrorOp()] ?? "restore" };
      if (code <= RUN_TIMER_FAILED) return { kind: "error", errno: RUN_TIMER_FAILED - code, operation: "timer_create" };
      if (-code === EINTR) return { kind: "interrupted" };
      return { kind: "error", errno: -code };
    }
    switch (code) {
      case EXIT_IO:
        return Number(r[Slot.A]) === IO_OUT
          ? { kind: "io-out", port: Number(r[Slot.C]), size: Number(r[Slot.B]), value: Number(r[Slot.E]! & 0xffffffffn) }
          : { kind: "io-in", port: Number(r[Slot.C]), size: Number(r[Slot.B]) };
      case EXIT_HLT:
        return { kind: "halt" };
      case EXIT_MMIO:
        return { kind: "mmio", address: r[Slot.C]!, isWrite: r[Slot.A] !== 0n };
      case EXIT_SHUTDOWN:
        return { kind: "shutdown" };
      case EXIT_FAIL_ENTRY:
        return { kind: "fail-entry", reason: r[Slot.A]! };
      case EXIT_INTR:
        return { kind: "interrupted" };
      case EXIT_INTERNAL_ERROR:
        return { kind: "internal-error", suberror: Number(r[Slot.A]) };
      default:
        return { kind: "unknown", reason: code };
    }
  }
}

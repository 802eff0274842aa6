/** The KVM implementation of VirtualMachine: one VM, one vCPU, one memory slot. */
import { HypervisorError } from "../../errors/errors.js";
import type { GuestMemory } from "../../mem/guest-memory.js";
import type { BackendInfo, CpuState, FaultRegisters, SystemSetup, VirtualMachine, VmExit } from "../virtual-machine.js";
import { REGS_RFLAGS, REGS_RIP, SREGS, writeSegment, writeTable, type Segment } from "./structs.js";
import { KvmSystem } from "./system.js";
import { KvmVcpu } from "./vcpu.js";
import { KvmVm, MEM_LOG_DIRTY_PAGES } from "./vm.js";
import { xsaveToLoad } from "../fpu-reload.js";
import { xsaveForHost } from "./xsave-image.js";
import { DirtyMode, DirtyTracker } from "./dirty-tracker.js";

/** struct kvm_regs of each CPU state, built once (states are immutable; restores reuse them). */
const regsCache = new WeakMap<CpuState, BigUint64Array>();
/** Long mode with paging, write-protect, NX; SSE enabled for CPL 3. */
const CR0 = 0x80050033n; // PG | AM | WP | NE | ET | MP | PE
const CR4 = 0x620n; // OSXMMEXCPT | OSFXSR | PAE
const EFER = 0xd00n; // NXE | LMA | LME; no SCE: `syscall` is #UD, never a way into CPL 0
const RFLAGS_IF = 0x202n;
const PAGE = 4096;

/** Slots of the restore control array (native/kvm_vcpu.h CTL_*). */
const enum Ctl { Pending = 0, Copied = 1, HostCount = 2, SkipCount = 3, ErrorOp = 4, PatchCount = 5, RingResets = 6, Header = 8 }
/** Pages JavaScript may copy itself while a restore is deferred; beyond, it is done at once. */
const SKIP_CAPACITY = 64;
/** 32-bit host writes queued behind a deferred restore (native CTL_PATCHES). */
const PATCH_CAPACITY = 8;

export class KvmMachine implements VirtualMachine {
  readonly backend: BackendInfo;
  readonly guestXcr0: number;
  readonly memory: Uint8Array;
  private readonly view: DataView;
  private readonly vm: KvmVm;
  private readonly vcpu: KvmVcpu;
  /** XSAVE components KVM_SET_XSAVE accepts here: snapshots naming others are converted (xsave-image.ts). */
  private readonly xsaveComponents: bigint;
  private lastExitWasIo = false;
  /** Whether kvm_run.immediate_exit may be set (by interrupt() or a deadline timer's signal). */
  private interruptMayBePending = false;
  private destroyed = false;

  private dirtyLogging = false;
  private readonly dirtyTracker: DirtyTracker;
  /** Shared with the vCPU's restore plan: flags, counts, host pages, skip list (native/vcpu_restore.c). */
  private control = new Int32Array(0);
  private hostCapacity = 16;
  /** The snapshot the plan copies from (registered once per image and CPU state). */
  private sourceImage: Uint8Array | undefined;
  private sourceState: CpuState | undefined;
  /** A deferred restore waits for the next run (ctl[Pending] is set). */
  private pending = false;
  /** Pages copied from the image by beforeHostWrite() while a restore is pending (listed in the control array's skip slots). */
  private skippedCount = 0;
  /** FS/GS bases loaded in the vCPU (configure() zeroes them). */
  private segmentBases = { fs: 0n, gs: 0n };
  /** The special registers configure() wrote: what every reload of the segments starts from. */
  private canonicalSregs: DataView | undefined;
  /**
   * Whether the guest has run since the segments were last written: it can move its FS or
   * GS base (wrfsbase where the CPU lets user code, PVM included) or load another selector.
   */
  private segmentsMayHaveMoved = false;

  /** `trackDirtyPages` starts dirty logging with the memory slot, saving a slot update. */
  constructor(private readonly guestMemory: GuestMemory, options: { trackDirtyPages?: boolean } = {}) {
    const system = KvmSystem.open();
    this.backend = system.backend;
    this.guestXcr0 = system.guestXcr0;
    this.xsaveComponents = system.xsaveComponents;
    this.memory = guestMemory.bytes;
    this.view = new DataView(this.memory.buffer, this.memory.byteOffset, this.memory.byteLength);
    this.vm = new KvmVm(system, system.createVm());
    try {
      // Before any vCPU or slot logs dirty pages: a dirty ring if the kernel has one,
      // else a bitmap whose reads leave re-protection to us.
      const ringBytes = this.vm.enableDirtyRing();
      const mode = ringBytes > 0 ? DirtyMode.Ring : this.vm.enableManualDirtyProtect() ? DirtyMode.Manual : DirtyMode.Bitmap;
      this.dirtyTracker = new DirtyTracker(this.memory.byteLength / PAGE, mode);
      this.dirtyLogging = options.trackDirtyPages === true;
      this.vm.setMemoryRegion(0, 0, guestMemory.buffer, this.dirtyLogging ? MEM_LOG_DIRTY_PAGES : 0);
      this.vcpu = new KvmVcpu(this.vm, 0);
      if (ringBytes > 0) this.vcpu.mapDirtyRing(ringBytes);
      this.vcpu.setCpuid(system.supportedCpuid, system.supportedCpuidCount);
      this.vcpu.restoreErrorOp = () => this.control[Ctl.ErrorOp] ?? 0;
      this.registerPlan(this.hostCapacity);
    } catch (error) {
      this.vm.close();
      throw error;
    }
  }

  /** Also what recovers a vCPU a fault left in ring 0: segments reset, pending events cleared. */
  configure(setup: SystemSetup): void {
    if (this.pending) this.flushRestore();
    this.vcpu.clearEvents();
    this.segmentBases = { fs: 0n, gs: 0n };
    const sregs = this.vcpu.getSregs();
    const code: Segment = { base: 0n, limit: 0xffffffff, selector: setup.userCodeSelector, type: 0xb, present: true, dpl: 3, db: false, s: true, l: true, g: true, unusable: false };
    const data: Segment = { ...code, selector: setup.userDataSelector, type: 3, db: true, l: false };
    writeSegment(sregs, SREGS.cs, code);
    for (const seg of [SREGS.ds, SREGS.es, SREGS.fs, SREGS.gs, SREGS.ss]) writeSegment(sregs, seg, data);
    writeSegment(sregs, SREGS.tr, {
      base: BigInt(setup.tss.base), limit: setup.tss.limit, selector: setup.tss.selector,
      type: 11, present: true, dpl: 0, db: false, s: false, l: false, g: false, unusable: false,
    });
    writeSegment(sregs, SREGS.ldt, { ...data, selector: 0, type: 2, present: false, dpl: 0, s: false, unusable: true });
    writeTable(sregs, SREGS.gdt, setup.gdt.base, setup.gdt.limit);
    writeTable(sregs, SREGS.idt, setup.idt.base, setup.idt.limit);
    sregs.setBigUint64(SREGS.cr0, CR0, true);
    sregs.setBigUint64(SREGS.cr3, BigInt(setup.pml4Address), true);
    sregs.setBigUint64(SREGS.cr4, CR4, true);
    sregs.setBigUint64(SREGS.efer, EFER, true);
    this.vcpu.setSregs(sregs);
    this.canonicalSregs = sregs;
    this.segmentsMayHaveMoved = false;
  }

  start(rip: number, rsp: number, fsBase: number): void {
    if (this.pending) this.flushRestore();
    const regs = new BigUint64Array(18);
    regs[6] = BigInt(rsp);
    regs[REGS_RIP] = BigInt(rip);
    regs[REGS_RFLAGS] = RFLAGS_IF;
    this.vcpu.setRegs(regs);
    this.loadSegmentBases(BigInt(fsBase), 0n);
    this.lastExitWasIo = false;
  }

  setCpuState(state: CpuState): void {
    if (this.pending) this.flushRestore();
    // Hardware KVM would still finish the last `out` (advance RIP) on the next KVM_RUN,
    // on top of the RIP set here; PVM has finished it already.
    if (this.backend.flavour === "hardware") this.completePendingIo();
    this.vcpu.setRegsAndXsave(this.regsOf(state), xsaveForHost(state.xsave, this.xsaveComponents));
    this.loadSegmentBases(state.fsBase, state.gsBase);
    this.lastExitWasIo = false;
  }

  /** struct kvm_regs for a state, built once per state (states are immutable; restores reuse them). */
  private regsOf(state: CpuState): BigUint64Array {
    let regs = regsCache.get(state);
    if (!regs) {
      regs = new BigUint64Array(18);
      regs.set(state.gprs);
      regs[REGS_RIP] = state.rip;
      regs[REGS_RFLAGS] = state.rflags | RFLAGS_IF;
      regsCache.set(state, regs);
    }
    return regs;
  }

  /**
   * Every segment register as configure() set it, with these FS and GS bases
   * (KVM_SET_SREGS): whatever selector or base the guest loaded itself is gone. Skipped
   * only when the guest has not run since the last write and the bases are the same.
   */
  private loadSegmentBases(fs: bigint, gs: bigint): void {
    if (!this.segmentsMayHaveMoved && fs === this.segmentBases.fs && gs === this.segmentBases.gs) return;
    const sregs = this.canonicalSregs ? new DataView(this.canonicalSregs.buffer.slice(0)) : this.vcpu.getSregs();
    sregs.setBigUint64(SREGS.fs, fs, true);
    sregs.setBigUint64(SREGS.gs, gs, true);
    this.vcpu.setSregs(sregs);
    this.segmentBases = { fs, gs };
    this.segmentsMayHaveMoved = false;
  }

  getCpuState(): CpuState {
    if (this.pending) this.flushRestore();
    this.completePendingIo();
    const regs = this.vcpu.getRegs();
    const sregs = this.vcpu.getSregs();
    return {
      gprs: regs.slice(0, 16),
      rip: regs[REGS_RIP]!,
      rflags: regs[REGS_RFLAGS]!,
      fsBase: sregs.getBigUint64(SREGS.fs, true),
      gsBase: sregs.getBigUint64(SREGS.gs, true),
      xsave: this.vcpu.getXsave(),
    };
  }

  faultRegisters(): FaultRegisters {
    if (this.pending) this.flushRestore();
    const regs = this.vcpu.getRegs();
    const sregs = this.vcpu.getSregs();
    return { rip: regs[REGS_RIP]!, rsp: regs[6]!, cr2: sregs.getBigUint64(SREGS.cr2, true) };
  }

  run(timeoutNs: number): VmExit {
    if (timeoutNs > 0) this.interruptMayBePending = true;
    this.segmentsMayHaveMoved = true;
    this.pending = false; // a deferred restore runs inside this run
    return this.noteExit(this.vcpu.run(timeoutNs));
  }

  async runAsync(timeoutNs: number): Promise<VmExit> {
    if (timeoutNs > 0) this.interruptMayBePending = true;
    this.segmentsMayHaveMoved = true;
    this.pending = false; // a deferred restore runs inside this run, on the vCPU thread
    return this.noteExit(await this.vcpu.runAsync(timeoutNs));
  }

  interrupt(): void {
    if (this.destroyed) return;
    this.interruptMayBePending = true;
    this.vcpu.interrupt();
  }

  cpuTimeNs(): number {
    return this.vcpu.cpuTimeNs();
  }

  /** Skipped unless an interrupt or a deadline timer could have set immediate_exit: it is a kernel-adjacent call on the hot path. */
  clearInterrupt(): void {
    if (!this.interruptMayBePending) return;
    this.interruptMayBePending = false;
    this.vcpu.clearInterrupt();
  }

  /** The vCPU runs only inside run() and runAsync(): nothing to stop. */
  quiesce(): void {}

  /** KVM dirty-page logging on guest memory (KVM_MEM_LOG_DIRTY_PAGES on its slot). */
  trackDirtyPages(): void {
    if (this.dirtyLogging) return;
    this.vm.setMemoryRegion(0, 0, this.guestMemory.buffer, MEM_LOG_DIRTY_PAGES);
    this.dirtyLogging = true;
  }

  /** KVM_GET_DIRTY_LOG, which also re-arms the log. */
  takeDirtyPages(): BigUint64Array {
    if (this.pending) this.flushRestore();
    if (!this.dirtyLogging) throw new HypervisorError("KVM_GET_DIRTY_LOG", undefined, "dirty logging is not enabled");
    this.vcpu.takeDirtyLog();
    return this.dirtyTracker.bitmap;
  }

  restoreFrom(image: Uint8Array, hostPages: ArrayLike<number>, state: CpuState): number {
    this.prepareRestore(image, hostPages, state);
    return this.vcpu.restoreNow();
  }

  deferRestore(image: Uint8Array, hostPages: ArrayLike<number>, state: CpuState): void {
    this.prepareRestore(image, hostPages, state);
    this.pending = true;
    this.control[Ctl.Pending] = 1;
  }

  /** @internal Tests: how many times the dirty ring re-protected its pages. */
  get dirtyRingResets(): number {
    return this.control[Ctl.RingResets]!;
  }

  get restorePending(): boolean {
    return this.pending;
  }

  flushRestore(): number {
    if (this.pending) {
      this.pending = false;
      this.vcpu.restoreNow();
    }
    return this.control[Ctl.Copied]!;
  }

  beforeHostWrite(address: number, length: number): void {
    if (!this.pending) return;
    const last = Math.floor((address + Math.max(length, 1) - 1) / PAGE);
    const control = this.control, skips = Ctl.Header + this.hostCapacity;
    for (let page = Math.floor(address / PAGE); page <= last; page++) {
      if (this.isSkipped(page)) continue;
      if (this.skippedCount === SKIP_CAPACITY) {
        this.flushRestore(); // pages freshened so far stay skipped; the rest are copied now
        return;
      }
      const at = page * PAGE;
      this.memory.set(this.sourceImage!.subarray(at, at + PAGE), at);
      control[skips + this.skippedCount++] = page;
      control[Ctl.SkipCount] = this.skippedCount;
    }
  }

  private isSkipped(page: number): boolean {
    const control = this.control, skips = Ctl.Header + this.hostCapacity;
    for (let i = 0; i < this.skippedCount; i++) if (control[skips + i] === page) return true;
    return false;
  }

  writeU32(address: number, value: number): void {
    const control = this.control;
    const n = control[Ctl.PatchCount]!;
    if (this.pending && n < PATCH_CAPACITY) {
      const at = Ctl.Header + this.hostCapacity + SKIP_CAPACITY + 2 * n;
      control[at] = address;
      control[at + 1] = value;
      control[Ctl.PatchCount] = n + 1;
      return;
    }
    if (this.pending) this.flushRestore();
    this.view.setUint32(address, value, true);
  }

  /** Everything a restore needs before the native part: at most one pending restore, the source, host pages. */
  private prepareRestore(image: Uint8Array, hostPages: ArrayLike<number>, state: CpuState): void {
    if (this.pending) this.flushRestore();
    if (!this.dirtyLogging) throw new HypervisorError("KVM_GET_DIRTY_LOG", undefined, "dirty logging is not enabled");
    if (this.backend.flavour === "hardware") this.completePendingIo();
    this.loadSegmentBases(state.fsBase, state.gsBase);
    if (image !== this.sourceImage || state !== this.sourceState) {
      this.vcpu.restoreSource(image, this.regsOf(state), xsaveForHost(xsaveToLoad(image, state, this.backend.flavour, this.guestXcr0), this.xsaveComponents));
      this.sourceImage = image;
      this.sourceState = state;
    }
    if (hostPages.length > this.hostCapacity) this.registerPlan(Math.max(hostPages.length, this.hostCapacity * 2));
    const control = this.control;
    for (let i = 0; i < hostPages.length; i++) control[Ctl.Header + i] = hostPages[i]!;
    control[Ctl.HostCount] = hostPages.length;
    control[Ctl.SkipCount] = 0;
    control[Ctl.PatchCount] = 0;
    this.skippedCount = 0;
    this.lastExitWasIo = false;
  }

  /** (Re)registers the restore plan with room for `hostCapacity` host-written pages. */
  private registerPlan(hostCapacity: number): void {
    const control = new Int32Array(Ctl.Header + hostCapacity + SKIP_CAPACITY + 2 * PATCH_CAPACITY);
    control[Ctl.RingResets] = this.control[Ctl.RingResets] ?? 0;
    this.vcpu.restorePlan(this.vm, this.dirtyTracker, this.memory, control, hostCapacity);
    this.control = control;
    this.hostCapacity = hostCapacity;
  }

  discardRestore(): void {
    this.pending = false;
    this.control[Ctl.Pending] = 0;
    this.control[Ctl.SkipCount] = 0;
    this.control[Ctl.PatchCount] = 0;
    this.skippedCount = 0;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.discardRestore(); // a deferred restore that never ran is dropped
    this.vcpu.close();
    this.vm.close();
    // Give the pages back now rather than when the ArrayBuffer is collected: the next
    // VM's huge pages then come from free memory instead of compaction.
    this.guestMemory.release();
  }

  private noteExit(exit: VmExit): VmExit {
    this.lastExitWasIo = exit.kind === "io-out" || exit.kind === "io-in";
    return exit;
  }

  /**
   * After an `out` exit PVM has advanced RIP already, hardware KVM does so on the
   * next KVM_RUN. One run with immediate_exit set makes both agree before state is read.
   */
  private completePendingIo(): void {
    if (!this.lastExitWasIo) return;
    this.vcpu.interrupt();
    this.vcpu.run(0);
    this.vcpu.clearInterrupt();
    this.interruptMayBePending = false;
    this.lastExitWasIo = false;
  }
}

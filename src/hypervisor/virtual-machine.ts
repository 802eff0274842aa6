/**
 * The backend interface. Everything above `hypervisor/` talks to a VirtualMachine
 * and never learns which backend (KVM, or a seccomp-confined child process) runs it.
 */

/** Which backend runs the guest, and its flavour. */
export type BackendInfo =
  /** "pvm": KVM's software-virtualisation variant for nested hosts; "hardware": VT-x/SVM. */
  | { readonly name: "kvm"; readonly flavour: "pvm" | "hardware" }
  /** A child process per sandbox, confined by seccomp (src/hypervisor/process/). */
  | { readonly name: "process"; readonly flavour: "seccomp" };

export type BackendName = BackendInfo["name"];

/** Why the vCPU stopped. */
export type VmExit =
  | { readonly kind: "io-out"; readonly port: number; readonly size: number; readonly value: number }
  | { readonly kind: "io-in"; readonly port: number; readonly size: number }
  | { readonly kind: "mmio"; readonly address: bigint; readonly isWrite: boolean }
  | { readonly kind: "halt" }
  | { readonly kind: "shutdown" }
  | { readonly kind: "interrupted" }
  | { readonly kind: "internal-error"; readonly suberror: number }
  | { readonly kind: "fail-entry"; readonly reason: bigint }
  | { readonly kind: "unknown"; readonly reason: number }
  /** The run itself failed (not an exit of the guest): errno from the kernel. */
  | { readonly kind: "error"; readonly errno: number; readonly operation?: string }
  /** What ran the guest is gone (a process backend's child died or had to be killed). */
  | { readonly kind: "lost"; readonly reason: string };

/**
 * CPU state the guest can observe, in a backend-neutral form. Taken at call
 * boundaries; segment and control registers are the backend's fixed setup.
 */
export interface CpuState {
  /** rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp, r8 … r15. */
  readonly gprs: BigUint64Array;
  readonly rip: bigint;
  readonly rflags: bigint;
  readonly fsBase: bigint;
  readonly gsBase: bigint;
  /** Standard-format (non-compacted) XSAVE area: x87, SSE, AVX. */
  readonly xsave: Uint8Array;
}

/** The fixed long-mode environment the host prepared in guest memory. */
export interface SystemSetup {
  readonly pml4Address: number;
  readonly gdt: { readonly base: number; readonly limit: number };
  readonly idt: { readonly base: number; readonly limit: number };
  readonly tss: { readonly base: number; readonly limit: number; readonly selector: number };
  readonly userCodeSelector: number;
  readonly userDataSelector: number;
}

/** Special registers read after a fault, for the error report. */
export interface FaultRegisters {
  readonly rip: bigint;
  readonly rsp: bigint;
  readonly cr2: bigint;
  /**
   * Where the backend saw the fault itself (no exception frame in guest memory): the
   * faulting RIP is `rip` and this is the CPU's error code (undefined for vectors without one).
   */
  readonly direct?: { readonly errorCode: number | undefined };
}

export interface VirtualMachine {
  readonly backend: BackendInfo;
  /**
   * The XCR0 guest code runs with: 0 where vmlet's CR4 (no OSXSAVE) applies and the guest
   * reaches only x87 and SSE state (hardware KVM); under PVM the guest runs under the
   * host's CR4 and XCR0 and reaches every component it enables (AVX, PKRU, …).
   */
  readonly guestXcr0: number;
  /** Guest memory, mapped at guest physical address 0. Writes are seen by the guest. */
  readonly memory: Uint8Array;
  /** Sets up long mode at CPL 3 and the CPU's feature set. Called once, before the first run. */
  configure(setup: SystemSetup): void;
  /** Points the vCPU at the guest's first instruction, with its thread pointer as FS base; FPU state stays at its reset values. */
  start(rip: number, rsp: number, fsBase: number): void;
  setCpuState(state: CpuState): void;
  getCpuState(): CpuState;
  faultRegisters(): FaultRegisters;
  /** Starts recording which pages the guest writes. */
  trackDirtyPages(): void;
  /**
   * Pages the guest wrote since the previous call (bit n of the bitmap = page n), and
   * starts a new record. Writes by the host into guest memory are not included. The
   * bitmap is reused: it is valid until the next call.
   */
  takeDirtyPages(): BigUint64Array;
  /**
   * Puts back, from `image` (a full copy of guest memory), every page the guest wrote
   * since the last dirty-page read plus `hostPages`, and sets the CPU state. Returns
   * the pages copied. Requires trackDirtyPages(). A pending deferred restore is done first.
   */
  restoreFrom(image: Uint8Array, hostPages: ArrayLike<number>, state: CpuState): number;
  /**
   * The same restore, deferred: it is done at the start of the next run (in the same
   * crossing into the backend), or by flushRestore(), whichever comes first. Until then
   * the host must call beforeHostWrite() before writing guest memory, and must not read
   * guest memory; every other method here flushes it first (destroy() drops it).
   */
  deferRestore(image: Uint8Array, hostPages: ArrayLike<number>, state: CpuState): void;
  /** Whether a deferred restore waits for the next run. */
  readonly restorePending: boolean;
  /** Does a pending deferred restore now. Returns the pages the latest restore copied (-1 if it failed). */
  flushRestore(): number;
  /** Drops a pending deferred restore without doing it (memory and CPU state stay as they are). */
  discardRestore(): void;
  /** With a restore pending: makes the pages of [address, address + length) equal to the image's before the host writes there. */
  beforeHostWrite(address: number, length: number): void;
  /**
   * Writes a little-endian u32 into guest memory as the host. With a restore pending the
   * write is queued and lands right after the restore's copies, in the same crossing (no
   * page copied in JavaScript first); otherwise it lands now. The caller records the page
   * as host-written, as for any host write.
   */
  writeU32(address: number, value: number): void;
  /** Runs until the next exit, on the calling thread. `timeoutNs` 0 means none. */
  run(timeoutNs: number): VmExit;
  /** Runs until the next exit on the VM's own thread; the event loop stays free. */
  runAsync(timeoutNs: number): Promise<VmExit>;
  /** Makes a run in progress (or the next one) return `interrupted`, from any context. */
  interrupt(): void;
  /** Clears a pending interrupt before a new call. */
  clearInterrupt(): void;
  /**
   * CPU time the guest has used, ns, counted from this VM's first cpuTimeNs() call (which
   * may return 0 and start the count): only differences between two calls mean anything.
   * KVM: the CPU time of the threads inside KVM_RUN. The process backend: the children's CPU time.
   */
  cpuTimeNs(): number;
  /**
   * Makes sure no guest code runs until the next run() (after setCpuState or a restore),
   * before the host replaces guest memory under it. KVM: nothing runs outside run(). The
   * process backend: a child that is not parked is killed (a new one starts on demand).
   */
  quiesce(): void;
  /**
   * Optional: keeps what the guest touched so far as the working set of the snapshot image
   * its memory came from, if that has none (the process backend populates it in new children).
   */
  recordWorkingSet?(): void;
  destroy(): void;
}

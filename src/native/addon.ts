/**
 * Loads the native addon and types its shape once. The addon is a thin layer of
 * KVM and mmap calls; see native/*.c.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import packageRoot from "../package-root.cjs";
import { addonCandidates } from "./artifacts.js";
import { BackendUnavailableError } from "../errors/errors.js";

/** The Vcpu class of native/kvm_vcpu.c. Buffers receive raw kernel structs. */
export interface NativeVcpu {
  run(timeoutNs: number): number;
  startThread(onExit: (code: number) => void): void;
  runAsync(timeoutNs: number): void;
  interrupt(): void;
  clearInterrupt(): void;
  /** CPU time spent in KVM_RUN since the first call (which returns 0 and starts counting), ns. */
  cpuTimeNs(): number;
  close(): void;
  getRegs(buf: Uint8Array): void;
  setRegs(buf: Uint8Array): void;
  getSregs(buf: Uint8Array): void;
  setSregs(buf: Uint8Array): void;
  getFpu(buf: Uint8Array): void;
  setFpu(buf: Uint8Array): void;
  getXsave(buf: Uint8Array): void;
  setXsave(buf: Uint8Array): void;
  /** The per-vCPU part of a restore plan (native/vcpu_restore.c); buffers must outlive the vCPU. */
  restorePlan(vm: number, slot: number, mode: number, dirty: BigUint64Array, previous: BigUint64Array, hot: BigUint64Array,
    clear: BigUint64Array, memory: Uint8Array, control: Int32Array, hostCapacity: number): void;
  /** The per-snapshot part: image, kvm_regs, XSAVE. */
  restoreSource(image: Uint8Array, regs: Uint8Array, xsave: Uint8Array): void;
  /** One restore as the plan says: dirty log (+ clear of non-hot pages), page copies, regs, XSAVE; returns pages copied. */
  restoreNow(): number;
  /** KVM_GET_DIRTY_LOG into the plan's bitmap (+ hot pages, clear of the others); with a dirty ring, the ring's pages. */
  takeDirtyLog(): void;
  /** mmap of the vCPU's dirty ring, `bytes` long (the size the VM enabled). */
  mapDirtyRing(bytes: number): void;
  /** KVM_SET_REGS then KVM_SET_XSAVE in one call. */
  setRegsXsave(regs: Uint8Array, xsave: Uint8Array): void;
  getEvents(buf: Uint8Array): void;
  setEvents(buf: Uint8Array): void;
  getMsrs(indices: Uint32Array, values: BigUint64Array): number;
  setMsrs(indices: Uint32Array, values: BigUint64Array): number;
  setCpuid(entries: Uint8Array, count: number): void;
}

/** A process-backend runner thread (native/process_child.c). */
export interface ProcessRunner {
  readonly __processRunner: unique symbol;
}

/** A queued spawn of a process-backend helper (native/process_spawner.c); a ticket never taken kills its child. */
export interface SpawnTicket {
  readonly __spawnTicket: unique symbol;
}

/** A queued retirement of a process-backend child and its files (native/reaper.c). */
export interface RetireTicket {
  readonly __retireTicket: unique symbol;
}

/** A watch of a process-backend notify eventfd on the event loop (native/process_notify.c). */
export interface ProcessNotifier {
  readonly __processNotifier: unique symbol;
}

export interface NativeAddon {
  /** XGETBV(0) of the host CPU (0 without OSXSAVE). */
  hostXcr0(): number;
  /** CPUID of the host CPU: [eax, ebx, ecx, edx]. */
  cpuid(leaf: number, subleaf: number): [number, number, number, number];
  openKvm(): number;
  closeFd(fd: number): void;
  /** close(fd) on a background thread, in queue order (a VM's teardown is slow). */
  closeFdLater(fd: number): void;
  getApiVersion(fd: number): number;
  checkExtension(fd: number, capability: number): number;
  getVcpuMmapSize(fd: number): number;
  getSupportedCpuid(fd: number, out: Uint8Array): number;
  createVm(fd: number): number;
  setUserMemoryRegion(vm: number, slot: number, flags: number, guestAddress: number, memory: ArrayBuffer, offset: number, size: number): void;
  enableCap(vm: number, capability: number, arg0: number): void;
  createVcpuFd(vm: number, id: number): number;
  allocMemory(size: number, hugePages: boolean): ArrayBuffer;
  /** Replaces every page of an allocMemory buffer with fresh zero pages (dropping file mappings). */
  resetMemory(memory: ArrayBuffer, hugePages: boolean): void;
  /** madvise(MADV_HUGEPAGE) over a whole mapping (advisory: the kernel's THP settings decide). */
  adviseHugePages(memory: ArrayBuffer): void;
  memfdCreate(name: string, size: number): number;
  /** Copies non-zero pages of [offset, offset+size) to the same offsets of the file; returns pages written. */
  writeNonZeroPages(fd: number, memory: ArrayBuffer, offset: number, size: number): number;
  /** Copies the non-zero pages of [offset, offset+size) of one file to the same offsets of another (pread/pwrite); returns pages written. */
  copyNonZeroPages(srcFd: number, dstFd: number, offset: number, size: number): number;
  /** Maps the file privately (copy-on-write) over [offset, offset+size) of an allocMemory buffer. */
  mapFilePrivate(memory: ArrayBuffer, offset: number, size: number, fd: number): void;
  /** Data ranges of a file as flat [start, end, …] pairs; holes are left out. */
  dataRanges(fd: number, size: number): number[];
  /** A read-only shared view of the whole file. */
  mapFileShared(fd: number, size: number): ArrayBuffer;
  /** flock(LOCK_EX|LOCK_NB): false when another process holds the lock. */
  tryLockExclusive(fd: number): boolean;
  /** getrandom(2) over the whole buffer (native/random.c). */
  fillRandom(buf: Uint32Array | Uint8Array): void;
  /** A read-write shared view of the whole file (process-backend guest memory and control memory). */
  mapFileSharedWritable(fd: number, size: number): ArrayBuffer;
  /** fallocate(PUNCH_HOLE): the range reads as zeros and its pages are freed. */
  punchHole(fd: number, offset: number, size: number): void;
  /** punchHole over every range of the file's first `size` bytes that holds data (SEEK_DATA/SEEK_HOLE). */
  punchData(fd: number, size: number): void;
  /** Makes shared guest memory equal to an image, visiting only pages with data in either file; returns pages changed. */
  syncToImage(memoryFd: number, memory: ArrayBuffer, imageFd: number, image: Uint8Array): number;
  /** Starts a process-backend helper with guest memory as fd 3, the control memfd as fd 4 and the notify eventfd as fd 5: [pidfd, pid]. */
  processSpawn(helperPath: string, memoryFd: number, controlFd: number, notifyFd: number): [number, number];
  /** Queues, on the spawner thread (native/process_spawner.c), a helper started ahead of need that waits on a socket (its fd 3) for its memfds. */
  processSpawnWarmLater(helperPath: string): SpawnTicket;
  /**
   * The queued helper, after waiting up to `waitNs` while it is being spawned (and while it is
   * still queued, if `whileQueued`): [pidfd, pid, socket], owned by this environment from now
   * on; undefined while pending; null once taken. Throws the spawn's errno.
   */
  processSpawnTake(ticket: SpawnTicket, waitNs: number, whileQueued: boolean): [number, number, number] | undefined | null;
  /** Sends a warm helper guest memory, the control memfd and the notify eventfd (SCM_RIGHTS) and closes the socket. */
  processHandOver(socket: number, memoryFd: number, controlFd: number, notifyFd: number): void;
  /** One run: mode 0 waits only, 1 resumes from the mailbox's registers (+ ripAdvance), 2 from the frame the host wrote. Returns RunResult. */
  processResume(control: ArrayBuffer, pidfd: number, mode: number, ripAdvance: number, timeoutNs: number, graceNs: number): number;
  /** A thread that runs processResume for async calls and hands each result to `onExit` (it keeps Node alive no more than a sandbox does). */
  /** A runner thread for a child's async runs, with its own mapping of the control memfd. */
  processRunner(controlFd: number, onExit: (result: number, token: number) => void): ProcessRunner;
  /** Resumes the child (its next exit also writes the notify eventfd) and has the runner watch run `token` (1 to 2^24 − 1); Node stays alive until it is called off. */
  processRunnerPost(runner: ProcessRunner, pidfd: number, mode: number, ripAdvance: number, timeoutNs: number, graceNs: number, token: number): void;
  /** Run `token` ended: the runner no longer watches it (nor can stop the child for it), and Node is kept alive for it no more. Once per run. */
  processRunnerCallOff(runner: ProcessRunner, token: number): void;
  /**
   * On the background thread: SIGKILL the child (pidfd; -1: none), wait for its death, then
   * punch out every page of the two memfds (the job works on its own copies of them).
   */
  processRetire(pidfd: number, memoryFd: number, memorySize: number, controlFd: number, controlSize: number): RetireTicket;
  /** 0: pending; 1: the child is dead and both files are empty; −1: the files could not be emptied. */
  processRetired(ticket: RetireTicket): number;
  /** eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) */
  eventfdCreate(): number;
  /** Watches an eventfd on this thread's event loop (unref'd): `onNotify` runs when a child wrote it. */
  processNotifier(eventfd: number, onNotify: () => void): ProcessNotifier;
  processNotifierClose(notifier: ProcessNotifier): void;
  /** Joins the runner thread; a run in progress must be about to end (its child killed). */
  processRunnerStop(runner: ProcessRunner): void;
  /** SIGKILL without reaping. */
  processTerminate(pidfd: number): void;
  /** Sets the interrupt flag and sends the interrupt signal. */
  processInterrupt(control: ArrayBuffer, pidfd: number): void;
  /** SIGKILL, reap, close the pidfd: the exit status, or 128 + the signal. */
  processKill(pidfd: number): number;
  /** The fixed parts of the resume frame, once per child. */
  processInitFrame(control: ArrayBuffer, xfeatures: bigint, xstateSize: number, fsgsbase: boolean, spinLoops: number): void;
  /** The host's registers (kvm_regs order), XSAVE image and FS/GS bases for the next resume. */
  processWriteFrame(control: ArrayBuffer, regs: BigUint64Array, xsave: Uint8Array, fsBase: bigint, gsBase: bigint): void;
  /** open(/proc/<pid>/pagemap): the fd the child's dirty-page scans use. */
  pagemapOpen(pid: number): number;
  /** PAGEMAP_SCAN of the child's written pages in `ranges` ([start, end, …] guest addresses), protected again; writes [firstPage, endPage) pairs into `out`; returns the regions found (more than `out` holds: some left out). */
  pagemapTakeWritten(fd: number, ranges: Float64Array, out: Uint32Array): number;
  /** PAGEMAP_SCAN of pages with no page-table entry (so unprotected) in `ranges`, each protected again; same output as pagemapTakeWritten. */
  pagemapTakeUnprotected(fd: number, ranges: Float64Array, out: Uint32Array): number;
  /** PAGEMAP_SCAN of the pages with a present entry in `ranges` (what the child mapped; with `written`, only unprotected ones), read only; same output as pagemapTakeWritten. */
  pagemapPresent(fd: number, ranges: Float64Array, out: Uint32Array, written: boolean): number;
  /** How long every process-backend wait spins before it sleeps. */
  processSetSpin(ns: number): void;
  /** The child's process CPU time (clock_getcpuclockid), ns; -1 once it is gone. */
  processCpuTimeNs(pid: number): number;
  Vcpu: new (fd: number, mmapSize: number, exitRecord: BigUint64Array) => NativeVcpu;
  structSizes: { regs: number; sregs: number; fpu: number; xsave: number; events: number; cpuidEntry: number };
}

/** An error thrown by the addon: `code` is the errno name, `operation` the failed call. */
export interface NativeError extends Error {
  code?: string;
  operation?: string;
  errno?: number;
}

let cached: NativeAddon | undefined;

/** node-gyp-build: returns the addon from build/Release, build/Debug or prebuilds/<platform>-<arch>. */
type NodeGypBuild = (dir: string) => unknown;

export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const require = createRequire(path.join(packageRoot, "package.json"));
  try {
    const file = addonCandidates().find((f) => existsSync(f));
    cached = (file ? require(file) : (require("node-gyp-build") as NodeGypBuild)(packageRoot)) as NativeAddon;
    return cached;
  } catch (error) {
    throw new BackendUnavailableError(
      `the vmlet native addon could not be loaded (${(error as Error).message.trim()}). ` +
        "In a checkout run `npm run build`; in a project, reinstall vmlet (it compiles the addon when no prebuilt one fits this machine).",
    );
  }
}

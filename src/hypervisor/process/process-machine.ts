/**
 * The process implementation of VirtualMachine: the guest runs as ordinary user-mode code
 * in a child process of its own (native/process/helper.c), confined by seccomp, with guest
 * memory a memfd both processes map. Exits are signals in the child, which posts them in a
 * shared mailbox and sleeps; the child enters the guest only through a sigreturn frame that
 * the host writes and the child cannot. docs/backends.md says what this isolates.
 *
 * Nothing the child writes is trusted: exit records are decoded defensively, every wait is
 * bounded, and before a restore puts memory back under the child the host checks, in
 * /proc/<pid>/syscall, that the child sleeps in its park loop; if not it is killed and a
 * new one started. A child that dies or has to be killed makes the run "lost" (or
 * "interrupted" when the host asked it to stop); the next configure() or restore starts a
 * new one from the same memory.
 */
import { readFileSync } from "node:fs";
import { BackendUnavailableError, HypervisorError } from "../../errors/errors.js";
import type { GuestMemory } from "../../mem/guest-memory.js";
import { imageDataOf, imageFileOf } from "../../mem/image-files.js";
import { intersectRanges } from "../../mem/range-lists.js";
import { loadAddon, type NativeAddon, type ProcessRunner } from "../../native/addon.js";
import { native } from "../../native/errors.js";
import type { BackendInfo, CpuState, FaultRegisters, SystemSetup, VirtualMachine, VmExit } from "../virtual-machine.js";
import { decodeExit, type DecodedExit } from "./exits.js";
import { helperPath } from "./helper-path.js";
import { processGuestXcr0, userCanSetSegmentBases } from "./host-cpu.js";
import { bytesToPages, rangesToPrefault, workingSetOf } from "../../snapshot/working-set.js";
import type { MemoryImage } from "../../snapshot/memory-image.js";
import {
  CONTROL_ADDRESS, CONTROL_SIZE, MAILBOX_SIZE, MailboxState, MAX_MAPS, MAX_PREFAULT_RANGES, MB, PARK_PC, REG_RFLAGS, REG_RIP, REG_RSP, RunMode, RunResult,
  PROT_WRITE, SIGNAL_STACK, START_FAILURES, XSAVE_SIZE, type GuestMapping,
} from "./mailbox.js";
import { walkImageTables, walkPageTables } from "./page-walk.js";
import { notifyFd, onExitNotification } from "./exit-notifier.js";
import { takeWarmChild } from "./warm-children.js";
import { keepSpare, takeEmptied, type SpareFile } from "../../mem/spare-files.js";
import { mappingRanges, residentPages } from "./resident-pages.js";
import { ChildWriteLog, copyPages, regionsToBitmap } from "./write-tracking.js";
import { nowMs } from "../../sandbox/clock.js";

const PAGE = 4096;
const RFLAGS_IF = 0x202n;
/** How long a child may take from spawn to its first exit. */
const START_TIMEOUT_NS = 5e9;
/** How long a child asked to stop (a deadline, kill()) may take before it is killed. */
const STOP_GRACE_NS = 200e6;
/** How long a restore waits for a child that just posted an exit to reach its park loop. */
const PARK_WAIT_MS = 50;
const SIGTRAP = 5;
/** Async run tokens wrap below 2^24 (native packs them beside the result). */
const MAX_RUN_TOKEN = 0xff_ffff;
/**
 * How long each side polls before it sleeps on the futex by default: not at all. On a busy
 * 2-core machine a spinning side takes the core the other side needs (bench: 71–89 µs per call
 * with 20 µs / 2000 loops against 29–37 µs without); on an idle one spinning halves a call.
 */
export const PROCESS_SPIN_DEFAULT = { hostNs: 0, childLoops: 0 } as const;
/** Pause loops a parked child polls before it sleeps (tests and benchmarks may change it). */
let childSpinLoops: number = PROCESS_SPIN_DEFAULT.childLoops;

/** @internal How long each side polls before it sleeps on the futex: the host in ns, the child in pause loops (children started afterwards). */
export function setProcessSpin(hostNs: number, childLoops: number): void {
  loadAddon().processSetSpin(hostNs);
  childSpinLoops = childLoops;
}
/** How restores find the pages to put back: the child's write log where it pays ("auto"), always the log where it can be trusted ("log"), or a comparison of every page with data ("compare"). */
export type ProcessRestoreMode = "auto" | "log" | "compare";
let restoreMode: ProcessRestoreMode = "auto";
/** Whether children are started with write tracking (tests turn it off to check the fallback). */
let writeTrackingWanted = true;

/** @internal Tests and benchmarks: how restores of machines find their pages; whether children started afterwards track writes. */
export function setProcessRestoreMode(mode: ProcessRestoreMode, trackWrites = true): void {
  restoreMode = mode;
  writeTrackingWanted = trackWrites;
}

/** Images whose working set was looked for already (recordWorkingSet). */
const workingSetLooked = new WeakSet<MemoryImage>();

/** Whether new children populate their snapshot's working set at start (tests and benchmarks turn it off to compare). */
let prefaultWanted = true;

/** @internal Tests and benchmarks: whether children started afterwards populate their image's working set. */
export function setWorkingSetPrefault(on: boolean): void {
  prefaultWanted = on;
}

/**
 * The "auto" choice, from figures measured on a 2-core EPYC VM (docs/snapshots.md,
 * "Restores on the process backend"): a full compare costs about COMPARE_NS per page with
 * data; a take of the log about SCAN_FIXED_NS plus SCAN_NS_PER_DATA_PAGE per page with data
 * (its scans skip memory the guest never touched); and each page the guest writes after a
 * take costs it one write-protect fault in its next call, FAULT_NS here (the last
 * restore's page count estimates those).
 */
const COMPARE_NS = 400;
const SCAN_NS_PER_DATA_PAGE = 25;
const SCAN_FIXED_NS = 150_000;
const FAULT_NS = 250_000;


/** The initial FPU state: x87 control word 0x37f, MXCSR 0x1f80, every other component at its reset value. */
const INITIAL_XSAVE = (() => {
  const x = new Uint8Array(XSAVE_SIZE);
  const v = new DataView(x.buffer);
  v.setUint16(0, 0x37f, true);
  v.setUint32(24, 0x1f80, true);
  v.setUint32(28, 0xffff, true);
  return x;
})();

interface Child {
  readonly pidfd: number;
  readonly pid: number;
  readonly maps: readonly GuestMapping[];
  /** The thread that waits for async runs (made on the first one). */
  runner?: ProcessRunner | undefined;
  /** Resolves the async run in progress (its token). */
  onRunnerExit?: ((result: number, token: number) => void) | undefined;
  /** Its write log, when it started with write tracking. */
  readonly log: ChildWriteLog | undefined;
  /** The host let it go (killed, or handed to the background thread): its pidfd is not ours any more. */
  ended?: boolean;
}

export class ProcessMachine implements VirtualMachine {
  readonly backend: BackendInfo = { name: "process", flavour: "seccomp" };
  readonly guestXcr0: number;
  readonly memory: Uint8Array;
  private readonly addon: NativeAddon;
  private readonly memoryFd: number;
  private readonly controlFd: number;
  private readonly control: ArrayBuffer;
  private readonly mailbox: DataView;
  private child: Child | undefined;
  /** Whether control memory is all zeros (no child has used it since it was made or emptied). */
  private controlFresh = true;
  /** The user mappings configure() read from the page tables (vmlet's own, so a new child reuses them). */
  private maps: readonly GuestMapping[] | undefined;
  /** Pages the guest's page tables map (user or supervisor): what a VM's #PF error code would say. */
  private present: Uint8Array = new Uint8Array(0);
  /** What the next resume loads: the guest's own state from its last exit, or a state the host set. */
  private next: { kind: "mailbox"; advance: number } | { kind: "host"; state: CpuState } | { kind: "none" } = { kind: "none" };
  private lastFault: DecodedExit["fault"];
  private lastCopied = 0;
  private pendingRestore:
    | { readonly image: Uint8Array; readonly state: CpuState; readonly patches: Array<[number, number]>; readonly hostPages: readonly number[] }
    | undefined;
  private destroyed = false;
  private readonly allPages: BigUint64Array;
  private readonly dirtyBitmap: BigUint64Array;
  /** The child whose write log holds every page the guest wrote since memory last equalled the snapshot it restores (or since the last take). */
  private loggedChild: Child | undefined;
  /** CPU time of the children this VM has ended, ns (cpuTimeNs() adds the live one). */
  private endedChildrenCpuNs = 0;
  /** Pages with data in each image restored from, for the "auto" choice. */
  private readonly imageDataPages = new WeakMap<Uint8Array, number>();
  /** Page ranges the starting child populated writable (writePrefaultRanges): its write log's first scan leaves them unprotected. */
  private prefaultedWrites: readonly number[] = [];
  /** How the latest restore found its pages (tests). */
  private lastRestoreUsedLog = false;
  /**
   * The child seen asleep in its park loop since the host last resumed or signalled it (the
   * object, not its pid, which a later child may get): only a resume (the state word) lets
   * it leave, so a second look is not needed.
   */
  private seenParked: Child | undefined;
  /** The latest async run's token (1 to MAX_RUN_TOKEN): the runner's late results name theirs. */
  private runToken = 0;

  constructor(private readonly guestMemory: GuestMemory) {
    if (guestMemory.fd === undefined) throw new HypervisorError("process backend", undefined, "guest memory must be shared (GuestMemory.allocateShared)");
    this.addon = loadAddon();
    this.memoryFd = guestMemory.fd;
    this.memory = guestMemory.bytes;
    this.guestXcr0 = processGuestXcr0();
    [this.controlFd, this.control] = takeControl(this.addon);
    this.mailbox = new DataView(this.control, 0, MAILBOX_SIZE);
    const pages = this.memory.byteLength / PAGE;
    this.allPages = new BigUint64Array(Math.ceil(pages / 64)).fill(~0n);
    if (pages % 64) this.allPages[this.allPages.length - 1] = (1n << BigInt(pages % 64)) - 1n;
    this.dirtyBitmap = new BigUint64Array(this.allPages.length);
  }

  /** Maps what the page tables give user code; a child already running with the same mappings is kept. */
  configure(setup: SystemSetup): void {
    if (this.pendingRestore) this.flushRestore();
    const image = this.guestMemory.mappedImage;
    const { mappings: maps, present } = image ? walkImageTables(this.memory, setup.pml4Address, image) : walkPageTables(this.memory, setup.pml4Address);
    this.maps = maps;
    this.present = present;
    if (this.child && !sameMaps(this.child.maps, maps)) this.stopChild();
    if (!this.child) this.child = this.spawn(maps);
    this.next = { kind: "none" };
  }

  start(rip: number, rsp: number, fsBase: number): void {
    this.setCpuState(initialState(rip, rsp, fsBase));
  }

  setCpuState(state: CpuState): void {
    if (this.pendingRestore) this.flushRestore();
    this.next = { kind: "host", state };
    this.writeFrame(state);
  }

  getCpuState(): CpuState {
    if (this.pendingRestore) this.flushRestore();
    if (this.next.kind === "host") return this.next.state;
    if (this.next.kind === "none") throw new HypervisorError("process backend", undefined, "no CPU state: the sandbox's process is gone");
    const m = this.mailbox;
    const gprs = new BigUint64Array(16);
    for (let i = 0; i < 16; i++) gprs[i] = m.getBigUint64(MB.regs + i * 8, true);
    return {
      gprs,
      rip: m.getBigUint64(MB.regs + REG_RIP * 8, true) + BigInt(this.next.advance),
      rflags: m.getBigUint64(MB.regs + REG_RFLAGS * 8, true),
      fsBase: m.getBigUint64(MB.fsBase, true),
      gsBase: m.getBigUint64(MB.gsBase, true),
      xsave: new Uint8Array(this.control.slice(MB.xsave, MB.xsave + XSAVE_SIZE)),
    };
  }

  faultRegisters(): FaultRegisters {
    if (this.pendingRestore) this.flushRestore();
    const rsp = this.mailbox.getBigUint64(MB.regs + REG_RSP * 8, true);
    const fault = this.lastFault;
    if (!fault) return { rip: this.mailbox.getBigUint64(MB.regs + REG_RIP * 8, true), rsp, cr2: 0n, direct: { errorCode: undefined } };
    return { rip: fault.rip, rsp, cr2: fault.address, direct: { errorCode: fault.errorCode } };
  }

  /** Children log their writes from their start (write-tracking.ts); nothing to turn on. */
  trackDirtyPages(): void {}

  /**
   * The pages the guest wrote since the previous take or restore, from the child's write
   * log; every page when there is no log to trust (no tracking, a new child, a child that
   * is not parked). After a restore that compared pages instead, the log also holds pages
   * written before it: a superset, which costs a snapshot copies, never correctness.
   */
  takeDirtyPages(): BigUint64Array {
    if (this.pendingRestore) this.flushRestore();
    const child = this.child;
    if (!child?.log?.usable || !this.waitParked(child.pid)) {
      this.loggedChild = undefined;
      return this.allPages;
    }
    const regions = child.log.take();
    const trusted = regions !== undefined && this.loggedChild === child;
    this.loggedChild = regions ? child : undefined;
    return trusted ? regionsToBitmap(regions, this.dirtyBitmap) : this.allPages;
  }

  /**
   * Puts back the guest's pages (its write log plus the host's pages) where the log covers
   * every write since memory last equalled this image and reading it pays; otherwise
   * compares every page with data. The child must be parked first (else it is replaced,
   * and a new child's first restore compares).
   */
  restoreFrom(image: Uint8Array, hostPages: ArrayLike<number>, state: CpuState): number {
    this.pendingRestore = undefined;
    this.parkOrReplaceChild();
    const child = this.child!;
    const regions = this.loggedChild === child && child.log && this.logPays(image) ? child.log.take() : undefined;
    this.lastRestoreUsedLog = regions !== undefined;
    this.lastCopied = regions
      ? copyPages(this.memory, image, regions, hostPages, imageDataOf(image) ?? [0, image.byteLength])
      : native("memcmp", () => this.addon.syncToImage(this.memoryFd, this.guestMemory.buffer, this.imageFdOf(image), image));
    // Memory equals the image now; the log holds (a superset of) every write from here,
    // and after its first take only those: a log never taken takes now (its answer is moot).
    if (!regions && child.log?.untaken) child.log.take();
    this.loggedChild = child.log?.usable ? child : undefined;
    this.setCpuState(state);
    return this.lastCopied;
  }

  /**
   * Keeps the guest pages the child maps now (what guests touched since it started) as the
   * working set of the image memory was last made equal to, when that image has none yet:
   * the next new child populates them at start (writeStartRecord).
   */
  recordWorkingSet(): void {
    const image = this.guestMemory.mappedImage;
    const child = this.child;
    if (!image || image.workingSet || workingSetLooked.has(image) || !child || this.pendingRestore) return;
    workingSetLooked.add(image); // once per image: a set the image refuses (nothing touched) is not looked for again on every first call
    const pages = residentPages(this.addon, child.pid, child.maps);
    if (!pages) return;
    // A log never taken protects nothing, so every present page reads as written: the pages
    // whose bytes left the image's are the written ones then (once per image, O(touched)).
    const written = child.log?.untaken === false ? pages.written : changedPages(this.memory, image.view, pages.present, image.dataRanges());
    image.keepWorkingSet(workingSetOf(pages.present, written, image.dataRanges()));
  }

  /** Kept until the next run, host write or state access. */
  deferRestore(image: Uint8Array, hostPages: ArrayLike<number>, state: CpuState): void {
    this.pendingRestore = { image, state, patches: [], hostPages: Array.from(hostPages) };
  }

  /** @internal Tests: whether the latest restore copied the log's pages (false: it compared every page). */
  get restoredFromLog(): boolean {
    return this.lastRestoreUsedLog;
  }

  /** Whether a take of the log, and the faults the guest takes after it, cost less than a full compare ("auto"). */
  private logPays(image: Uint8Array): boolean {
    if (restoreMode !== "auto") return restoreMode === "log";
    let dataPages = this.imageDataPages.get(image);
    if (dataPages === undefined) {
      const ranges = this.addon.dataRanges(this.imageFdOf(image), image.byteLength);
      dataPages = 0;
      for (let i = 0; i < ranges.length; i += 2) dataPages += (ranges[i + 1]! - ranges[i]!) / PAGE;
      this.imageDataPages.set(image, dataPages);
    }
    return dataPages * COMPARE_NS > SCAN_FIXED_NS + dataPages * SCAN_NS_PER_DATA_PAGE + Math.max(this.lastCopied, 0) * FAULT_NS;
  }

  get restorePending(): boolean {
    return this.pendingRestore !== undefined;
  }

  flushRestore(): number {
    const pending = this.pendingRestore;
    if (pending) {
      this.restoreFrom(pending.image, pending.hostPages, pending.state);
      for (const [address, value] of pending.patches) this.writeU32(address, value);
    }
    return this.lastCopied;
  }

  discardRestore(): void {
    this.pendingRestore = undefined;
  }

  beforeHostWrite(): void {
    if (this.pendingRestore) this.flushRestore();
  }

  /** With a restore pending, the write waits for it (and lands right after its copies), as on KVM. */
  writeU32(address: number, value: number): void {
    if (this.pendingRestore) {
      this.pendingRestore.patches.push([address, value]);
      return;
    }
    new DataView(this.memory.buffer, this.memory.byteOffset, this.memory.byteLength).setUint32(address, value, true);
  }

  run(timeoutNs: number): VmExit {
    if (this.pendingRestore) this.flushRestore();
    const child = this.childForRun();
    if (!child || this.next.kind === "none") return { kind: "lost", reason: "the sandbox's process is gone" };
    const [mode, advance] = this.resumeMode();
    this.seenParked = undefined;
    return this.afterRun(child, this.addon.processResume(this.control, child.pidfd, mode, advance, timeoutNs, STOP_GRACE_NS));
  }

  /**
   * The child is resumed from here. The result comes through the exit notification (an
   * eventfd the child writes, watched on the event loop: one wake-up, as a sync call has),
   * or from the child's runner thread, which watches the run: the deadline, a child that
   * died, an exit posted without its notification. Whichever comes first ends the run.
   */
  async runAsync(timeoutNs: number): Promise<VmExit> {
    if (this.pendingRestore) this.flushRestore();
    const child = this.childForRun();
    if (!child || this.next.kind === "none") return { kind: "lost", reason: "the sandbox's process is gone" };
    const [mode, advance] = this.resumeMode();
    child.runner ??= this.addon.processRunner(this.controlFd, (result, token) => child.onRunnerExit?.(result, token));
    const runner = child.runner;
    const token = (this.runToken = (this.runToken % MAX_RUN_TOKEN) + 1);
    const result = await new Promise<number>((resolve) => {
      const finish = (r: number): void => {
        stopWatching();
        child.onRunnerExit = undefined;
        this.addon.processRunnerCallOff(runner, token);
        resolve(r);
      };
      // Only this machine's live child's mailbox says whether this run ended (after destroy()
      // the control memory may serve another machine).
      const stopWatching = onExitNotification(() => {
        if (!child.ended && !this.destroyed && this.mailbox.getUint32(MB.state, true) === MailboxState.ExitPosted) finish(RunResult.Exit);
      });
      child.onRunnerExit = (r, t) => {
        if (t === token) finish(r);
      };
      this.seenParked = undefined;
      try {
        this.addon.processRunnerPost(runner, child.pidfd, mode, advance, timeoutNs, STOP_GRACE_NS, token);
      } catch (error) {
        stopWatching();
        child.onRunnerExit = undefined;
        throw error;
      }
    });
    return this.afterRun(child, result);
  }

  interrupt(): void {
    if (this.destroyed || !this.child) return;
    this.seenParked = undefined;
    this.addon.processInterrupt(this.control, this.child.pidfd);
  }

  cpuTimeNs(): number {
    const current = this.child ? this.addon.processCpuTimeNs(this.child.pid) : -1;
    return this.endedChildrenCpuNs + Math.max(0, current);
  }

  clearInterrupt(): void {
    this.mailbox.setUint32(MB.interrupt, 0, true);
  }

  /** A child that is not parked could write memory the host is about to replace: it goes. */
  quiesce(): void {
    if (this.child && !this.waitParked(this.child.pid)) this.stopChild();
  }

  /**
   * The child's death and the emptying of both memfds happen on a background thread
   * (native/reaper.c): close() does not wait for them. The files serve another sandbox
   * only once that is done.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.pendingRestore = undefined;
    const child = this.child;
    this.child = undefined;
    if (child) this.detachChild(child);
    const ticket = this.addon.processRetire(child?.pidfd ?? -1, this.memoryFd, this.memory.byteLength, this.controlFd, CONTROL_SIZE);
    const emptied = (): number => this.addon.processRetired(ticket);
    keepSpare(this.addon, spareControls, { fd: this.controlFd, control: this.control, emptied }, SPARE_CONTROLS);
    this.guestMemory.releaseWhenEmptied(emptied);
  }

  /** @internal Tests: the child's pid (undefined when none runs). */
  get childPid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * The child to run. One that quiesce() stopped is replaced here when the host has set the
   * state to resume from (setCpuState or a restore): a new child resumes exactly there.
   */
  private childForRun(): Child | undefined {
    if (this.child || this.next.kind !== "host" || !this.maps || this.destroyed) return this.child;
    this.child = this.spawn(this.maps);
    this.writeFrame(this.next.state);
    return this.child;
  }

  private resumeMode(): [RunMode, number] {
    return this.next.kind === "mailbox" ? [RunMode.FromMailbox, this.next.advance] : [RunMode.FromFrame, 0];
  }

  private afterRun(child: Child, result: number): VmExit {
    // Destroyed meanwhile: its control memory may already serve another machine.
    if (this.destroyed) return { kind: "lost", reason: "the sandbox's VM was destroyed" };
    if (result === RunResult.Exit) {
      const decoded = this.decode();
      this.lastFault = decoded.fault;
      this.next = { kind: "mailbox", advance: decoded.advance };
      return decoded.exit;
    }
    const status = this.endChild(child);
    if (this.child === child) this.child = undefined;
    this.next = { kind: "none" }; // nothing to resume until the host sets a state (a restore)
    if (result === RunResult.Killed) return { kind: "interrupted" }; // it would not stop when asked
    return { kind: "lost", reason: `the sandbox's process ended (${describeStatus(status)})` };
  }

  private decode(): DecodedExit {
    const m = this.mailbox;
    const reg = (i: number): bigint => m.getBigUint64(MB.regs + i * 8, true);
    return decodeExit(
      {
        signo: m.getInt32(MB.signo, true),
        trapno: Number(m.getBigUint64(MB.trapno, true) & 0xffffn),
        error: Number(m.getBigUint64(MB.error, true) & 0xffffffffn),
        address: m.getBigUint64(MB.address, true),
        rip: reg(REG_RIP),
        rax: reg(0),
        rdx: reg(3),
      },
      this.readCode,
      this.isPresent,
    );
  }

  /** Instruction bytes at a guest RIP, from the host's mapping (none outside guest memory). Made once: decode() runs on every exit. */
  private readonly readCode = (rip: bigint, length: number): Uint8Array | undefined => {
    if (rip < 0n || rip + BigInt(length) > BigInt(this.memory.byteLength)) return undefined;
    return this.memory.slice(Number(rip), Number(rip) + length);
  };

  /** Whether the guest's page tables map the page of `address`. */
  private readonly isPresent = (address: bigint): boolean =>
    address >= 0n && address < BigInt(this.memory.byteLength) && this.present[Number(address) / PAGE | 0] === 1;


  private writeFrame(state: CpuState): void {
    this.addon.processWriteFrame(this.control, frameRegs(state), state.xsave, state.fsBase, state.gsBase);
  }

  /** A fresh child with these mappings, stopped at its first exit with the resume frame set up. */
  private spawn(maps: readonly GuestMapping[]): Child {
    if (maps.length > MAX_MAPS) throw new HypervisorError("process backend", undefined, "too many guest mappings");
    const [pidfd, pid] = this.startWarmChild(maps) ?? this.startColdChild(maps);
    const m = this.mailbox;
    native("resume frame", () =>
      this.addon.processInitFrame(this.control, m.getBigUint64(MB.frameXfeatures, true), m.getUint32(MB.frameXstateSize, true), userCanSetSegmentBases(), childSpinLoops),
    );
    return { pidfd, pid, maps, log: this.openWriteLog(pid, maps) };
  }

  /** A warm child (warm-children.ts) handed this sandbox's memfds, at its first exit; undefined if none is ready or it fails (it is killed). */
  private startWarmChild(maps: readonly GuestMapping[]): [number, number] | undefined {
    const warm = takeWarmChild();
    if (!warm) return undefined;
    this.writeStartRecord(maps);
    try {
      this.addon.processHandOver(warm.socket, this.memoryFd, this.controlFd, notifyFd());
    } catch {
      this.addon.processKill(warm.pidfd); // it died while it waited
      return undefined;
    }
    if (this.reachedFirstExit(warm.pidfd)) return [warm.pidfd, warm.pid];
    this.addon.processKill(warm.pidfd);
    return undefined;
  }

  /** A child spawned for this sandbox, at its first exit. */
  private startColdChild(maps: readonly GuestMapping[]): [number, number] {
    this.writeStartRecord(maps);
    let pidfd: number, pid: number;
    try {
      [pidfd, pid] = this.addon.processSpawn(helperPath(), this.memoryFd, this.controlFd, notifyFd());
    } catch (error) {
      throw new BackendUnavailableError(`the process backend cannot start its helper: ${(error as Error).message}`, { cause: error });
    }
    if (!this.reachedFirstExit(pidfd)) {
      const status = this.addon.processKill(pidfd);
      const why = START_FAILURES[status] ?? describeStatus(status);
      throw new BackendUnavailableError(`the process backend's helper did not start: ${why}`);
    }
    return [pidfd, pid];
  }

  /** What a starting child reads from the mailbox (memory size, mappings, options), in control memory with nothing of an earlier child's. */
  private writeStartRecord(maps: readonly GuestMapping[]): void {
    if (!this.controlFresh) native("fallocate", () => this.addon.punchHole(this.controlFd, 0, CONTROL_SIZE)); // zeros, without a fault per page
    this.controlFresh = false;
    const m = this.mailbox;
    m.setUint32(MB.memorySizePages, this.memory.byteLength / PAGE, true);
    m.setUint32(MB.mapCount, maps.length, true);
    m.setUint32(MB.trackWrites, writeTrackingWanted ? 1 : 0, true);
    m.setUint32(MB.hugePages, this.guestMemory.hugePages ? 1 : 0, true);
    maps.forEach((map, i) => {
      const at = MB.maps + i * MB.mapEntrySize;
      m.setBigUint64(at, BigInt(map.start), true);
      m.setBigUint64(at + 8, BigInt(map.size), true);
      m.setUint32(at + 16, map.prot, true);
    });
    this.writePrefaultRanges(maps);
  }

  /**
   * The working set of the image memory was made from, clamped to the mappings and the
   * image's data, for the child to populate (written pages first, writable); kept in
   * `prefaultedWrites` for the write log's first scan, which must leave them unprotected.
   */
  private writePrefaultRanges(maps: readonly GuestMapping[]): void {
    this.prefaultedWrites = [];
    const image = this.guestMemory.mappedImage;
    const workingSet = prefaultWanted ? image?.workingSet : undefined;
    if (!image || !workingSet) return;
    const { writes, reads } = rangesToPrefault(workingSet, mappingRanges(maps), mappingRanges(maps, PROT_WRITE), image.dataRanges(), MAX_PREFAULT_RANGES);
    const ranges = [...writes, ...reads];
    const m = this.mailbox;
    m.setUint32(MB.prefaultCount, ranges.length / 2, true);
    m.setUint32(MB.prefaultWrites, writes.length / 2, true);
    for (let i = 0; i < ranges.length; i += 2) {
      m.setUint32(MB.prefault + (i / 2) * MB.prefaultEntrySize, ranges[i]!, true);
      m.setUint32(MB.prefault + (i / 2) * MB.prefaultEntrySize + 4, ranges[i + 1]!, true);
    }
    this.prefaultedWrites = writes;
  }

  /** Waits for a starting child's first exit: the int3 after its seccomp filter is installed. */
  private reachedFirstExit(pidfd: number): boolean {
    const result = this.addon.processResume(this.control, pidfd, RunMode.WaitOnly, 0, START_TIMEOUT_NS, STOP_GRACE_NS);
    return result === RunResult.Exit && this.mailbox.getInt32(MB.signo, true) === SIGTRAP;
  }

  /**
   * The child's write log, if it armed write tracking (read before any guest code ran, so
   * the guest cannot have forged the answer). Nothing is protected at start; the first take
   * protects the pages memory holds data for, so later takes report only what the guest
   * touches. A new child's log is not trusted before its first restore, so that take waits
   * for the first snapshot or restore (a sandbox that never has one never pays its
   * page-table updates, ~0.25 ms at start on a 2-core EPYC VM). The pages the child
   * populated writable stay unprotected: writes to them cost no fault, and every take
   * reports them (as written) until one protects them.
   */
  private openWriteLog(pid: number, maps: readonly GuestMapping[]): ChildWriteLog | undefined {
    if (this.mailbox.getInt32(MB.writeTracking, true) !== 1) return undefined;
    try {
      return new ChildWriteLog(this.addon, this.addon.pagemapOpen(pid), maps, this.memoryFd, this.memory.byteLength, this.prefaultedWrites);
    } catch {
      return undefined; // no pagemap (e.g. /proc hidden): restores compare pages
    }
  }

  private stopChild(): void {
    if (!this.child) return;
    this.endChild(this.child);
    this.child = undefined;
  }

  /** Kills the child, stops its runner thread (whose wait then ends), reaps it; its exit status. */
  private endChild(child: Child): number {
    if (child.ended) return -1;
    this.addon.processTerminate(child.pidfd);
    this.detachChild(child);
    return this.addon.processKill(child.pidfd);
  }

  /** Everything of the host's for a child that ends: its CPU time counted, its log and runner stopped; once. */
  private detachChild(child: Child): void {
    child.ended = true;
    this.endedChildrenCpuNs += Math.max(0, this.addon.processCpuTimeNs(child.pid));
    child.log?.close();
    if (this.loggedChild === child) this.loggedChild = undefined;
    if (child.runner) this.addon.processRunnerStop(child.runner);
    child.runner = undefined;
  }

  /**
   * Before memory is put back under the child: the child must sleep in its park loop (so
   * nothing of the guest runs until the host's frame resumes it), and nothing it wrote
   * outside guest memory (mailbox, signal stack) may survive. A child that is not parked
   * is replaced.
   */
  private parkOrReplaceChild(): void {
    this.quiesce();
    if (!this.child) {
      if (!this.maps) throw new HypervisorError("process backend", undefined, "restore before configure()");
      this.child = this.spawn(this.maps);
      return;
    }
    const bytes = new Uint8Array(this.control);
    bytes.fill(0, 4, MAILBOX_SIZE); // everything but the state word, which says "parked"
    bytes.fill(0, SIGNAL_STACK.offset, SIGNAL_STACK.offset + SIGNAL_STACK.size);
  }

  /** Whether the child sleeps in its park loop; seen once, that holds until the host resumes or signals it. */
  private waitParked(pid: number): boolean {
    if (this.seenParked === this.child && this.child?.pid === pid) return true;
    const until = nowMs() + PARK_WAIT_MS;
    do {
      if (isParked(pid)) {
        this.seenParked = this.child?.pid === pid ? this.child : undefined;
        return true;
      }
    } while (nowMs() < until);
    return false;
  }

  private imageFdOf(image: Uint8Array): number {
    const fd = imageFileOf(image);
    if (fd === undefined) throw new HypervisorError("process backend", undefined, "restore from an image that is not a snapshot's view");
    return fd;
  }
}

/**
 * Control memfds (mailbox, frame, signal stack) of destroyed machines, emptied, for the next
 * machine: a new memfd, its mapping and V8's accounting of it cost more than the punch.
 */
const spareControls: Array<SpareFile & { control: ArrayBuffer }> = [];
const SPARE_CONTROLS = 4;

function takeControl(addon: NativeAddon): [number, ArrayBuffer] {
  const spare = takeEmptied(addon, spareControls);
  if (spare) return [spare.fd, spare.control];
  const fd = native("memfd_create", () => addon.memfdCreate("vmlet-control", CONTROL_SIZE));
  try {
    return [fd, native("mmap", () => addon.mapFileSharedWritable(fd, CONTROL_SIZE))];
  } catch (error) {
    addon.closeFd(fd);
    throw error;
  }
}

/** /proc/<pid>/syscall: "202 <uaddr> <op> <val> … <sp> <pc>" while the child sleeps in its park loop's FUTEX_WAIT. */
function isParked(pid: number): boolean {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/syscall`, "latin1");
  } catch {
    return false;
  }
  const f = text.trim().split(" ");
  return f.length === 9 && f[0] === "202" && BigInt(f[1]!) === CONTROL_ADDRESS && BigInt(f[2]!) === 0n && BigInt(f[8]!) === PARK_PC;
}

/** struct kvm_regs order for the frame, built once per state (states are immutable; restores reuse them). */
const regsOf = new WeakMap<CpuState, BigUint64Array>();
function frameRegs(state: CpuState): BigUint64Array {
  let regs = regsOf.get(state);
  if (!regs) {
    regs = new BigUint64Array(18);
    regs.set(state.gprs.subarray(0, 16));
    regs[REG_RIP] = state.rip;
    regs[REG_RFLAGS] = state.rflags | RFLAGS_IF;
    regsOf.set(state, regs);
  }
  return regs;
}

function initialState(rip: number, rsp: number, fsBase: number): CpuState {
  const gprs = new BigUint64Array(16);
  gprs[REG_RSP] = BigInt(rsp);
  return { gprs, rip: BigInt(rip), rflags: RFLAGS_IF, fsBase: BigInt(fsBase), gsBase: 0n, xsave: INITIAL_XSAVE };
}

function sameMaps(a: readonly GuestMapping[], b: readonly GuestMapping[]): boolean {
  return a.length === b.length && a.every((m, i) => m.start === b[i]!.start && m.size === b[i]!.size && m.prot === b[i]!.prot);
}

function describeStatus(status: number): string {
  if (status < 0) return "its status could not be read";
  if (status >= 128) return `killed by signal ${status - 128}${status - 128 === 31 ? " (SIGSYS: a 32-bit system call)" : ""}`;
  return `exit status ${status}`;
}

/**
 * The pages of `ranges` ([firstPage, endPage, ...]) within the image's data (`dataBytes`) where
 * memory differs from the image, as ranges. Holes are never read through the view (that
 * would allocate them); a working set keeps only pages with data anyway.
 */
function changedPages(memory: Uint8Array, image: Uint8Array, ranges: ArrayLike<number>, dataBytes: readonly number[]): number[] {
  const within = intersectRanges(ranges, bytesToPages(dataBytes));
  const out: number[] = [];
  for (let r = 0; r < within.length; r += 2) {
    for (let page = within[r]!; page < within[r + 1]!; page++) {
      const at = page * PAGE;
      if (Buffer.compare(memory.subarray(at, at + PAGE), image.subarray(at, at + PAGE)) === 0) continue;
      if (out.length > 0 && out[out.length - 1] === page) out[out.length - 1] = page + 1;
      else out.push(page, page + 1);
    }
  }
  return out;
}

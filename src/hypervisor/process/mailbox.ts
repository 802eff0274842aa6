/**
 * The mailbox page a process-backend child shares with its host (native/process/mailbox.h,
 * whose offsets test/process-mailbox.test.ts checks against these). The guest can write
 * it: every field read here is validated by its reader.
 */

/** The control memfd: mailbox, resume frame (read-only in the child), signal stack. */
export const CONTROL_SIZE = 0x14000;
export const MAILBOX_SIZE = 0x2000;
export const SIGNAL_STACK = { offset: 0x4000, size: 0x10000 } as const;
/** Where the child maps the control memfd: the mailbox's `state` word is at this address. */
export const CONTROL_ADDRESS = 0x5e00_0000_0000n;
/** Where /proc/<pid>/syscall shows a child that waits in its park loop. */
export const PARK_PC = 0x5f00_0010_0042n;
/** The park loop's arch_prctl(ARCH_SET_FS) returns here: the one place the child's filter allows that call. */
export const PARK_SET_FS_PC = 0x5f00_0010_00c2n;
export const MAX_MAPS = 64;
/** Working-set ranges a start record holds (the child populates them before its first exit). */
export const MAX_PREFAULT_RANGES = 280;
export const XSAVE_SIZE = 4096;

/** `state`, the futex word. */
export const enum MailboxState { GuestRuns = 0, ExitPosted = 1, Resume = 2 }

/** How a run starts (native processResume's mode). */
export const enum RunMode { WaitOnly = 0, FromMailbox = 1, FromFrame = 2 }

/** Byte offsets. */
export const MB = {
  state: 0x000,
  interrupt: 0x004,
  trackWrites: 0x008,
  writeTracking: 0x00c,
  signo: 0x010,
  code: 0x014,
  address: 0x018,
  trapno: 0x020,
  error: 0x028,
  syscall: 0x030,
  exits: 0x038,
  regs: 0x040,
  frameXfeatures: 0x0d0,
  frameXstateSize: 0x0d8,
  xsaveSize: 0x0dc,
  memorySizePages: 0x0e0,
  mapCount: 0x0e4,
  hugePages: 0x0e8,
  maps: 0x0f0,
  mapEntrySize: 24,
  fsBase: 0x6f0,
  gsBase: 0x6f8,
  prefaultCount: 0x700,
  prefaultWrites: 0x704,
  prefault: 0x708,
  prefaultEntrySize: 8,
  xsave: 0x1000,
} as const;

/** Register slots of `regs` (struct kvm_regs order). */
export const REG_RSP = 6;
export const REG_RIP = 16;
export const REG_RFLAGS = 17;

/** What native processResume returns. */
export const enum RunResult { Exit = 0, Lost = 2, Killed = 3 }

/** Exit statuses of a helper that could not start (native/process/helper.c). */
export const START_FAILURES: Readonly<Record<number, string>> = {
  70: "it was started with the wrong arguments",
  71: "it could not map the mailbox",
  72: "it could not map guest memory at the guest's addresses",
  73: "it could not lower its limits (rlimits, no_new_privs, closing fds)",
  74: "it could not install its signal handlers",
  75: "it could not install its seccomp filter",
  76: "its parent was gone before it started",
  77: "it was started ahead of need and never received its sandbox's memory",
};

/** A guest mapping: [start, start + size) of guest memory at the same address, with PROT_* bits. */
export interface GuestMapping {
  readonly start: number;
  readonly size: number;
  readonly prot: number;
}

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;

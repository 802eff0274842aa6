/* What a process-backend child shares with its host: one memfd ("control") mapped in the
 * child at fixed addresses, far above any guest address:
 *
 *   CONTROL_ADDR + 0x00000  mailbox (8 KiB, read-write): the exit record the child's
 *                           signal handler posts, registers, FPU state, start-up mappings
 *   CONTROL_ADDR + 0x02000  resume frame (8 KiB, READ-ONLY in the child): an rt_sigreturn
 *                           frame the host writes; the child enters the guest only through it
 *   CONTROL_ADDR + 0x04000  signal stack (64 KiB, read-write)
 *
 * The guest can write the mailbox and the signal stack, so the host trusts nothing in them
 * (TypeScript validates every field). It cannot write the resume frame: whatever the guest
 * did, the child resumes with the registers and FPU state the host wrote.
 * src/hypervisor/process/mailbox.ts mirrors these offsets; test/process-mailbox.test.ts compiles
 * this header and compares them. */
#ifndef VMLET_PROCESS_MAILBOX_H
#define VMLET_PROCESS_MAILBOX_H

#include <stdint.h>

#define CONTROL_ADDR 0x5e0000000000ull
#define MAILBOX_OFFSET 0x0000u
#define FRAME_OFFSET 0x2000u
#define FRAME_SIZE 0x2000u
#define SIGNAL_STACK_OFFSET 0x4000u
#define SIGNAL_STACK_SIZE 0x10000u
#define CONTROL_SIZE 0x14000u

/* The child's park loop (helper.c) sits at PARK_ADDR; its futex system call returns to
 * PARK_PC, which is what /proc/<pid>/syscall shows while the child waits there. */
#define PARK_ADDR 0x5f0000100000ull
#define PARK_PC (PARK_ADDR + 0x42)
/* Where CPUs without user FSGSBASE set the guest's FS base: the park loop's arch_prctl
 * (ARCH_SET_FS) `syscall` at PARK_ADDR + 0xc0; the filter allows that call only when it
 * returns to PARK_SET_FS_PC. */
#define PARK_SET_FS_PC (PARK_ADDR + 0xc2)
/* After posting an exit the handler enters the park loop through PARK_NOTIFY_ADDR, which
 * writes 8 bytes to the host's eventfd (NOTIFY_FD) when the frame's `notify` asks (an
 * async run: the host's event loop wakes without a thread in between). The filter allows
 * that write only when it returns to PARK_NOTIFY_PC, only to NOTIFY_FD, only 8 bytes, only
 * from PARK_NOTIFY_BUF (so it always adds 1). */
#define PARK_NOTIFY_ADDR (PARK_ADDR + 0x100)
#define PARK_NOTIFY_PC (PARK_ADDR + 0x142)
/* What the notify write sends: the resume frame's `notify` word (read-only in the child, 1). */
#define PARK_NOTIFY_BUF (CONTROL_ADDR + FRAME_OFFSET + FRAME_BASES_OFFSET + 40)
#define NOTIFY_FD 0

/* state (the futex word) */
#define MB_GUEST_RUNS 0  /* the child runs guest code (or is on its way to it) */
#define MB_EXIT_POSTED 1 /* the child's handler posted an exit and parked */
#define MB_RESUME 2      /* the host wrote the resume frame: the child sigreturns through it */

#define MB_MAX_MAPS 64
#define MB_MAX_PREFAULT 280
#define MB_XSAVE_SIZE 4096
#define MB_SIZE 8192

/* The signal the host sends to interrupt a running guest. */
#define MB_INTERRUPT_SIGNAL 12 /* SIGUSR2 */

struct mb_map {
  uint64_t start; /* guest address = offset in guest memory */
  uint64_t size;
  uint32_t prot;  /* PROT_READ | PROT_WRITE | PROT_EXEC */
  uint32_t pad;
};

/* Guest pages [first_page, end_page) the child populates at start (a snapshot's working set). */
struct mb_range {
  uint32_t first_page;
  uint32_t end_page;
};

struct mailbox {
  uint32_t state;     /* 0x000 */
  uint32_t interrupt; /* 0x004: 1 = the host wants the guest stopped; 0 = a signal is stray */
  uint32_t track_writes; /* 0x008: host -> child at start: 1 = write-protect writable guest memory (userfaultfd) */
  int32_t write_tracking; /* 0x00c: child -> host at start: 1 = armed, 0 = not asked, < 0 = -errno (no tracking) */
  /* exit record, written by the child's handler */
  int32_t signo;      /* 0x010 */
  int32_t code;       /* 0x014: si_code */
  uint64_t address;   /* 0x018: si_addr */
  uint64_t trapno;    /* 0x020 */
  uint64_t error;     /* 0x028: the CPU's error code */
  uint64_t syscall;   /* 0x030: the system call number of a SIGSYS */
  uint64_t exits;     /* 0x038: exits posted so far */
  /* registers in struct kvm_regs order: rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip rflags */
  uint64_t regs[18];  /* 0x040 */
  uint64_t frame_xfeatures; /* 0x0d0: what the kernel's signal frames hold (fx_sw_bytes) */
  uint32_t frame_xstate_size; /* 0x0d8 */
  uint32_t xsave_size; /* 0x0dc: bytes of `xsave` that hold state */
  uint32_t memory_size_pages; /* 0x0e0 */
  uint32_t map_count; /* 0x0e4 */
  uint32_t huge_pages; /* 0x0e8: host -> child at start: 1 = madvise(MADV_HUGEPAGE) the guest mappings */
  uint32_t reserved1; /* 0x0ec */
  struct mb_map maps[MB_MAX_MAPS]; /* 0x0f0 .. 0x6f0 */
  uint64_t fs_base;   /* 0x6f0 */
  uint64_t gs_base;   /* 0x6f8 */
  /* host -> child at start: guest ranges to populate after mapping guest memory, the first
   * prefault_writes of them writable (advice: failures and ranges outside the mappings are skipped) */
  uint32_t prefault_count;  /* 0x700 */
  uint32_t prefault_writes; /* 0x704 */
  struct mb_range prefault[MB_MAX_PREFAULT]; /* 0x708 .. 0xfc8 */
  uint8_t reserved3[0x1000 - 0xfc8];
  uint8_t xsave[MB_XSAVE_SIZE] __attribute__((aligned(64))); /* 0x1000: standard-format XSAVE */
};

/* The kernel's x86-64 rt_sigreturn frame (struct rt_sigframe: pretcode, then struct
 * ucontext), which the host fills and the child's rt_sigreturn reads at RSP - 8. */
struct frame_sigcontext {
  uint64_t r8, r9, r10, r11, r12, r13, r14, r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
  uint16_t cs, gs, fs, ss;
  uint64_t err, trapno, oldmask, cr2, fpstate, reserved1[8];
};

#define FRAME_FPSTATE_OFFSET 1024u
#define FRAME_BASES_OFFSET 512u

struct resume_frame {
  uint64_t pretcode;
  uint64_t uc_flags;
  uint64_t uc_link;
  uint64_t ss_sp;
  int32_t ss_flags;
  int32_t ss_pad;
  uint64_t ss_size;
  struct frame_sigcontext mcontext;
  uint64_t sigmask;
  uint8_t unused[FRAME_BASES_OFFSET - 312];
  /* Not the kernel's: FS and GS bases the park loop loads with wrfsbase/wrgsbase before the
   * sigreturn, when `fsgsbase` says the CPU lets user code (and so the guest) set them.
   * Without it the park loop loads only the FS base, with arch_prctl, and only when
   * `set_fs` says the host wrote this frame (a start or a restore): after an ordinary
   * exit the guest keeps the FS base it had. */
  uint64_t fsgsbase;
  uint64_t fs_base;
  uint64_t gs_base;
  uint64_t spin_loops; /* how many pause loops the park loop polls before it sleeps */
  uint64_t set_fs;
  uint64_t notify; /* 1: after posting an exit, also write to the host's eventfd (an async run) */
  uint8_t unused2[FRAME_FPSTATE_OFFSET - FRAME_BASES_OFFSET - 48];
  uint8_t fpstate[FRAME_SIZE - FRAME_FPSTATE_OFFSET] __attribute__((aligned(64)));
};

_Static_assert(sizeof(struct mailbox) == MB_SIZE, "mailbox is two pages");
_Static_assert(__builtin_offsetof(struct mailbox, regs) == 0x40, "regs offset");
_Static_assert(__builtin_offsetof(struct mailbox, maps) == 0xf0, "maps offset");
_Static_assert(__builtin_offsetof(struct mailbox, prefault) == 0x708, "prefault offset");
_Static_assert(__builtin_offsetof(struct mailbox, xsave) == 0x1000, "xsave offset");
_Static_assert(sizeof(struct frame_sigcontext) == 256, "struct sigcontext");
_Static_assert(__builtin_offsetof(struct resume_frame, mcontext) == 48, "uc_mcontext");
_Static_assert(__builtin_offsetof(struct resume_frame, sigmask) == 304, "uc_sigmask");
_Static_assert(__builtin_offsetof(struct resume_frame, fpstate) == FRAME_FPSTATE_OFFSET, "fpstate");
_Static_assert(sizeof(struct resume_frame) == FRAME_SIZE, "frame size");
_Static_assert(__builtin_offsetof(struct resume_frame, fsgsbase) == FRAME_BASES_OFFSET, "bases");
_Static_assert(__builtin_offsetof(struct resume_frame, notify) == FRAME_BASES_OFFSET + 40, "notify");

#endif

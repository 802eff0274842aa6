/* vmlet-process-helper: the child process of one process-backend sandbox.
 *
 * Built freestanding (no libc: nothing of the host's runtime is in the child), with no
 * writable data of its own, linked far above guest memory. A warm child (argv[2] "w",
 * started ahead of need) first waits on fd 3, a socket, for both memfds. At start it maps guest memory
 * (fd 3) at the guest's own addresses with the permissions the host listed, and the
 * control memfd (fd 4: mailbox, resume frame, signal stack; see mailbox.h) at fixed
 * addresses; then it closes every fd, drops what it can (rlimits, no new privileges,
 * death with its parent), unmaps the stack exec gave it and installs a seccomp filter that
 * lets through only futex (wait and wake, no timeout), rt_sigreturn and, from one
 * instruction of the park loop, arch_prctl(ARCH_SET_FS): any other system call, from the
 * guest or anyone, is a SIGSYS.
 *
 * From then on only two pieces of this program run besides the guest. The signal handler:
 * every guest exit (an `out`, `hlt`, a fault, a trap, a trapped system call, the host's
 * interrupt signal) is a signal; the handler posts the registers and FPU state in the
 * mailbox, wakes the host and jumps to the park loop. The park loop: it sleeps on the
 * mailbox's futex until the host says resume, loads the FS base the frame names (the
 * guest's thread pointer), then rt_sigreturns through the resume frame, which the host
 * wrote and the guest cannot. So every register the guest has after
 * a resume is the host's choice, and the host can check (in /proc/<pid>/syscall) that the
 * child sleeps in the park loop before it restores memory under it.
 *
 * The guest can write everything writable in this process (guest memory, the mailbox, the
 * signal stack): the host validates every record, bounds every wait and resets all of it
 * on restore. */
#include <asm/signal.h>
#include <asm/sigcontext.h>
#include <asm/siginfo.h>
#include <asm/ucontext.h>
#include <asm/unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/ioctl.h>
#include <linux/mman.h>
#include <linux/prctl.h>
#include <linux/resource.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <stddef.h>

#include "mailbox.h"

#define GUEST_FD 3
#define CONTROL_FD 4
#define NOTIFY_SOURCE_FD 5
#define LOWEST_GUEST_ADDRESS 0x10000ull
#define SIGKILL_ 9
#define SIGSYS_ 31

/* The layout the host writes must be the kernel's. */
_Static_assert(sizeof(struct frame_sigcontext) == sizeof(struct sigcontext), "sigcontext size");
_Static_assert(offsetof(struct frame_sigcontext, rip) == offsetof(struct sigcontext, rip), "sigcontext rip");
_Static_assert(offsetof(struct frame_sigcontext, fpstate) == offsetof(struct sigcontext, fpstate), "sigcontext fpstate");
_Static_assert(offsetof(struct resume_frame, mcontext) == 8 + offsetof(struct ucontext, uc_mcontext), "uc_mcontext");
_Static_assert(offsetof(struct resume_frame, sigmask) == 8 + offsetof(struct ucontext, uc_sigmask), "uc_sigmask");
_Static_assert(offsetof(struct resume_frame, ss_sp) == 8 + offsetof(struct ucontext, uc_stack), "uc_stack");

/* No variables: this program has no writable data a guest could keep things in. */
#define MB ((struct mailbox *)(CONTROL_ADDR + MAILBOX_OFFSET))

/* Newer than some distributions' headers (Linux 6.7+). */
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

/* Exit statuses of a failed start (the host reports them). */
enum { START_USAGE = 70, START_CONTROL, START_MAP, START_LIMITS, START_SIGNALS, START_SECCOMP, START_PARENT, START_HAND_OVER };

/* ---- system calls (the only way this process talks to the kernel) ---- */

static long sys6(long n, long a, long b, long c, long d, long e, long f) {
  register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
  return ret;
}
#define sys3(n, a, b, c) sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)

static __attribute__((noreturn)) void die(int status) {
  for (;;) sys3(__NR_exit_group, status, 0, 0);
}

void *memcpy(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  while (n--) *d++ = *s++;
  return dst;
}

void *memset(void *dst, int c, size_t n) {
  unsigned char *d = dst;
  while (n--) *d++ = (unsigned char)c;
  return dst;
}

/* ---- the exit path ---- */

/* The park loop, at PARK_ADDR (its own section): sleep while the state is "exit posted",
 * then rt_sigreturn through the resume frame. It reads nothing but constants and the
 * state word, so jumping into it with any registers ends in the host's frame, and its one
 * futex call is at a fixed place the host can recognise. */
__asm__(
  ".pushsection .park, \"ax\"\n"
  ".globl park\n"
  "park:\n"
  "1:\n"
  "  movabs $0x5e0000000000, %rdi\n" /* &MB->state */
  "  cmpl $2, (%rdi)\n"               /* MB_RESUME */
  "  je 3f\n"
  "  movabs $0x5e0000002218, %rcx\n" /* the frame's spin_loops (read-only here) */
  "  mov (%rcx), %rcx\n"
  "5:\n"
  "  test %rcx, %rcx\n"
  "  jz 6f\n"
  "  pause\n"
  "  cmpl $2, (%rdi)\n"
  "  je 3f\n"
  "  dec %rcx\n"
  "  jmp 5b\n"
  "6:\n"
  "  mov $1, %edx\n"                  /* sleep while state == MB_EXIT_POSTED */
  "  xor %esi, %esi\n"                /* FUTEX_WAIT */
  "  xor %r10d, %r10d\n"              /* no timeout */
  "  mov $202, %eax\n"                /* __NR_futex */
  "  jmp 2f\n"
  "  .org 0x40\n"
  "2:\n"
  "  syscall\n" /* at PARK_ADDR + 0x40: returns to PARK_PC */
  "  jmp 1b\n"
  "3:\n"
  "  movabs $0x5e0000002200, %rdi\n" /* the frame's bases (FRAME_BASES_OFFSET) */
  "  cmpq $0, (%rdi)\n"
  "  je 7f\n"
  "  mov 8(%rdi), %rax\n"
  "  wrfsbase %rax\n"
  "  mov 16(%rdi), %rax\n"
  "  wrgsbase %rax\n"
  "  jmp 4f\n"
  "7:\n"
  "  cmpq $0, 32(%rdi)\n"              /* set_fs */
  "  je 4f\n"
  "  mov 8(%rdi), %rsi\n"
  "  mov $0x1002, %edi\n"              /* ARCH_SET_FS */
  "  mov $158, %eax\n"                 /* __NR_arch_prctl */
  "  jmp 8f\n"
  "  .org 0xc0\n"
  "8:\n"
  "  syscall\n" /* at PARK_ADDR + 0xc0: returns to PARK_SET_FS_PC, the one arch_prctl the filter allows */
  "4:\n"
  "  movabs $0x5e0000002008, %rsp\n" /* CONTROL_ADDR + FRAME_OFFSET + 8: the frame sits at RSP - 8 */
  "  mov $15, %eax\n" /* __NR_rt_sigreturn */
  "  syscall\n"
  "  ud2\n"
  "  .org 0x100\n"
  ".globl park_notify\n"
  "park_notify:\n"                    /* PARK_NOTIFY_ADDR */
  "  movabs $0x5e0000002228, %rsi\n" /* PARK_NOTIFY_BUF: the frame's notify word (read-only here), also the 8 bytes written */
  "  cmpq $0, (%rsi)\n"
  "  je park\n"
  "  xor %edi, %edi\n"                /* NOTIFY_FD */
  "  mov $8, %edx\n"
  "  mov $1, %eax\n"                  /* __NR_write */
  "  jmp 9f\n"
  "  .org 0x140\n"
  "9:\n"
  "  syscall\n" /* at PARK_ADDR + 0x140: returns to PARK_NOTIFY_PC, the one write the filter allows */
  "  jmp park\n"
  ".popsection\n");
void park(void) __attribute__((noreturn));
void park_notify(void) __attribute__((noreturn));

/* struct sigcontext -> struct kvm_regs order. */
static void post_registers(const struct sigcontext *sc) {
  uint64_t *r = MB->regs;
  r[0] = sc->rax; r[1] = sc->rbx; r[2] = sc->rcx; r[3] = sc->rdx;
  r[4] = sc->rsi; r[5] = sc->rdi; r[6] = sc->rsp; r[7] = sc->rbp;
  r[8] = sc->r8; r[9] = sc->r9; r[10] = sc->r10; r[11] = sc->r11;
  r[12] = sc->r12; r[13] = sc->r13; r[14] = sc->r14; r[15] = sc->r15;
  r[16] = sc->rip; r[17] = sc->eflags;
}

/* The signal frame's XSAVE image, and what the kernel says it holds (its software-reserved words). */
static void post_fpu(const struct sigcontext *sc) {
  const unsigned char *image = (const unsigned char *)sc->fpstate;
  const struct _fpx_sw_bytes *sw = (const void *)(image + 464);
  uint32_t size = 512;
  if (sw->magic1 == FP_XSTATE_MAGIC1 && sw->xstate_size >= 576 && sw->xstate_size <= MB_XSAVE_SIZE) {
    size = sw->xstate_size;
    MB->frame_xfeatures = sw->xfeatures;
    MB->frame_xstate_size = sw->xstate_size;
  } else {
    MB->frame_xfeatures = 3;
    MB->frame_xstate_size = 512;
  }
  memcpy(MB->xsave, image, size);
  memset(MB->xsave + 464, 0, 48); /* the kernel's words, not guest state */
  if (size < MB_XSAVE_SIZE) memset(MB->xsave + size, 0, MB_XSAVE_SIZE - size);
  MB->xsave_size = size;
}

static void on_exit_signal(int signo, siginfo_t *info, void *context) {
  struct ucontext *uc = context;
  struct sigcontext *sc = &uc->uc_mcontext;
  /* The host clears `interrupt` between calls: an interrupt signal that arrives after it
   * was answered, or from elsewhere, is not an exit. */
  if (signo == MB_INTERRUPT_SIGNAL && __atomic_load_n(&MB->interrupt, __ATOMIC_ACQUIRE) == 0) return;
  /* An interrupt that finds the child parked came after its exit was posted (the host's
   * deadline crossed it): posting again would replace the exit's registers with the park
   * loop's. */
  if (signo == MB_INTERRUPT_SIGNAL && sc->rip >= PARK_ADDR && sc->rip < PARK_ADDR + 4096) return;
  MB->signo = signo;
  MB->code = info->si_code;
  MB->address = (uint64_t)info->si_addr;
  MB->syscall = signo == SIGSYS_ ? (uint64_t)info->si_syscall : 0;
  MB->trapno = sc->trapno;
  MB->error = sc->err;
  MB->exits++;
  const struct resume_frame *frame = (const void *)(CONTROL_ADDR + FRAME_OFFSET);
  /* Without FSGSBASE nothing here can read the bases: the ones the host last set stand. */
  uint64_t fs = frame->fs_base, gs = frame->gs_base;
  if (frame->fsgsbase) __asm__ volatile("rdfsbase %0\n\trdgsbase %1" : "=r"(fs), "=r"(gs));
  MB->fs_base = fs;
  MB->gs_base = gs;
  post_registers(sc);
  post_fpu(sc);
  __atomic_store_n(&MB->state, MB_EXIT_POSTED, __ATOMIC_RELEASE);
  sys6(__NR_futex, (long)&MB->state, FUTEX_WAKE, 0x7fffffff, 0, 0, 0); /* every waiter: the host may have a stale one too */
  park_notify();
}

/* ---- start-up ---- */

struct kernel_sigaction {
  void (*handler)(int, siginfo_t *, void *);
  unsigned long flags;
  void (*restorer)(void);
  uint64_t mask;
};

#define SA_SIGINFO_ 0x4
#define SA_ONSTACK_ 0x08000000
#define SA_RESTORER_ 0x04000000

/* Only a stray interrupt signal returns from the handler (through the kernel's frame). */
__attribute__((naked)) static void signal_return(void) {
  __asm__ volatile("mov $15, %eax\n\tsyscall\n\tud2"); /* rt_sigreturn */
}

static int install_handlers(void) {
  struct { uint64_t sp; int flags; size_t size; } stack = { CONTROL_ADDR + SIGNAL_STACK_OFFSET, 0, SIGNAL_STACK_SIZE };
  if (sys3(__NR_sigaltstack, &stack, 0, 0) != 0) return -1;
  const int signals[] = { 4 /* SIGILL */, 5 /* SIGTRAP */, 7 /* SIGBUS */, 8 /* SIGFPE */,
                          11 /* SIGSEGV */, SIGSYS_, MB_INTERRUPT_SIGNAL };
  struct kernel_sigaction action = { on_exit_signal, SA_SIGINFO_ | SA_ONSTACK_ | SA_RESTORER_, signal_return, ~0ull };
  for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
    if (sys6(__NR_rt_sigaction, signals[i], (long)&action, 0, 8, 0, 0) != 0) return -1;
  }
  uint64_t none = 0; /* unblock everything exec left blocked */
  return sys6(__NR_rt_sigprocmask, 2 /* SIG_SETMASK */, (long)&none, 0, 8, 0, 0) == 0 ? 0 : -1;
}

static int map_fixed(uint64_t at, uint64_t size, uint32_t prot, int fd, uint64_t offset) {
  long p = sys6(__NR_mmap, (long)at, (long)size, prot, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, (long)offset);
  return p == (long)at ? 0 : -1;
}

static int map_control(void) {
  if (map_fixed(CONTROL_ADDR + MAILBOX_OFFSET, MB_SIZE, PROT_READ | PROT_WRITE, CONTROL_FD, MAILBOX_OFFSET)) return -1;
  if (map_fixed(CONTROL_ADDR + FRAME_OFFSET, FRAME_SIZE, PROT_READ, CONTROL_FD, FRAME_OFFSET)) return -1;
  return map_fixed(CONTROL_ADDR + SIGNAL_STACK_OFFSET, SIGNAL_STACK_SIZE, PROT_READ | PROT_WRITE, CONTROL_FD, SIGNAL_STACK_OFFSET);
}

static int map_guest_memory(void) {
  uint32_t count = MB->map_count;
  uint64_t memory_size = (uint64_t)MB->memory_size_pages * 4096;
  if (count > MB_MAX_MAPS || memory_size > CONTROL_ADDR / 2) return -1;
  for (uint32_t i = 0; i < count; i++) {
    struct mb_map m = MB->maps[i];
    if (m.start % 4096 || m.size % 4096 || m.size == 0 || m.start < LOWEST_GUEST_ADDRESS) return -1;
    if (m.start > memory_size || m.size > memory_size - m.start) return -1;
    if (m.prot & ~(uint32_t)(PROT_READ | PROT_WRITE | PROT_EXEC)) return -1;
    if ((m.prot & PROT_WRITE) && (m.prot & PROT_EXEC)) return -1; /* never writable and executable */
    if (map_fixed(m.start, m.size, m.prot, GUEST_FD, m.start)) return -1;
    /* madvise(MADV_HUGEPAGE): the guest's faults are this process's, so the advice must be
     * on its mapping; advisory (the kernel's shmem THP setting decides), failure harmless. */
    if (MB->huge_pages) sys3(__NR_madvise, m.start, m.size, MADV_HUGEPAGE);
  }
  return 0;
}

/* Write tracking for the host's restores: a userfaultfd (of this process's mm) in async
 * write-protect mode over every writable guest mapping, so that the host's PAGEMAP_SCAN of
 * /proc/<pid>/pagemap finds the pages the guest writes. Nothing is protected here: the
 * host's first scan protects the pages memory holds data for, and a page first touched
 * later shows as written (src/hypervisor/process/write-tracking.ts); protecting all of it
 * would put a marker entry on every page (O(memory size) here, in each scan and at exit).
 * The fd stays open (fd 1: after close_range, fd 0 is the notify eventfd) for the child's life: closing it would
 * unregister the mappings. After seccomp no system call can use it. Returns 1, or -errno:
 * a failure closes the fd, which undoes every registration, and the host compares pages
 * instead. */
static int arm_write_tracking(void) {
  long fd = sys3(__NR_userfaultfd, UFFD_USER_MODE_ONLY, 0, 0); /* userfaultfd(2) */
  if (fd < 0) return (int)fd;
  struct uffdio_api api = { UFFD_API, UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED, 0 };
  long err = sys3(__NR_ioctl, fd, UFFDIO_API, &api); /* UFFDIO_API: async write-protect */
  for (uint32_t i = 0; i < MB->map_count && err == 0; i++) {
    struct mb_map m = MB->maps[i];
    if (!(m.prot & PROT_WRITE)) continue;
    struct uffdio_register reg = { { m.start, m.size }, UFFDIO_REGISTER_MODE_WP, 0 };
    err = sys3(__NR_ioctl, fd, UFFDIO_REGISTER, &reg); /* UFFDIO_REGISTER (write-protect mode) */
  }
  if (err != 0) {
    sys3(__NR_close, fd, 0, 0);
    return (int)err;
  }
  return 1;
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Whether [start, end) lies inside one guest mapping the child made that has all of `prot`. */
static int in_mapping(uint64_t start, uint64_t end, uint32_t prot) {
  for (uint32_t i = 0; i < MB->map_count && i < MB_MAX_MAPS; i++) {
    struct mb_map m = MB->maps[i];
    if (start >= m.start && end <= m.start + m.size) return (m.prot & prot) == prot;
  }
  return 0;
}

/* The snapshot's working set, mapped in bulk instead of a fault per page in the first call:
 * the first `prefault_writes` ranges (pages the guest wrote) writable, so its first writes
 * take no write-protect fault (the host's write log counts them as written until a scan
 * protects them), the rest read-only. Each page is then read once: the first access to a
 * freshly populated page still costs (~2 µs on a 2-core EPYC VM). Advice: a range outside
 * the mappings is skipped, a failed populate (an old kernel) ignored. */
static void prefault_working_set(void) {
  uint32_t count = MB->prefault_count, writes = MB->prefault_writes;
  for (uint32_t i = 0; i < count && i < MB_MAX_PREFAULT; i++) {
    struct mb_range r = MB->prefault[i];
    uint64_t start = (uint64_t)r.first_page * 4096, end = (uint64_t)r.end_page * 4096;
    uint32_t prot = i < writes ? PROT_READ | PROT_WRITE : PROT_READ;
    if (start >= end || !in_mapping(start, end, prot)) continue;
    if (sys3(__NR_madvise, start, end - start, i < writes ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) != 0) continue; /* madvise(MADV_POPULATE_*) */
    for (uint64_t at = start; at < end; at += 4096) (void)*(volatile const uint8_t *)at;
  }
}

static int lower_limits(uint64_t memory_size) {
  struct rlimit zero = { 0, 0 };
  const int zeroed[] = { RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_FSIZE, RLIMIT_CORE, RLIMIT_MEMLOCK, RLIMIT_MSGQUEUE };
  for (size_t i = 0; i < sizeof zeroed / sizeof zeroed[0]; i++) {
    if (sys3(__NR_setrlimit, zeroed[i], &zero, 0) != 0) return -1;
  }
  /* Address space: guest memory, the control memfd, this small program and the vdso. */
  struct rlimit space = { memory_size + (64ull << 20), memory_size + (64ull << 20) };
  return sys3(__NR_setrlimit, RLIMIT_AS, &space, 0) == 0 ? 0 : -1;
}

#define ARCH_SET_FS_ 0x1002
#define LOW32(x) ((uint32_t)(x))
#define HIGH32(x) ((uint32_t)((x) >> 32))

/* futex (wait without a timeout, and wake), rt_sigreturn, and arch_prctl(ARCH_SET_FS) from
 * the park loop's own instruction (PARK_SET_FS_PC); any other system call, 64-bit or
 * 32-bit, is a SIGSYS the host reports as a fault. A guest that jumps to that instruction
 * sets its own FS base, as wrfsbase would: an address for its own loads and stores, in
 * the address space it already reaches, and the frame the host wrote runs next. */
static int install_seccomp(void) {
  struct sock_filter code[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP), /* a 32-bit call (int 0x80): a fault like any other */
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_rt_sigreturn, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_arch_prctl, 0, 10),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, LOW32(PARK_SET_FS_PC), 0, 6),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer) + 4),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, HIGH32(PARK_SET_FS_PC), 0, 4),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH_SET_FS_, 0, 2),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]) + 4),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    /* write(NOTIFY_FD, PARK_NOTIFY_BUF, 8) from the park loop's notify instruction only */
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_write, 0, 18),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, LOW32(PARK_NOTIFY_PC), 0, 14),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer) + 4),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, HIGH32(PARK_NOTIFY_PC), 0, 12),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NOTIFY_FD, 0, 10),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]) + 4),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 8),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, LOW32(PARK_NOTIFY_BUF), 0, 6),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1]) + 4),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, HIGH32(PARK_NOTIFY_BUF), 0, 4),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 8, 0, 2),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2]) + 4),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_futex, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1]) + 4),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FUTEX_WAKE, 7, 0),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FUTEX_WAIT, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[3])), /* no timeout */
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[3]) + 4),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
  };
  struct sock_fprog prog = { sizeof code / sizeof code[0], code };
  return sys3(__NR_prctl, PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0 ? 0 : -1;
}

/* struct msghdr, struct cmsghdr (x86-64): the kernel's, without libc's headers. */
struct hand_over_iovec { void *base; uint64_t len; };
struct hand_over_msghdr {
  void *name; int32_t namelen; int32_t pad; struct hand_over_iovec *iov; uint64_t iovlen;
  void *control; uint64_t controllen; uint32_t flags; uint32_t pad2;
};
struct hand_over_cmsg { uint64_t len; int32_t level; int32_t type; int32_t fds[3]; int32_t pad; };
#define SOL_SOCKET_ 1
#define SCM_RIGHTS_ 1
#define MSG_CTRUNC_ 0x8
#define MSG_TRUNC_ 0x20

/* A warm child (started before its sandbox existed) waits here, on fd 3, a socket to its
 * host, for guest memory and the control memfd (SCM_RIGHTS), and puts them at fds 3 and 4
 * as a cold start has them. The host has filled the mailbox before it sends them. */
static int receive_memory(void) {
  char byte;
  struct hand_over_iovec iov = { &byte, 1 };
  struct hand_over_cmsg cmsg = { 0, 0, 0, { -1, -1, -1 }, 0 };
  struct hand_over_msghdr msg = { 0, 0, 0, &iov, 1, &cmsg, sizeof cmsg, 0, 0 };
  long n;
  do n = sys3(__NR_recvmsg, GUEST_FD, &msg, 0);
  while (n == -4 /* EINTR */);
  if (n != 1 || (msg.flags & (MSG_CTRUNC_ | MSG_TRUNC_)) || msg.controllen != sizeof cmsg) return -1;
  if (cmsg.len != 16 + sizeof cmsg.fds || cmsg.level != SOL_SOCKET_ || cmsg.type != SCM_RIGHTS_) return -1;
  /* The received fds are above 3 (the socket holds 3): each moves up to 6+ first, so that
   * no dup2 onto 3, 4 or 5 closes another one's source. */
  int32_t high[3];
  for (int i = 0; i < 3; i++) {
    high[i] = (int32_t)sys3(__NR_fcntl, cmsg.fds[i], 0 /* F_DUPFD */, 16);
    if (high[i] < 0) return -1;
  }
  for (int i = 0; i < 3; i++) {
    if (sys3(__NR_dup2, high[i], GUEST_FD + i, 0) != GUEST_FD + i) return -1;
  }
  return 0; /* leftovers go with close_range */
}

static long parse_pid(const char *s) {
  long v = 0;
  if (!s || !*s) return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return -1;
    v = v * 10 + (*s - '0');
  }
  return v;
}

/* Everything up to the signal handlers, on the stack exec gave us. */
__attribute__((used)) static void helper_start(long *stack) {
  long argc = stack[0];
  char **argv = (char **)(stack + 1);
  int warm = argc == 3 && argv[2][0] == 'w' && argv[2][1] == 0;
  if (argc != 2 && !warm) die(START_USAGE);
  /* Dies with the host; if the host is gone already, do not start at all. */
  if (sys3(__NR_prctl, PR_SET_PDEATHSIG, SIGKILL_, 0) != 0 || sys3(__NR_getppid, 0, 0, 0) != parse_pid(argv[1])) die(START_PARENT);
  if (warm && receive_memory() != 0) die(START_HAND_OVER);
  if (map_control() != 0) die(START_CONTROL);
  if (map_guest_memory() != 0) die(START_MAP);
  /* The host's eventfd stays, as NOTIFY_FD (0); every other fd goes. */
  if (sys3(__NR_dup2, NOTIFY_SOURCE_FD, NOTIFY_FD, 0) != NOTIFY_FD) die(START_LIMITS);
  if (sys3(__NR_close_range, NOTIFY_FD + 1, ~0u, 0) != 0) die(START_LIMITS);
  if (MB->track_writes) MB->write_tracking = arm_write_tracking();
  prefault_working_set(); /* after arming: what it populates is logged as written (writable) or protected by the host's first scan */
  if (sys3(__NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0) != 0) die(START_LIMITS);
  if (lower_limits((uint64_t)MB->memory_size_pages * 4096) != 0) die(START_LIMITS);
  if (install_handlers() != 0) die(START_SIGNALS);
}

/* On the signal stack: unmap the exec stack (nothing writable of ours may outlive a
 * restore), seal with seccomp, and trap into the handler for the first exit. The host
 * answers it with the guest's first registers. */
__attribute__((used, noreturn)) static void helper_seal(uint64_t exec_stack) {
  uint64_t page = exec_stack & ~4095ull;
  sys6(__NR_munmap, (long)(page - (16ull << 20)), (long)((16ull << 20) + (1ull << 20)), 0, 0, 0, 0);
  if (install_seccomp() != 0) die(START_SECCOMP);
  __asm__ volatile("int3");
  for (;;) __asm__ volatile("ud2");
}

__attribute__((naked, noreturn)) void _start(void) {
  __asm__ volatile(
    "mov %rsp, %rbx\n\t"
    "mov %rsp, %rdi\n\t"
    "and $-16, %rsp\n\t"
    "call helper_start\n\t"
    "movabs $0x5e0000014000, %rsp\n\t" /* CONTROL_ADDR + SIGNAL_STACK_OFFSET + SIGNAL_STACK_SIZE */
    "mov %rbx, %rdi\n\t"
    "call helper_seal\n\t"
    "ud2");
}

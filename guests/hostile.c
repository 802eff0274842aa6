/*
 * The hostile guest: code that attacks whatever runs it, for test/hostile-guests.test.ts.
 * On KVM most of these are faults (no system calls, the process backend's addresses are
 * not mapped); on the process backend they reach the child process's own machinery: its
 * system-call filter, its mailbox and signal stack, its park loop, its signal mask. Either
 * way the host must stay intact and the sandbox must restore to a clean state.
 */
#include <vmlet.h>

/* The process backend's fixed addresses (native/process/mailbox.h). */
#define CONTROL 0x5e0000000000ull
#define MAILBOX_RESERVED (CONTROL + 0x800)  /* unused words of the mailbox */
#define RESUME_FRAME (CONTROL + 0x2000)     /* read-only in the child */
#define SIGNAL_STACK (CONTROL + 0x4000)
#define PARK (0x5f0000100000ull)
#define PARK_SYSCALL (PARK + 0x40)
#define PARK_NOTIFY_SYSCALL (PARK + 0x140) /* write(notify eventfd, _, 8) */

static int64_t raw_syscall(int64_t nr, int64_t a, int64_t b, int64_t c) {
  int64_t ret;
  register int64_t r10 __asm__("r10") = 0;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
  return ret;
}

/* Any system call: a VM has no way into the kernel; the process backend's filter traps it. */
static int64_t do_syscall(int64_t nr, int64_t a, int64_t b, int64_t c) { return raw_syscall(nr, a, b, c); }
VMLET_EXPORT(do_syscall, I64, I64, I64, I64, I64);

/* A 32-bit system call from 64-bit code. */
static int32_t do_int80(int32_t nr) {
  int32_t ret;
  __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr) : "memory");
  return ret;
}
VMLET_EXPORT(do_int80, I32, I32);

/* futex wait with a timeout, and other futex operations the filter refuses. */
static int64_t futex_op(int64_t op, int64_t with_timeout) {
  static volatile uint32_t word = 0;
  struct { int64_t s, ns; } ts = { 0, 1000 };
  int64_t ret;
  register int64_t r10 __asm__("r10") = with_timeout ? (int64_t)(uintptr_t)&ts : 0;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(202), "D"(&word), "S"(op), "d"(1), "r"(r10) : "rcx", "r11", "memory");
  return ret;
}
VMLET_EXPORT(futex_op, I64, I64, I64);

/* Fills a range with a byte: the mailbox, the signal stack, the resume frame, anything. */
static void fill(uint64_t address, uint32_t length, uint32_t value) {
  volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)address;
  for (uint32_t i = 0; i < length; i++) p[i] = (uint8_t)value;
}
VMLET_EXPORT(fill, VOID, U64, U32, U32);

/* Reads a range and returns the OR of its bytes (0 when it is all zeros). */
static uint32_t or_of(uint64_t address, uint32_t length) {
  volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)address;
  uint32_t v = 0;
  for (uint32_t i = 0; i < length; i++) v |= p[i];
  return v;
}
VMLET_EXPORT(or_of, U32, U64, U32);

/* Leaves value in xmm15 and ymm15's upper half and rbx/r12–r15 as the call returns. */
static void stash_in_registers(uint64_t value) {
  __asm__ volatile("movq %0, %%xmm15\n\tmovq %0, %%rbx\n\tmovq %0, %%r12\n\tmovq %0, %%r13\n\tmovq %0, %%r14\n\tmovq %0, %%r15"
                   : : "r"(value) : "xmm15", "rbx", "r12", "r13", "r14", "r15");
}
VMLET_EXPORT(stash_in_registers, VOID, U64);

/* What xmm15 holds now. */
static uint64_t read_xmm15(void) {
  uint64_t v;
  __asm__ volatile("movq %%xmm15, %0" : "=r"(v));
  return v;
}
VMLET_EXPORT(read_xmm15, U64);

/* An `out READY` the guest never executes: a forged exit record points at it. */
__asm__(".pushsection .text\n.globl forged_ready\nforged_ready: outb %al, $0x10\n.popsection");
extern char forged_ready[];

/* A successful void RETURN in the output buffer, and a mailbox record of a #GP at `out READY`. */
static void forge_ready_exit(void) {
  uint8_t *out = (uint8_t *)(uintptr_t)*(volatile uint64_t *)(uintptr_t)(VMLET_CONTROL_BLOCK_ADDR + VMLET_CB_OUTPUT_ADDR);
  uint32_t magic = VMLET_MESSAGE_MAGIC, length = VMLET_MSG_HEADER_SIZE, zero = 0;
  uint16_t version = VMLET_ABI_VERSION, kind = VMLET_MSG_RETURN;
  memcpy(out + VMLET_MSG_MAGIC, &magic, 4);
  memcpy(out + VMLET_MSG_VERSION, &version, 2);
  memcpy(out + VMLET_MSG_KIND, &kind, 2);
  memcpy(out + VMLET_MSG_LENGTH, &length, 4);
  memcpy(out + VMLET_MSG_COUNT, &zero, 4);
  memcpy(out + VMLET_MSG_A, &zero, 4);
  memcpy(out + VMLET_MSG_B, &zero, 4);
  volatile uint8_t *mb = (volatile uint8_t *)(uintptr_t)CONTROL;
  *(volatile int32_t *)(mb + 0x10) = 11;  /* signo: SIGSEGV */
  *(volatile uint64_t *)(mb + 0x20) = 13; /* trapno: #GP */
  *(volatile uint64_t *)(mb + 0x40 + 16 * 8) = (uint64_t)(uintptr_t)forged_ready; /* rip */
}

/* Pretends to have exited (a READY record in the mailbox, the futex woken) and keeps
 * running, writing `value` at `address` (0: nowhere): the host must not mistake it for a
 * stopped guest when it replaces memory under it (a restore, a parked VM's reuse). */
static void fake_exit_then_spin(uint64_t value, uint64_t address) {
  volatile uint32_t *state = (volatile uint32_t *)(uintptr_t)CONTROL;
  fill(MAILBOX_RESERVED, 64, (uint32_t)value);
  forge_ready_exit();
  *state = 1; /* MB_EXIT_POSTED */
  raw_syscall(202, (int64_t)CONTROL, 1 /* FUTEX_WAKE */, 1);
  for (;;) {
    if (address) *(volatile uint64_t *)(uintptr_t)address = value;
    __asm__ volatile("" ::: "memory");
  }
}
VMLET_EXPORT(fake_exit_then_spin, VOID, U64, U64);

/* Jumps into the child's park loop with its own registers. */
static void jump_to_park(void) {
  volatile uint32_t *state = (volatile uint32_t *)(uintptr_t)CONTROL;
  *state = 1;
  __asm__ volatile("movq %0, %%rax\n\tjmp *%%rax" : : "r"(PARK) : "rax", "memory");
}
VMLET_EXPORT(jump_to_park, VOID);

/* Jumps to the park loop's `syscall` with rax = fork: the filter must trap it. */
static void jump_to_syscall_gadget(int64_t nr) {
  __asm__ volatile("movq %0, %%rax\n\tmovq %1, %%rcx\n\tjmp *%%rcx" : : "r"(nr), "r"(PARK_SYSCALL) : "rax", "rcx", "memory");
}
VMLET_EXPORT(jump_to_syscall_gadget, VOID, I64);

/* Jumps to the park loop's notify `syscall` as write(fd, buffer, count): the filter allows
 * only the notify eventfd and 8 bytes; the one it allows ends in the host's frame. */
static void jump_to_notify_gadget(int64_t fd, int64_t count) {
  static uint64_t one = 1;
  __asm__ volatile("movq $1, %%rax\n\tmovq %0, %%rdi\n\tmovq %1, %%rsi\n\tmovq %2, %%rdx\n\tmovq %3, %%rcx\n\tjmp *%%rcx"
                   : : "r"(fd), "r"(&one), "r"(count), "r"(PARK_NOTIFY_SYSCALL) : "rax", "rdi", "rsi", "rdx", "rcx", "memory");
}
VMLET_EXPORT(jump_to_notify_gadget, VOID, I64, I64);


/* Spins until it is stopped. */
static void spin(void) {
  for (;;) __asm__ volatile("" ::: "memory");
}
VMLET_EXPORT(spin, VOID);

/* Blocks every signal with a forged rt_sigreturn frame, then spins: only SIGKILL can stop it. */
static void spin_here(void) {
  for (;;) __asm__ volatile("" ::: "memory");
}

static void block_signals_and_spin(void) {
  static uint64_t frame[64] __attribute__((aligned(16)));
  static uint8_t stack[4096] __attribute__((aligned(16)));
  for (int i = 0; i < 64; i++) frame[i] = 0;
  /* struct rt_sigframe minus pretcode: uc_flags, uc_link, uc_stack (3), sigcontext (32), sigmask */
  frame[3] = 2; /* uc_stack.ss_flags = SS_DISABLE: a zero-sized stack would be refused */
  uint64_t *sc = &frame[5];
  sc[16] = (uint64_t)(uintptr_t)&spin_here; /* rip */
  sc[15] = (uint64_t)(uintptr_t)(stack + sizeof stack - 8); /* rsp */
  sc[17] = 0x202;                                  /* eflags */
  sc[18] = 0x33 | (0x2bull << 48);                 /* cs, gs, fs, ss */
  frame[5 + 32] = ~0ull;                           /* uc_sigmask: everything blocked */
  __asm__ volatile("movq %0, %%rsp\n\tmovq $15, %%rax\n\tsyscall" : : "r"(&frame[0]) : "rax", "memory");
}
VMLET_EXPORT(block_signals_and_spin, VOID);

/* Writes into the helper's own code: it is mapped read-execute. */
static void write_helper_code(void) { fill(PARK, 8, 0xcc); }
VMLET_EXPORT(write_helper_code, VOID);

/* Puts `value` in a heap page and returns its address, for a leak test. */
static uint64_t leave_in_heap(uint64_t value) {
  uint64_t *p = malloc(4096);
  if (!p) return 0;
  for (int i = 0; i < 512; i++) p[i] = value;
  return (uint64_t)(uintptr_t)p;
}
VMLET_EXPORT(leave_in_heap, U64, U64);

/* Reads a word anywhere in guest memory. */
static uint64_t peek(uint64_t address) { return *(volatile uint64_t *)(uintptr_t)address; }
VMLET_EXPORT(peek, U64, U64);

static int32_t ok(void) { return 1; }
VMLET_EXPORT(ok, I32);

/* Puts a well-formed message of `kind` in the output buffer: header (a, b) and, with `text`,
   one string value. A port exit that reads it finds nothing wrong but the exit itself. */
static void put_message(uint16_t kind, uint32_t a, uint32_t b, const char *text) {
  uint8_t *out = (uint8_t *)(uintptr_t)*(volatile uint64_t *)(uintptr_t)(VMLET_CONTROL_BLOCK_ADDR + VMLET_CB_OUTPUT_ADDR);
  uint32_t magic = VMLET_MESSAGE_MAGIC, length = VMLET_MSG_HEADER_SIZE, count = 0;
  uint16_t version = VMLET_ABI_VERSION;
  if (text) {
    uint32_t tag = VMLET_T_STRING, len = (uint32_t)strlen(text) + 1;
    memcpy(out + length, &tag, 4);
    memcpy(out + length + 4, &len, 4);
    memcpy(out + length + VMLET_VALUE_HEADER_SIZE, text, len);
    length += VMLET_VALUE_HEADER_SIZE + ((len + 7) & ~7u);
    count = 1;
  }
  memcpy(out + VMLET_MSG_MAGIC, &magic, 4);
  memcpy(out + VMLET_MSG_VERSION, &version, 2);
  memcpy(out + VMLET_MSG_KIND, &kind, 2);
  memcpy(out + VMLET_MSG_LENGTH, &length, 4);
  memcpy(out + VMLET_MSG_COUNT, &count, 4);
  memcpy(out + VMLET_MSG_A, &a, 4);
  memcpy(out + VMLET_MSG_B, &b, 4);
}

/* The message each protocol port reads, well-formed: a void RETURN, a HOST_CALL of a
   function the host lacks, a LOG at info level. */
static void put_message_for(uint32_t port) {
  if (port == VMLET_PORT_READY) put_message(VMLET_MSG_RETURN, VMLET_STATUS_OK, 0, 0);
  else if (port == VMLET_PORT_HOST_CALL) put_message(VMLET_MSG_HOST_CALL, 0, 0, "no_such_host_function");
  else if (port == VMLET_PORT_LOG) put_message(VMLET_MSG_LOG, 0, VMLET_LOG_INFO, "wide out");
}

/* `in` from a port, after the message the port reads: an exit on a protocol port
   (0x10–0x13), #GP elsewhere. */
static void port_in(uint32_t port) {
  uint32_t v = 0;
  put_message_for(port);
  __asm__ volatile("inb %%dx, %%al" : "+a"(v) : "d"((uint16_t)port) : "memory");
}
VMLET_EXPORT(port_in, VOID, U32);

/* An `out` of 1, 2 or 4 bytes after the message the port reads: the ABI's exits are
   one-byte outs; a wide one also reaches the ports after `port`, which the TSS I/O bitmap
   opens only up to 0x13. */
static void port_out(uint32_t port, uint32_t width) {
  uint16_t dx = (uint16_t)port;
  put_message_for(port);
  if (width == 4) __asm__ volatile("outl %%eax, %%dx" : : "a"(0), "d"(dx) : "memory");
  else if (width == 2) __asm__ volatile("outw %%ax, %%dx" : : "a"(0), "d"(dx) : "memory");
  else __asm__ volatile("outb %%al, %%dx" : : "a"(0), "d"(dx) : "memory");
}
VMLET_EXPORT(port_out, VOID, U32, U32);

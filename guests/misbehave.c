/*
 * The misbehaving guest: apart from a few well-behaved helpers (ok,
 * stack_address, data_code_address, host_then_spin), every export breaks the
 * sandbox in one specific way — never returning, CPU faults, aborts, out of
 * memory, and messages that violate the wire format. Used by
 * test/misbehaving-guests.test.ts and test/cancellation.test.ts.
 */
#include <vmlet.h>

/* The SDK keeps its buffer pointers internal; a misbehaving guest reads them
 * straight from the control block to write messages the SDK never would. */
#define CB_U32(off) (*(volatile uint32_t *)(uintptr_t)(VMLET_CONTROL_BLOCK_ADDR + (off)))
#define CB_U64(off) (*(volatile uint64_t *)(uintptr_t)(VMLET_CONTROL_BLOCK_ADDR + (off)))
#define EXIT(port) __asm__ volatile("outb %%al, %0" : : "N"(port), "a"(0) : "memory")

static uint8_t *out_buffer(void) { return (uint8_t *)(uintptr_t)CB_U64(VMLET_CB_OUTPUT_ADDR); }
static uint32_t out_size(void) { return CB_U32(VMLET_CB_OUTPUT_SIZE); }

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Writes a message header; `length` is taken as given, however wrong. */
static void header(uint8_t *buf, uint16_t kind, uint32_t length, uint32_t count, uint32_t a, uint32_t b) {
  uint16_t version = VMLET_ABI_VERSION;
  put32(buf + VMLET_MSG_MAGIC, VMLET_MESSAGE_MAGIC);
  memcpy(buf + VMLET_MSG_VERSION, &version, 2);
  memcpy(buf + VMLET_MSG_KIND, &kind, 2);
  put32(buf + VMLET_MSG_LENGTH, length);
  put32(buf + VMLET_MSG_COUNT, count);
  put32(buf + VMLET_MSG_A, a);
  put32(buf + VMLET_MSG_B, b);
}

/* Leaves through `port` and never lets the SDK write a proper message after it. */
static _Noreturn void leave_and_hang(uint16_t port) {
  if (port == VMLET_PORT_READY) EXIT(VMLET_PORT_READY);
  else EXIT(VMLET_PORT_HOST_CALL);
  for (;;) __asm__ volatile("" ::: "memory");
}

/* ---- well-behaved helpers ---- */

static int32_t ok(void) { return 1; }
VMLET_EXPORT(ok, I32);

/* Address of a local variable: somewhere in the top page of the stack. */
static uint64_t stack_address(void) {
  volatile uint8_t local = 0;
  return (uint64_t)(uintptr_t)&local;
}
VMLET_EXPORT(stack_address, U64);

/* Calls the host's tick() (void -> void), then spins: lets a host function kill
 * a call that would otherwise never end. */
static void host_then_spin(void) {
  vmlet_host_call("tick", VMLET_T_VOID, NULL, 0, NULL);
  for (;;) __asm__ volatile("" ::: "memory");
}
VMLET_EXPORT(host_then_spin, VOID);

/* ---- never returns ---- */

static void spin_forever(void) {
  for (;;) __asm__ volatile("" ::: "memory");
}
VMLET_EXPORT(spin_forever, VOID);

/* ---- CPU faults ---- */

/* Through a volatile so the compiler cannot see the NULL and emit a trap instead. */
static volatile uintptr_t null_address = 0;

static void null_write(void) { *(volatile int32_t *)null_address = 1; }
VMLET_EXPORT(null_write, VOID);

static int32_t null_read(void) { return *(volatile int32_t *)null_address; }
VMLET_EXPORT(null_read, I32);

/* Each frame escapes (its address goes to the next call) and the result is used
 * after the call, so the recursion cannot become a loop. */
static __attribute__((noinline)) uint64_t recurse(volatile uint8_t *previous, uint64_t depth) {
  volatile uint8_t frame[512];
  frame[0] = (uint8_t)depth;
  if (previous) previous[1] = frame[0];
  if (depth == UINT64_MAX) return 0; /* never: keeps -Winfinite-recursion quiet */
  uint64_t below = recurse(frame, depth + 1);
  __asm__ volatile("" ::: "memory");
  return below + frame[1];
}

static uint64_t stack_overflow(void) { return recurse(NULL, 0); }
VMLET_EXPORT(stack_overflow, U64);

static int32_t divide_by_zero(void) {
  volatile int32_t a = 1, b = 0;
  return a / b;
}
VMLET_EXPORT(divide_by_zero, I32);

static void undefined_instruction(void) { __asm__ volatile("ud2"); }
VMLET_EXPORT(undefined_instruction, VOID);

static void breakpoint(void) { __asm__ volatile("int3"); }
VMLET_EXPORT(breakpoint, VOID);

/* hlt at CPL 3: #GP(0). */
static void privileged(void) { __asm__ volatile("hlt"); }
VMLET_EXPORT(privileged, VOID);

/* Code pages are read-execute: the write is a protection-violation #PF. */
static void write_code(void) {
  volatile uintptr_t target = (uintptr_t)&ok;
  *(volatile uint8_t *)target = 0xc3;
}
VMLET_EXPORT(write_code, VOID);

/* 0x1000 is the supervisor-only GDT/TSS page: a user write is a protection #PF. */
static void write_system(void) {
  volatile uintptr_t target = 0x1000;
  *(volatile uint64_t *)target = 0;
}
VMLET_EXPORT(write_system, VOID);

/* Data pages are no-execute: jumping into one is an instruction-fetch #PF. */
static uint8_t data_code[16];

static uint64_t exec_data(void) {
  data_code[0] = 0xc3; /* ret */
  void (*volatile fn)(void) = (void (*)(void))(uintptr_t)data_code;
  fn();
  return (uint64_t)(uintptr_t)data_code;
}
VMLET_EXPORT(exec_data, U64);

/* Address exec_data jumps to, so a test can compare it with the fault address. */
static uint64_t data_code_address(void) { return (uint64_t)(uintptr_t)data_code; }
VMLET_EXPORT(data_code_address, U64);

/* Port 0x80 is outside the TSS I/O bitmap: #GP. */
static void write_port(void) { __asm__ volatile("outb %%al, $0x80" : : "a"(0)); }
VMLET_EXPORT(write_port, VOID);

/* ---- aborts ---- */

static void abort_with_message(void) { vmlet_abort("custom abort message"); }
VMLET_EXPORT(abort_with_message, VOID);

static void panic_formatted(int32_t n) { vmlet_panic("panic number %d", n); }
VMLET_EXPORT(panic_formatted, VOID, I32);

/* ---- out of memory ---- */

/* Returns 1 if malloc(1 TiB) unexpectedly succeeded. */
static int32_t huge_alloc(void) {
  void *p = malloc(1ull << 40);
  if (!p) vmlet_out_of_memory();
  return 1;
}
VMLET_EXPORT(huge_alloc, I32);

static void alloc_until_oom(void) {
  for (;;) {
    void *p = malloc(1u << 20);
    if (!p) vmlet_out_of_memory();
    memset(p, 0xab, 1u << 20);
  }
}
VMLET_EXPORT(alloc_until_oom, VOID);

/* ---- wire-format violations ---- */

/* Random bytes where the RETURN message should be. */
static void garbage_output(void) {
  uint8_t *buf = out_buffer();
  uint32_t size = out_size();
  for (uint32_t i = 0; i + 8 <= size; i += 8) {
    uint64_t r = vmlet_random_u64();
    memcpy(buf + i, &r, 8);
  }
  leave_and_hang(VMLET_PORT_READY);
}
VMLET_EXPORT(garbage_output, VOID);

/* A RETURN header whose length runs past the end of the output buffer. */
static int32_t bad_length(void) {
  uint8_t *buf = out_buffer();
  header(buf, VMLET_MSG_RETURN, out_size() + 4096, 1, VMLET_STATUS_OK, VMLET_T_I32);
  put32(buf + 24, VMLET_T_I32);
  put32(buf + 28, 8);
  memset(buf + 32, 0, 8);
  leave_and_hang(VMLET_PORT_READY);
}
VMLET_EXPORT(bad_length, I32);

/* A RETURN whose string value has no terminating NUL. */
static const char *bad_string(void) {
  uint8_t *buf = out_buffer();
  header(buf, VMLET_MSG_RETURN, 24 + 8 + 8, 1, VMLET_STATUS_OK, VMLET_T_STRING);
  put32(buf + 24, VMLET_T_STRING);
  put32(buf + 28, 8);
  memcpy(buf + 32, "abcdefgh", 8);
  leave_and_hang(VMLET_PORT_READY);
}
VMLET_EXPORT(bad_string, STRING);

/* Declared to return i32, sends a well-formed string instead. */
static int32_t lying_return(void) {
  uint8_t *buf = out_buffer();
  header(buf, VMLET_MSG_RETURN, 24 + 8 + 8, 1, VMLET_STATUS_OK, VMLET_T_STRING);
  put32(buf + 24, VMLET_T_STRING);
  put32(buf + 28, 3);
  memcpy(buf + 32, "hi\0\0\0\0\0\0", 8);
  leave_and_hang(VMLET_PORT_READY);
}
VMLET_EXPORT(lying_return, I32);

/* A HOST_CALL whose argument claims ~4 GiB of payload. */
static int32_t host_call_garbage(void) {
  uint8_t *buf = out_buffer();
  header(buf, VMLET_MSG_HOST_CALL, 24 + 16 + 16, 2, 0, VMLET_T_VOID);
  put32(buf + 24, VMLET_T_STRING); /* the name: "tick" */
  put32(buf + 28, 5);
  memcpy(buf + 32, "tick\0\0\0\0", 8);
  put32(buf + 40, VMLET_T_BYTES); /* the argument: length far past the message */
  put32(buf + 44, 0xfffffff0u);
  memset(buf + 48, 0, 8);
  leave_and_hang(VMLET_PORT_HOST_CALL);
}
VMLET_EXPORT(host_call_garbage, I32);

/* Test guest for thread-local storage and the stack protector (test/guest-tls.test.ts).
 * Built with -fstack-protector-strong (guests/Makefile): every function with a local array
 * checks the canary at %fs:0x28 on return. */
#include <vmlet.h>

/* .tdata: initial values the host copies into the thread block. */
static __thread int32_t counter = 41;
static __thread uint64_t pattern = 0x1122334455667788ull;
/* .tbss: zero until written. */
static __thread uint64_t zeroed;
static __thread uint8_t zero_block[300];
/* The strictest alignment a guest may ask of thread-local data here is a page's. */
static __thread _Alignas(64) uint8_t aligned[64] = { 7 };

static int32_t tls_bump(void) { return ++counter; }
VMLET_EXPORT(tls_bump, I32);

static int32_t tls_counter(void) { return counter; }
VMLET_EXPORT(tls_counter, I32);

static uint64_t tls_pattern(void) { return pattern; }
VMLET_EXPORT(tls_pattern, U64);

/* The sum of every .tbss byte plus `zeroed`: 0 in a fresh or restored sandbox. */
static uint64_t tls_zero_sum(void) {
  uint64_t sum = zeroed;
  for (unsigned i = 0; i < sizeof zero_block; i++) sum += zero_block[i];
  return sum;
}
VMLET_EXPORT(tls_zero_sum, U64);

static void tls_dirty(uint64_t value) {
  zeroed = value;
  for (unsigned i = 0; i < sizeof zero_block; i++) zero_block[i] = (uint8_t)value;
  pattern = ~value;
}
VMLET_EXPORT(tls_dirty, VOID, U64);

/* %fs:0, the thread control block's self pointer. */
static uint64_t tls_self(void) {
  uint64_t self;
  __asm__ volatile("mov %%fs:0, %0" : "=r"(self));
  return self;
}
VMLET_EXPORT(tls_self, U64);

/* Where `counter` lives (its address goes through %fs:0, the self pointer). */
static uint64_t tls_counter_address(void) { return (uint64_t)(uintptr_t)&counter; }
VMLET_EXPORT(tls_counter_address, U64);

/* Whether the 64-byte-aligned variable is aligned and holds its initial value; then changes it. */
static bool tls_aligned_ok(void) {
  bool ok = (uintptr_t)aligned % 64 == 0 && aligned[0] == 7 && aligned[63] == 0;
  aligned[0]++;
  return ok;
}
VMLET_EXPORT(tls_aligned_ok, BOOL);

/* %fs:0x28, the stack-protector canary. */
static uint64_t stack_canary(void) {
  uint64_t canary;
  __asm__ volatile("mov %%fs:0x28, %0" : "=r"(canary));
  return canary;
}
VMLET_EXPORT(stack_canary, U64);

/* Writes n bytes into a 16-byte local array: past 16 that tramples the canary, and the
 * check on return calls __stack_chk_fail. The writes go through a volatile pointer so the
 * compiler cannot see (or drop) the overflow. */
static uint32_t fill_local(uint32_t n) {
  char buf[16];
  volatile char *p = buf;
  for (uint32_t i = 0; i < n; i++) p[i] = (char)(0x41 + i % 26);
  uint32_t sum = 0;
  for (uint32_t i = 0; i < 16; i++) sum += (uint8_t)p[i];
  return sum;
}
VMLET_EXPORT(fill_local, U32, U32);

/* Points FS at the user data segment (base 0), as any CPL-3 code can, then reads `counter`. */
static int32_t reload_fs_selector(void) {
  __asm__ volatile("mov %0, %%fs" : : "r"((uint16_t)0x2b) : "memory");
  return counter;
}
VMLET_EXPORT(reload_fs_selector, I32);

/* wrfsbase: #UD where the CPU does not let user code set its FS base. */
static int32_t write_fs_base(uint64_t value) {
  __asm__ volatile("wrfsbase %0" : : "r"(value) : "memory");
  return counter;
}
VMLET_EXPORT(write_fs_base, I32, U64);

/* arch_prctl(code, value) from the guest's own code. */
static int64_t own_arch_prctl(uint64_t code, uint64_t value) {
  int64_t ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(158), "D"(code), "S"(value) : "rcx", "r11", "memory");
  return ret;
}
VMLET_EXPORT(own_arch_prctl, I64, U64, U64);

/* arch_prctl(code, value) through the `syscall` at `address` (e.g. the process backend's
 * park loop, whose arch_prctl is the only one the child's filter allows). */
static void jump_to_arch_prctl(uint64_t address, uint64_t code, uint64_t value) {
  __asm__ volatile("mov %0, %%rdi\n\tmov %1, %%rsi\n\tmov $158, %%eax\n\tjmp *%2"
                   : : "r"(code), "r"(value), "r"(address) : "rax", "rdi", "rsi", "memory");
}
VMLET_EXPORT(jump_to_arch_prctl, VOID, U64, U64, U64);

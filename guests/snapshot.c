/* Test guest for snapshots: state in statics, the heap, FPU control state and
 * registers, pages it can dirty on demand, randomness, logging and faults. */
#include <vmlet.h>

static int32_t counter;
static double value;
static uint8_t *heap_block;
static uint32_t heap_len;
/* 256 pages the guest can dirty on demand (in .bss, so they are zero in the image). */
static uint8_t scratch_pages[256 * 4096] __attribute__((aligned(4096)));

static int32_t bump(void) { return ++counter; }
VMLET_EXPORT(bump, I32);

static int32_t get_counter(void) { return counter; }
VMLET_EXPORT(get_counter, I32);

static void set_value(double v) { value = v; }
VMLET_EXPORT(set_value, VOID, F64);

static double get_value(void) { return value; }
VMLET_EXPORT(get_value, F64);

/* Allocates n bytes on the heap filled with `seed + i`. */
static bool heap_fill(uint32_t n, uint32_t seed) {
  free(heap_block);
  heap_block = malloc(n);
  if (!heap_block) return false;
  heap_len = n;
  for (uint32_t i = 0; i < n; i++) heap_block[i] = (uint8_t)(seed + i);
  return true;
}
VMLET_EXPORT(heap_fill, BOOL, U32, U32);

/* Checks the heap block still holds `seed + i`. */
static bool heap_check(uint32_t seed) {
  if (!heap_block) return false;
  for (uint32_t i = 0; i < heap_len; i++)
    if (heap_block[i] != (uint8_t)(seed + i)) return false;
  return true;
}
VMLET_EXPORT(heap_check, BOOL, U32);

/* Writes one byte into each of the first n scratch pages. */
static uint32_t touch_pages(uint32_t n, uint32_t byte) {
  if (n > 256) n = 256;
  for (uint32_t i = 0; i < n; i++) scratch_pages[i * 4096] = (uint8_t)byte;
  return n;
}
VMLET_EXPORT(touch_pages, U32, U32, U32);

/* Sum of the first byte of every scratch page. */
static uint32_t scratch_sum(void) {
  uint32_t sum = 0;
  for (uint32_t i = 0; i < 256; i++) sum += scratch_pages[i * 4096];
  return sum;
}
VMLET_EXPORT(scratch_sum, U32);

/* MXCSR: SSE control state (rounding mode) that the guest can change and a snapshot must keep. */
static uint32_t set_rounding(uint32_t mode) {
  uint32_t mxcsr;
  __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
  mxcsr = (mxcsr & ~0x6000u) | ((mode & 3u) << 13);
  __asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
  return mxcsr;
}
VMLET_EXPORT(set_rounding, U32, U32);

static uint32_t get_rounding(void) {
  uint32_t mxcsr;
  __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
  return (mxcsr >> 13) & 3u;
}
VMLET_EXPORT(get_rounding, U32);

/* 1/3 under the current rounding mode: differs between round-down and round-up. */
static double third(void) {
  volatile double one = 1.0, three = 3.0;
  return one / three;
}
VMLET_EXPORT(third, F64);

/* FPU state that lives only in registers between calls, so it survives a call unless
 * something reloads it (test/fpu-restore.test.ts): xmm15 (no code here uses it), the
 * whole MXCSR and the x87 control word. */
static void xmm_put(uint64_t v) { __asm__ volatile("movq %0, %%xmm15" : : "r"(v) : "xmm15"); }
VMLET_EXPORT(xmm_put, VOID, U64);

static uint64_t xmm_get(void) {
  uint64_t v;
  __asm__ volatile("movq %%xmm15, %0" : "=r"(v));
  return v;
}
VMLET_EXPORT(xmm_get, U64);

static void set_mxcsr(uint32_t v) { __asm__ volatile("ldmxcsr %0" : : "m"(v)); }
VMLET_EXPORT(set_mxcsr, VOID, U32);

static uint32_t get_mxcsr(void) {
  uint32_t v;
  __asm__ volatile("stmxcsr %0" : "=m"(v));
  return v;
}
VMLET_EXPORT(get_mxcsr, U32);

static void set_x87_cw(uint32_t v) {
  uint16_t cw = (uint16_t)v;
  __asm__ volatile("fldcw %0" : : "m"(cw));
}
VMLET_EXPORT(set_x87_cw, VOID, U32);

static uint32_t get_x87_cw(void) {
  uint16_t cw;
  __asm__ volatile("fnstcw %0" : "=m"(cw));
  return cw;
}
VMLET_EXPORT(get_x87_cw, U32);

/* State fxrstor64 does not load: the upper half of ymm15 (AVX) and PKRU. vmlet leaves
 * CR4.OSXSAVE and CR4.PKE clear, so these raise #UD on hardware KVM; on PVM they run. */
static void ymm_hi_put(uint64_t v) {
  __asm__ volatile("vmovq %0, %%xmm14\n\tvinsertf128 $1, %%xmm14, %%ymm15, %%ymm15" : : "r"(v) : "xmm14", "xmm15");
}
VMLET_EXPORT(ymm_hi_put, VOID, U64);

static uint64_t ymm_hi_get(void) {
  uint64_t v;
  __asm__ volatile("vextractf128 $1, %%ymm15, %%xmm14\n\tvmovq %%xmm14, %0" : "=r"(v) : : "xmm14");
  return v;
}
VMLET_EXPORT(ymm_hi_get, U64);

/* Only key 1's bits are meant to be set: every page of the guest has key 0. */
static void pkru_put(uint32_t v) { __asm__ volatile("wrpkru" : : "a"(v), "c"(0), "d"(0)); }
VMLET_EXPORT(pkru_put, VOID, U32);

static uint32_t pkru_get(void) {
  uint32_t a, d;
  __asm__ volatile("rdpkru" : "=a"(a), "=d"(d) : "c"(0));
  return a;
}
VMLET_EXPORT(pkru_get, U32);

static uint64_t random_u64(void) { return vmlet_random_u64(); }
VMLET_EXPORT(random_u64, U64);

static int32_t log_at(int32_t level) {
  vmlet_log(level, __FILE__, __LINE__, "record at level %d", level);
  return level;
}
VMLET_EXPORT(log_at, I32, I32);

static int32_t call_host(int32_t x) {
  vmlet_value arg = vmlet_i32(x), result;
  if (vmlet_host_call("host_add_one", VMLET_T_I32, &result, 1, &arg) != 0) return -1;
  return result.as.i32;
}
VMLET_EXPORT(call_host, I32, I32);

/* Misbehaviour, each after changing state so a restore has something to undo. */
static void null_write(void) {
  counter += 1000;
  *(volatile int *)0 = 1;
}
VMLET_EXPORT(null_write, VOID);

static void divide_by_zero(void) {
  counter += 1000;
  volatile int zero = 0;
  counter = counter / zero;
}
VMLET_EXPORT(divide_by_zero, VOID);

static void undefined_instruction(void) {
  counter += 1000;
  __asm__ volatile("ud2");
}
VMLET_EXPORT(undefined_instruction, VOID);

static void spin_forever(void) {
  counter += 1000;
  for (;;) __asm__ volatile("" ::: "memory");
}
VMLET_EXPORT(spin_forever, VOID);

static void abort_now(void) {
  counter += 1000;
  vmlet_abort("aborting on purpose");
}
VMLET_EXPORT(abort_now, VOID);

static __attribute__((noinline)) uint64_t overflow(volatile uint8_t *previous, uint64_t depth) {
  volatile uint8_t frame[512];
  frame[0] = (uint8_t)depth;
  if (previous) previous[1] = frame[0];
  if (depth == UINT64_MAX) return 0; /* never: keeps -Winfinite-recursion quiet */
  uint64_t below = overflow(frame, depth + 1);
  __asm__ volatile("" ::: "memory");
  return below + frame[1];
}
static void stack_overflow(void) {
  counter += 1000;
  (void)overflow(NULL, 0);
}
VMLET_EXPORT(stack_overflow, VOID);

/* Leaves non-zero bytes in 16 KiB of stack below the call, then returns. The next READY's
 * FPU area (vmlet__ready, guest/src/start.S) lies in that stack, so its XSAVE header starts
 * out as this garbage: the SDK must clear all of it, XSTATE_BV included, or the reload after
 * the exit faults (issue 11, item 18). Returns how many bytes it wrote. */
static __attribute__((noinline)) uint32_t dirty_stack(void) {
  volatile uint8_t area[16384];
  for (uint32_t i = 0; i < sizeof area; i++) area[i] = 0xff;
  return (uint32_t)sizeof area;
}
VMLET_EXPORT(dirty_stack, U32);

/* Writes `value` at `address`: the host's tests aim it at supervisor pages (page tables,
 * IDT, TSS), which must fault instead of changing what a later snapshot stores. */
static void poke(uint64_t address, uint32_t value) { *(volatile uint32_t *)(uintptr_t)address = value; }
VMLET_EXPORT(poke, VOID, U64, U32);

/* Writes `byte` into the first byte of each 4 KiB page of [address, address + size): tests
 * and benchmarks aim it at the heap to touch many pages in one call (bench/huge-pages.ts).
 * Returns the pages written. */
static uint32_t touch_range(uint64_t address, uint64_t size, uint32_t byte) {
  uint32_t pages = 0;
  for (uint64_t at = address; at < address + size; at += 4096, pages++) *(volatile uint8_t *)(uintptr_t)at = (uint8_t)byte;
  return pages;
}
VMLET_EXPORT(touch_range, U32, U64, U64, U32);

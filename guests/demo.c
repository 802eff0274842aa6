/* The demo guest: a few functions of each type and a host callback. */
#include <vmlet.h>

static int32_t add(int32_t a, int32_t b) { return a + b; }
VMLET_EXPORT(add, I32, I32, I32);

static const char *echo(const char *s) { return s; }
VMLET_EXPORT(echo, STRING, STRING);

static double mean(double a, double b, double c) { return (a + b + c) / 3.0; }
VMLET_EXPORT(mean, F64, F64, F64, F64);

/* Counts bytes equal to `value`: bytes in, u32 out. */
static uint32_t count_byte(vmlet_bytes data, uint32_t value) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < data.len; i++) n += data.ptr[i] == value;
  return n;
}
VMLET_EXPORT(count_byte, U32, BYTES, U32);

/* Calls the host's log_line for each of `n` lines, then returns how many it sent. */
static int32_t greet(const char *name, int32_t n) {
  char line[128];
  for (int32_t i = 0; i < n; i++) {
    snprintf(line, sizeof line, "hello %s #%d from the guest", name, i + 1);
    vmlet_value arg = vmlet_string(line);
    if (vmlet_host_call("log_line", VMLET_T_VOID, NULL, 1, &arg) != 0) return -1;
  }
  VMLET_INFO("greeted %s %d times", name, n);
  return n;
}
VMLET_EXPORT(greet, I32, STRING, I32);

/* Builds a string on the heap: "<word> <word> ..." n times. */
static const char *repeat(const char *word, uint32_t n) {
  size_t len = strlen(word);
  char *out = vmlet_scratch(n * (len + 1) + 1);
  if (!out) vmlet_out_of_memory();
  char *p = out;
  for (uint32_t i = 0; i < n; i++) {
    memcpy(p, word, len);
    p += len;
    *p++ = ' ';
  }
  *p = 0;
  return out;
}
VMLET_EXPORT(repeat, STRING, STRING, U32);

/* Dereferences an address the guest may not touch: a caught page fault. */
static int32_t read_address(uint64_t address) { return *(volatile int32_t *)(uintptr_t)address; }
VMLET_EXPORT(read_address, I32, U64);

static void spin_forever(void) {
  for (;;) __asm__ volatile("" ::: "memory");
}
VMLET_EXPORT(spin_forever, VOID);

static int32_t noop(void) { return 0; }
VMLET_EXPORT(noop, I32);

/* One guest→host call to `ping` (void → void): measures the host-call round trip. */
static int32_t call_ping(void) { return vmlet_host_call("ping", VMLET_T_VOID, NULL, 0, NULL); }
VMLET_EXPORT(call_ping, I32);

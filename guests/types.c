/*
 * The types guest: echoes every ABI type, takes 16 mixed parameters, calls host
 * functions of every type, logs at every level and returns oversized results.
 * Used by test/types.test.ts, test/host-functions.test.ts, test/logging.test.ts
 * and test/cancellation.test.ts.
 */
#include <vmlet.h>

/* ---- echoes: the value goes in, the same value comes out ---- */

static int32_t echo_i32(int32_t v) { return v; }
VMLET_EXPORT(echo_i32, I32, I32);

static uint32_t echo_u32(uint32_t v) { return v; }
VMLET_EXPORT(echo_u32, U32, U32);

static int64_t echo_i64(int64_t v) { return v; }
VMLET_EXPORT(echo_i64, I64, I64);

static uint64_t echo_u64(uint64_t v) { return v; }
VMLET_EXPORT(echo_u64, U64, U64);

static float echo_f32(float v) { return v; }
VMLET_EXPORT(echo_f32, F32, F32);

static double echo_f64(double v) { return v; }
VMLET_EXPORT(echo_f64, F64, F64);

static bool echo_bool(bool v) { return v; }
VMLET_EXPORT(echo_bool, BOOL, BOOL);

static const char *echo_string(const char *s) { return s; }
VMLET_EXPORT(echo_string, STRING, STRING);

static vmlet_bytes echo_bytes(vmlet_bytes b) { return b; }
VMLET_EXPORT(echo_bytes, BYTES, BYTES);

/* Length in bytes (UTF-8) of a string argument, as the guest sees it. */
static uint32_t string_length(const char *s) { return (uint32_t)strlen(s); }
VMLET_EXPORT(string_length, U32, STRING);

/* ---- void: state kept between calls ---- */

static int32_t stored;

static void set_value(int32_t v) { stored = v; }
VMLET_EXPORT(set_value, VOID, I32);

static int32_t get_value(void) { return stored; }
VMLET_EXPORT(get_value, I32);

/* ---- 16 parameters: every type twice (string and bytes once), in order ----
 * Returns a string naming each argument exactly (floats as their bit patterns),
 * so a test can tell a swapped or truncated argument from a correct one. */

static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static uint64_t f64_bits(double f) {
  uint64_t u;
  memcpy(&u, &f, 8);
  return u;
}

static const char *sixteen(int32_t a, uint32_t b, int64_t c, uint64_t d, float e, double f, bool g, const char *h,
                           vmlet_bytes i, int32_t j, uint32_t k, int64_t l, uint64_t m, float n, double o, bool p) {
  uint32_t sum = 0;
  for (uint32_t x = 0; x < i.len; x++) sum += i.ptr[x];
  size_t size = 512 + strlen(h);
  char *out = vmlet_scratch(size);
  if (!out) vmlet_out_of_memory();
  snprintf(out, size, "%d|%u|%lld|%llu|%08x|%016llx|%d|%s|%u:%u|%d|%u|%lld|%llu|%08x|%016llx|%d", a, b, (long long)c,
           (unsigned long long)d, f32_bits(e), (unsigned long long)f64_bits(f), g ? 1 : 0, h, i.len, sum, j, k,
           (long long)l, (unsigned long long)m, f32_bits(n), (unsigned long long)f64_bits(o), p ? 1 : 0);
  return out;
}
VMLET_EXPORT(sixteen, STRING, I32, U32, I64, U64, F32, F64, BOOL, STRING, BYTES, I32, U32, I64, U64, F32, F64, BOOL);

/* ---- calling host functions of every type: h_<type>(x) -> <type> ----
 * On failure the guest returns a zero value; the host reports the failure to
 * the caller once the guest has returned. */

#define HOST_ECHO(type_name, TAG, ctype, field, make)                        \
  static ctype host_echo_##type_name(ctype x) {                              \
    vmlet_value arg = make(x), result;                                       \
    if (vmlet_host_call("h_" #type_name, TAG, &result, 1, &arg) != 0) {      \
      ctype zero;                                                            \
      memset(&zero, 0, sizeof zero);                                         \
      return zero;                                                           \
    }                                                                        \
    return result.as.field;                                                  \
  }

HOST_ECHO(i32, VMLET_T_I32, int32_t, i32, vmlet_i32)
VMLET_EXPORT(host_echo_i32, I32, I32);
HOST_ECHO(u32, VMLET_T_U32, uint32_t, u32, vmlet_u32)
VMLET_EXPORT(host_echo_u32, U32, U32);
HOST_ECHO(i64, VMLET_T_I64, int64_t, i64, vmlet_i64)
VMLET_EXPORT(host_echo_i64, I64, I64);
HOST_ECHO(u64, VMLET_T_U64, uint64_t, u64, vmlet_u64)
VMLET_EXPORT(host_echo_u64, U64, U64);
HOST_ECHO(f32, VMLET_T_F32, float, f32, vmlet_f32)
VMLET_EXPORT(host_echo_f32, F32, F32);
HOST_ECHO(f64, VMLET_T_F64, double, f64, vmlet_f64)
VMLET_EXPORT(host_echo_f64, F64, F64);
HOST_ECHO(bool, VMLET_T_BOOL, bool, b, vmlet_bool)
VMLET_EXPORT(host_echo_bool, BOOL, BOOL);

/* The host's string result lives in the output buffer; returning it directly
 * exercises the SDK's in-place copy of a host result into the RETURN message. */
static const char *host_echo_string(const char *s) {
  vmlet_value arg = vmlet_string(s), result;
  if (vmlet_host_call("h_string", VMLET_T_STRING, &result, 1, &arg) != 0) return "";
  return result.as.str;
}
VMLET_EXPORT(host_echo_string, STRING, STRING);

static vmlet_bytes host_echo_bytes(vmlet_bytes b) {
  vmlet_value arg = vmlet_bytes_value(b.ptr, b.len), result;
  if (vmlet_host_call("h_bytes", VMLET_T_BYTES, &result, 1, &arg) != 0) return (vmlet_bytes){NULL, 0};
  return (vmlet_bytes){result.as.bytes, result.len};
}
VMLET_EXPORT(host_echo_bytes, BYTES, BYTES);

/* Calls h_void(x) (i32 -> void); returns the status the guest got. */
static int32_t host_void(int32_t x) {
  vmlet_value arg = vmlet_i32(x);
  return vmlet_host_call("h_void", VMLET_T_VOID, NULL, 1, &arg);
}
VMLET_EXPORT(host_void, I32, I32);

/* Calls h_mixed(i32, string, f64, bytes) -> string: several arguments in order. */
static const char *host_mixed(int32_t a, const char *s, double d, vmlet_bytes b) {
  vmlet_value args[4] = {vmlet_i32(a), vmlet_string(s), vmlet_f64(d), vmlet_bytes_value(b.ptr, b.len)}, result;
  if (vmlet_host_call("h_mixed", VMLET_T_STRING, &result, 4, args) != 0) return "";
  return result.as.str;
}
VMLET_EXPORT(host_mixed, STRING, I32, STRING, F64, BYTES);

/* Calls the host function `name` (no arguments, void result), then tells the host
 * what it saw through report(i32 status, string error_text), and returns the status.
 * Lets tests observe HOST_MISSING / HOST_THREW / HOST_SIGNATURE inside the guest even
 * though the caller then gets an error instead of the return value. */
static int32_t host_call_status(const char *name) {
  int status = vmlet_host_call(name, VMLET_T_VOID, NULL, 0, NULL);
  vmlet_value report[2] = {vmlet_i32(status), vmlet_string(status == 0 ? "" : vmlet_host_error())};
  vmlet_host_call("report", VMLET_T_VOID, NULL, 2, report);
  return status;
}
VMLET_EXPORT(host_call_status, I32, STRING);

/* ---- logging ---- */

/* Logs one record at each level, most severe first, on consecutive lines; returns
 * the line of the first (error) record. */
static int32_t log_each_level(const char *tag) {
  int32_t first = __LINE__ + 1;
  VMLET_ERROR("error %s", tag);
  VMLET_WARN("warn %s", tag);
  VMLET_INFO("info %s", tag);
  VMLET_DEBUG("debug %s", tag);
  VMLET_TRACE("trace %s", tag);
  return first;
}
VMLET_EXPORT(log_each_level, I32, STRING);

/* Logs one info record of n 'y' characters: longer than the output buffer for big n. */
static void log_long(uint32_t n) {
  char *s = vmlet_scratch((size_t)n + 1);
  if (!s) vmlet_out_of_memory();
  memset(s, 'y', n);
  s[n] = 0;
  VMLET_INFO("%s", s);
}
VMLET_EXPORT(log_long, VOID, U32);

/* Whether the guest would send a record at `level` (1 = error … 5 = trace). */
static bool log_enabled(int32_t level) { return vmlet_log_enabled(level); }
VMLET_EXPORT(log_enabled, BOOL, I32);

/* ---- oversized results ---- */

/* A string of n 'x' bytes: larger than the output buffer for big n. */
static const char *big_string(uint32_t n) {
  char *s = vmlet_scratch((size_t)n + 1);
  if (!s) vmlet_out_of_memory();
  memset(s, 'x', n);
  s[n] = 0;
  return s;
}
VMLET_EXPORT(big_string, STRING, U32);

/* ---- work and randomness ---- */

/* Sum of i*i for i < n (wrapping), long enough to keep a vCPU busy for a while. */
static uint64_t busy_sum(uint32_t n) {
  uint64_t sum = 0;
  for (uint32_t i = 0; i < n; i++) {
    sum += (uint64_t)i * i;
    __asm__ volatile("" : "+r"(sum)); /* no closed form, no vectorising away */
  }
  return sum;
}
VMLET_EXPORT(busy_sum, U64, U32);

static uint64_t random_u64(void) { return vmlet_random_u64(); }
VMLET_EXPORT(random_u64, U64);

/* ---- what a guest can read of earlier messages ---- */

/* A copy of `length` bytes at `offset` in the input (which = 0) or output buffer, read
 * straight from the control block's addresses. Restore tests check these hold nothing
 * of a call that failed while the host was writing it. Copied first: the result itself
 * goes to the output buffer. */
#define CB_U32(off) (*(volatile uint32_t *)(uintptr_t)(VMLET_CONTROL_BLOCK_ADDR + (off)))
#define CB_U64(off) (*(volatile uint64_t *)(uintptr_t)(VMLET_CONTROL_BLOCK_ADDR + (off)))

static vmlet_bytes buffer_bytes(uint32_t which, uint32_t offset, uint32_t length) {
  uint64_t base = CB_U64(which == 0 ? VMLET_CB_INPUT_ADDR : VMLET_CB_OUTPUT_ADDR);
  uint32_t size = CB_U32(which == 0 ? VMLET_CB_INPUT_SIZE : VMLET_CB_OUTPUT_SIZE);
  if (offset > size || length > size - offset) vmlet_panic("buffer_bytes: %u bytes at %u lie outside the buffer", length, offset);
  uint8_t *copy = vmlet_scratch(length ? length : 1);
  if (!copy) vmlet_out_of_memory();
  memcpy(copy, (const uint8_t *)(uintptr_t)(base + offset), length);
  return (vmlet_bytes){copy, length};
}
VMLET_EXPORT(buffer_bytes, BYTES, U32, U32, U32);

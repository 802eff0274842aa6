/*
 * The guest the debugging tests take apart with gdb (test/core-dump.test.ts): faults and an
 * abort at known lines, several frames deep, with locals gdb can print. Built without
 * optimisation so every local lives in its frame.
 */
#pragma GCC optimize("O0")
#include <vmlet.h>

static int32_t leaf_write(int32_t depth, int32_t *target) {
  int32_t marker = depth * 7;
  *target = marker; /* DEBUGGEE_NULL_WRITE */
  return marker;
}

static int32_t middle(int32_t depth, int32_t *target) {
  int32_t twice = depth * 2;
  return leaf_write(twice, target) + 1;
}

/* null write three frames deep: leaf_write(marker = depth * 14) <- middle <- crash_deep */
static int32_t crash_deep(int32_t depth) {
  int32_t *volatile nowhere = 0;
  return middle(depth, nowhere);
}
VMLET_EXPORT(crash_deep, I32, I32);

static int32_t divide(int32_t a, int32_t b) {
  volatile int32_t quotient = a / b; /* DEBUGGEE_DIVIDE */
  return quotient;
}
VMLET_EXPORT(divide, I32, I32, I32);

static void abort_inner(int32_t code) {
  int32_t reason = code + 100;
  if (reason > 0) vmlet_abort_at(VMLET_ABORT_PANIC, __FILE__, __LINE__, "debuggee gives up"); /* DEBUGGEE_ABORT */
}

static void abort_outer(int32_t code) { abort_inner(code * 3); }

static void abort_deep(int32_t code) { abort_outer(code); }
VMLET_EXPORT(abort_deep, VOID, I32);

/* Calls the host's host_add_one, then writes through a null pointer with the answer. */
static int32_t fault_after_host(int32_t x) {
  vmlet_value arg = vmlet_i32(x), result;
  if (vmlet_host_call("host_add_one", VMLET_T_I32, &result, 1, &arg) != 0) return -1;
  int32_t answer = result.as.i32;
  int32_t *volatile nowhere = 0;
  *nowhere = answer; /* DEBUGGEE_AFTER_HOST */
  return answer;
}
VMLET_EXPORT(fault_after_host, I32, I32);

static int32_t square(int32_t x) {
  int32_t result = x * x; /* DEBUGGEE_SQUARE */
  return result;
}

/* Sum of squares below n: a loop of calls to break in, step through and finish. */
static int32_t sum_squares(int32_t n) {
  int32_t total = 0;
  for (int32_t i = 0; i < n; i++) total += square(i); /* DEBUGGEE_SUM */
  return total;
}
VMLET_EXPORT(sum_squares, I32, I32);

/* Loops until a debugger changes `stop` (or forever): for interrupting a running guest. */
static volatile int32_t stop;
static int32_t spin(void) {
  int32_t laps = 0;
  while (!stop) laps++;
  return laps;
}
VMLET_EXPORT(spin, I32);

static int32_t ok(void) { return 1; }
VMLET_EXPORT(ok, I32);

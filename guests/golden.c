/* Minimal guest for the golden snapshots (test/golden/): a static, a heap pattern and a
 * host call, so a snapshot of it checks that today's loader and host resume yesterday's
 * format and ABI. Keep it small: its snapshots are committed. */
#include <vmlet.h>

static int32_t marker;
static uint8_t *pattern;
static uint32_t pattern_len;

/* Sets the static and fills a heap block with `seed * i`. */
static bool prepare(int32_t value, uint32_t len, uint32_t seed) {
  marker = value;
  free(pattern);
  pattern = malloc(len);
  if (!pattern) return false;
  pattern_len = len;
  for (uint32_t i = 0; i < len; i++) pattern[i] = (uint8_t)(seed * i);
  return true;
}
VMLET_EXPORT(prepare, BOOL, I32, U32, U32);

static int32_t get_marker(void) { return marker; }
VMLET_EXPORT(get_marker, I32);

/* FNV-1a of the heap block: one number that changes if any byte does. */
static uint32_t pattern_hash(void) {
  uint32_t h = 2166136261u;
  for (uint32_t i = 0; i < pattern_len; i++) h = (h ^ pattern[i]) * 16777619u;
  return h;
}
VMLET_EXPORT(pattern_hash, U32);

/* Calls the host's `golden_twice(i32) -> i32` and adds the static. */
static int32_t host_round_trip(int32_t x) {
  vmlet_value arg = vmlet_i32(x), result;
  if (vmlet_host_call("golden_twice", VMLET_T_I32, &result, 1, &arg) != 0) return -1;
  return result.as.i32 + marker;
}
VMLET_EXPORT(host_round_trip, I32, I32);

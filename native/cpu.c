/* The host CPU's own state that decides what a guest can reach (PVM runs guests under it). */
#include <cpuid.h>
#include <stdint.h>

#include "napi_util.h"

/* hostXcr0(): XGETBV(0), the XSAVE components the OS enabled; 0 without OSXSAVE */
static napi_value host_xcr0(napi_env env, napi_callback_info info) {
  (void)info;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return make_i32(env, 0);
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  napi_value out;
  napi_create_double(env, (double)(((uint64_t)hi << 32) | lo), &out);
  return out;
}

void register_cpu(napi_env env, napi_value exports) {
  NAPI_EXPORT_FN(env, exports, "hostXcr0", host_xcr0);
}

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

/* cpuid(leaf, subleaf) -> [eax, ebx, ecx, edx] of the host CPU (what a process-backend guest sees) */
static napi_value cpuid(napi_env env, napi_callback_info info) {
  napi_value argv[2], out;
  uint32_t leaf, subleaf;
  if (!get_args(env, info, 2, argv, NULL, "cpuid") || !arg_u32(env, argv[0], &leaf) || !arg_u32(env, argv[1], &subleaf))
    return throw_message(env, "cpuid", "bad arguments");
  unsigned r[4] = {0, 0, 0, 0};
  __cpuid_count(leaf, subleaf, r[0], r[1], r[2], r[3]);
  napi_create_array_with_length(env, 4, &out);
  for (uint32_t i = 0; i < 4; i++) {
    napi_value v;
    napi_create_uint32(env, r[i], &v);
    napi_set_element(env, out, i, v);
  }
  return out;
}

void register_cpu(napi_env env, napi_value exports) {
  NAPI_EXPORT_FN(env, exports, "cpuid", cpuid);
  NAPI_EXPORT_FN(env, exports, "hostXcr0", host_xcr0);
}

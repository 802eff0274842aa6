/* vmlet native addon: thin KVM and memory calls. All policy lives in src/ (TypeScript). */
#include <dlfcn.h>
#include <linux/kvm.h>

#include "napi_util.h"

/* The addon's threads (the reaper, runners, vCPU threads) and callbacks libuv runs (the
 * exit notifier's close) can outlive the environment that loaded it: a worker thread's
 * exit makes Node unload its addons, and code still running in this one would jump into
 * unmapped memory. dlopen(RTLD_NOLOAD | RTLD_NODELETE) of our own file keeps it loaded. */
static void keep_loaded(void) {
  Dl_info self;
  if (dladdr((void *)keep_loaded, &self) != 0 && self.dli_fname != NULL) dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

/* Kernel struct sizes, so TypeScript can check its layouts against this build. */
static void export_sizes(napi_env env, napi_value exports) {
  napi_value sizes;
  napi_create_object(env, &sizes);
#define SIZE(name, type) napi_set_named_property(env, sizes, name, make_i32(env, (int32_t)sizeof(type)))
  SIZE("regs", struct kvm_regs);
  SIZE("sregs", struct kvm_sregs);
  SIZE("fpu", struct kvm_fpu);
  SIZE("xsave", struct kvm_xsave);
  SIZE("events", struct kvm_vcpu_events);
  SIZE("cpuidEntry", struct kvm_cpuid_entry2);
#undef SIZE
  napi_set_named_property(env, exports, "structSizes", sizes);
}

static napi_value init(napi_env env, napi_value exports) {
  keep_loaded();
  register_kvm_system(env, exports);
  register_kvm_vm(env, exports);
  register_kvm_vcpu(env, exports);
  register_memory(env, exports);
  register_reaper(env, exports);
  register_memory_file(env, exports);
  register_file_lock(env, exports);
  register_cpu(env, exports);
  register_process_child(env, exports);
  register_process_notify(env, exports);
  register_process_dirty(env, exports);
  register_random(env, exports);
  register_process_spawner(env, exports);
  export_sizes(env, exports);
  return exports;
}

NAPI_MODULE(vmlet, init)

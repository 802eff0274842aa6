/*
 * Calls on a KVM vCPU file descriptor, wrapped in a `Vcpu` class that owns the
 * fd, its mmap'd kvm_run, and (for async calls) one dedicated native thread.
 * One wrapper per ioctl; what the exits mean is decided in TypeScript.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kvm_vcpu.h"

static void release_vcpu(napi_env env, vcpu_t *v) {
  vcpu_thread_stop(v);
  if (v->run) munmap(v->run, v->run_size);
  dirty_ring_release(v);
  if (v->fd >= 0) reaper_close(v->fd); /* before the VM fd, which is queued after it */
  if (v->exit_ref) napi_delete_reference(env, v->exit_ref);
  v->run = NULL;
  v->fd = -1;
  v->exit_ref = NULL;
}

void vcpu_free(vcpu_t *v) {
  pthread_mutex_destroy(&v->mu);
  pthread_cond_destroy(&v->cv);
  free(v);
}

static void finalize_vcpu(napi_env env, void *data, void *hint) {
  (void)hint;
  vcpu_t *v = data;
  release_vcpu(env, v);
  if (v->tsfn_alive) v->free_pending = true; /* its finalizer still gets `v` */
  else vcpu_free(v);
}

/* `v`, or NULL with a JS error if its fd was closed. */
static vcpu_t *open_vcpu(napi_env env, vcpu_t *v, const char *operation) {
  if (v->fd >= 0) return v;
  throw_message(env, operation, "vCPU is closed");
  return NULL;
}

vcpu_t *vcpu_unwrap(napi_env env, napi_value self, const char *operation) {
  vcpu_t *v = NULL;
  if (napi_unwrap(env, self, (void **)&v) != napi_ok || !v) {
    throw_message(env, operation, "not a Vcpu");
    return NULL;
  }
  return open_vcpu(env, v, operation);
}

/* The hot methods (run, runAsync) are own properties of each Vcpu bound to its vcpu_t:
 * every call skips napi_unwrap, which costs ~1.5 µs right after a VM exit on PVM. */

/* The vcpu_t a bound method belongs to (its function data), and its `argc` arguments. */
static vcpu_t *bound_vcpu(napi_env env, napi_callback_info info, size_t argc, napi_value *argv, const char *op) {
  size_t n = argc;
  vcpu_t *v = NULL;
  if (napi_get_cb_info(env, info, &n, argv, NULL, (void **)&v) != napi_ok || n < argc || !v) {
    throw_message(env, op, "bad arguments");
    return NULL;
  }
  return open_vcpu(env, v, op);
}

/* Defines self[name] bound to `v`; the function holds `self` (property "vcpu"), so `v` lives as long as it. */
static bool define_bound(napi_env env, napi_value self, vcpu_t *v, const char *name, napi_callback cb) {
  napi_value fn;
  if (napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, v, &fn) != napi_ok) return false;
  if (napi_set_named_property(env, fn, "vcpu", self) != napi_ok) return false;
  napi_property_descriptor d = {name, NULL, NULL, NULL, NULL, fn, napi_default, NULL};
  return napi_define_properties(env, self, 1, &d) == napi_ok;
}

/* run(timeoutNs), KVM_RUN on the calling thread: returns the KVM exit reason, or -errno (e.g. -EINTR) */
static napi_value vcpu_run(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  uint64_t timeout_ns;
  vcpu_t *v = bound_vcpu(env, info, 1, argv, "KVM_RUN");
  if (!v) return NULL;
  if (!arg_u64(env, argv[0], &timeout_ns)) return throw_message(env, "KVM_RUN", "bad arguments");
  return make_i32(env, vcpu_run_once(v, timeout_ns));
}

/* runAsync(timeoutNs): posts one KVM_RUN to the vCPU thread; the exit reaches onExit */
static napi_value vcpu_run_async(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  uint64_t timeout_ns;
  vcpu_t *v = bound_vcpu(env, info, 1, argv, "runAsync");
  if (!v) return NULL;
  if (!arg_u64(env, argv[0], &timeout_ns)) return throw_message(env, "runAsync", "bad arguments");
  if (!v->has_thread) return throw_message(env, "runAsync", "startThread() was not called");
  napi_ref_threadsafe_function(env, v->tsfn); /* keep Node alive while the guest runs */
  v->job_timeout_ns = timeout_ns; /* published by the release in post_job */
  vcpu_thread_post(v, JOB_RUN);
  return make_undefined(env);
}

/* new Vcpu(vcpuFd, mmapSize, exitRecord: BigUint64Array(8)) — mmaps kvm_run */
static napi_value vcpu_new(napi_env env, napi_callback_info info) {
  napi_value argv[3], self;
  int32_t fd;
  uint32_t mmap_size;
  void *exit_data;
  size_t exit_len;
  if (!get_args(env, info, 3, argv, &self, "Vcpu") || !arg_i32(env, argv[0], &fd) ||
      !arg_u32(env, argv[1], &mmap_size) || !arg_bytes(env, argv[2], &exit_data, &exit_len))
    return throw_message(env, "Vcpu", "bad arguments");
  if (exit_len < EXIT_SLOTS * sizeof(uint64_t) || ((uintptr_t)exit_data & 7))
    return throw_message(env, "Vcpu", "exit record must be a BigUint64Array of 8");
  void *run = mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (run == MAP_FAILED) return throw_errno(env, "mmap kvm_run", errno);
  vcpu_t *v = calloc(1, sizeof *v);
  if (!v) {
    munmap(run, mmap_size);
    return throw_errno(env, "Vcpu", ENOMEM);
  }
  v->fd = fd;
  /* SAFETY: run is the kernel's kvm_run page for this fd, valid until munmap in release_vcpu. */
  v->run = run;
  v->run_size = mmap_size;
  v->exit = exit_data;
  napi_create_reference(env, argv[2], 1, &v->exit_ref); /* keeps the record's memory alive */
  pthread_mutex_init(&v->mu, NULL);
  pthread_cond_init(&v->cv, NULL);
  if (napi_wrap(env, self, v, finalize_vcpu, NULL, NULL) != napi_ok) {
    finalize_vcpu(env, v, NULL);
    return throw_message(env, "Vcpu", "napi_wrap failed");
  }
  if (!define_bound(env, self, v, "run", vcpu_run) || !define_bound(env, self, v, "runAsync", vcpu_run_async))
    return throw_message(env, "Vcpu", "cannot define run() and runAsync()");
  return self;
}


/* startThread(onExit): creates the dedicated vCPU thread; onExit(code) receives async results */
static napi_value vcpu_start_thread(napi_env env, napi_callback_info info) {
  napi_value argv[1], self, name;
  if (!get_args(env, info, 1, argv, &self, "startThread")) return NULL;
  vcpu_t *v = vcpu_unwrap(env, self, "startThread");
  if (!v) return NULL;
  if (v->has_thread) return make_undefined(env);
  napi_create_string_utf8(env, "vmlet-vcpu", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, v, vcpu_thread_tsfn_finalize, v, vcpu_deliver_exit, &v->tsfn) != napi_ok)
    return throw_message(env, "startThread", "cannot create threadsafe function");
  v->tsfn_alive = true;
  napi_unref_threadsafe_function(env, v->tsfn);
  int err = pthread_create(&v->thread, NULL, vcpu_thread_main, v);
  if (err) {
    napi_release_threadsafe_function(v->tsfn, napi_tsfn_release);
    return throw_errno(env, "pthread_create", err);
  }
  v->has_thread = true;
  return make_undefined(env);
}

/* interrupt(): immediate_exit = 1, and kick the thread inside KVM_RUN (if any) with a signal */
static napi_value vcpu_interrupt(napi_env env, napi_callback_info info) {
  napi_value self;
  if (!get_args(env, info, 0, NULL, &self, "interrupt")) return NULL;
  vcpu_t *v = vcpu_unwrap(env, self, "interrupt");
  if (!v) return NULL;
  __atomic_store_n(&v->kick_requested, 1, __ATOMIC_SEQ_CST); /* before the signal: its handler's effect must not look stray */
  __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&v->in_run, __ATOMIC_SEQ_CST)) pthread_kill(v->runner, vcpu_kick_signal());
  return make_undefined(env);
}

/* clearInterrupt(): immediate_exit = 0 */
static napi_value vcpu_clear_interrupt(napi_env env, napi_callback_info info) {
  napi_value self;
  if (!get_args(env, info, 0, NULL, &self, "clearInterrupt")) return NULL;
  vcpu_t *v = vcpu_unwrap(env, self, "clearInterrupt");
  if (!v) return NULL;
  __atomic_store_n(&v->kick_requested, 0, __ATOMIC_SEQ_CST);
  __atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
  return make_undefined(env);
}

/* cpuTimeNs(): CPU time spent in KVM_RUN (CLOCK_THREAD_CPUTIME_ID) since the first cpuTimeNs() call, which returns 0 and starts counting */
static napi_value vcpu_cpu_time(napi_env env, napi_callback_info info) {
  napi_value self, out;
  if (!get_args(env, info, 0, NULL, &self, "cpuTimeNs")) return NULL;
  vcpu_t *v = vcpu_unwrap(env, self, "cpuTimeNs");
  if (!v) return NULL;
  __atomic_store_n(&v->account_cpu, true, __ATOMIC_RELEASE);
  napi_create_double(env, (double)__atomic_load_n(&v->cpu_ns, __ATOMIC_ACQUIRE), &out);
  return out;
}

/* close(): stops the thread, unmaps kvm_run, closes the fd */
static napi_value vcpu_close(napi_env env, napi_callback_info info) {
  napi_value self;
  vcpu_t *v = NULL;
  if (!get_args(env, info, 0, NULL, &self, "close")) return NULL;
  if (napi_unwrap(env, self, (void **)&v) == napi_ok && v) release_vcpu(env, v);
  return make_undefined(env);
}

/* ---- state transfer: raw kernel structs copied to and from caller buffers ---- */

static napi_value struct_ioctl(napi_env env, napi_callback_info info, const char *operation, unsigned long request,
                               size_t size) {
  napi_value argv[1], self;
  void *data;
  size_t len;
  if (!get_args(env, info, 1, argv, &self, operation) || !arg_bytes(env, argv[0], &data, &len))
    return throw_message(env, operation, "bad arguments");
  if (len < size) return throw_message(env, operation, "buffer too small for the kernel struct");
  vcpu_t *v = vcpu_unwrap(env, self, operation);
  if (!v) return NULL;
  if (ioctl(v->fd, request, data) < 0) return throw_errno(env, operation, errno);
  return make_undefined(env);
}

#define STRUCT_IOCTL(fn, name, req, type) \
  static napi_value fn(napi_env env, napi_callback_info info) { return struct_ioctl(env, info, name, req, sizeof(type)); }

STRUCT_IOCTL(get_regs, "KVM_GET_REGS", KVM_GET_REGS, struct kvm_regs)
STRUCT_IOCTL(set_regs, "KVM_SET_REGS", KVM_SET_REGS, struct kvm_regs)
STRUCT_IOCTL(get_sregs, "KVM_GET_SREGS", KVM_GET_SREGS, struct kvm_sregs)
STRUCT_IOCTL(set_sregs, "KVM_SET_SREGS", KVM_SET_SREGS, struct kvm_sregs)
STRUCT_IOCTL(get_fpu, "KVM_GET_FPU", KVM_GET_FPU, struct kvm_fpu)
STRUCT_IOCTL(set_fpu, "KVM_SET_FPU", KVM_SET_FPU, struct kvm_fpu)
STRUCT_IOCTL(get_xsave, "KVM_GET_XSAVE", KVM_GET_XSAVE, struct kvm_xsave)
STRUCT_IOCTL(set_xsave, "KVM_SET_XSAVE", KVM_SET_XSAVE, struct kvm_xsave)
STRUCT_IOCTL(get_events, "KVM_GET_VCPU_EVENTS", KVM_GET_VCPU_EVENTS, struct kvm_vcpu_events)
STRUCT_IOCTL(set_events, "KVM_SET_VCPU_EVENTS", KVM_SET_VCPU_EVENTS, struct kvm_vcpu_events)

/* KVM_GET_MSRS / KVM_SET_MSRS(indices: Uint32Array, values: BigUint64Array) -> count processed */
static napi_value msrs_ioctl(napi_env env, napi_callback_info info, bool set) {
  const char *operation = set ? "KVM_SET_MSRS" : "KVM_GET_MSRS";
  napi_value argv[2], self;
  void *idx, *val;
  size_t idx_len, val_len;
  if (!get_args(env, info, 2, argv, &self, operation) || !arg_bytes(env, argv[0], &idx, &idx_len) ||
      !arg_bytes(env, argv[1], &val, &val_len))
    return throw_message(env, operation, "bad arguments");
  vcpu_t *v = vcpu_unwrap(env, self, operation);
  if (!v) return NULL;
  size_t n = idx_len / 4;
  if (val_len / 8 < n || n > 256) return throw_message(env, operation, "indices and values disagree");
  struct kvm_msrs *m = calloc(1, sizeof *m + n * sizeof(struct kvm_msr_entry));
  if (!m) return throw_errno(env, operation, ENOMEM);
  m->nmsrs = (uint32_t)n;
  for (size_t i = 0; i < n; i++) {
    m->entries[i].index = ((uint32_t *)idx)[i];
    m->entries[i].data = ((uint64_t *)val)[i];
  }
  int r = ioctl(v->fd, set ? KVM_SET_MSRS : KVM_GET_MSRS, m);
  int err = errno;
  if (r >= 0 && !set)
    for (int i = 0; i < r; i++) ((uint64_t *)val)[i] = m->entries[i].data;
  free(m);
  if (r < 0) return throw_errno(env, operation, err);
  return make_i32(env, r);
}

static napi_value get_msrs(napi_env env, napi_callback_info info) { return msrs_ioctl(env, info, false); }
static napi_value set_msrs(napi_env env, napi_callback_info info) { return msrs_ioctl(env, info, true); }

/* KVM_SET_CPUID2(entries: bytes of struct kvm_cpuid_entry2[count], count) */
static napi_value set_cpuid(napi_env env, napi_callback_info info) {
  napi_value argv[2], self;
  void *data;
  size_t len;
  uint32_t count;
  if (!get_args(env, info, 2, argv, &self, "KVM_SET_CPUID2") || !arg_bytes(env, argv[0], &data, &len) ||
      !arg_u32(env, argv[1], &count))
    return throw_message(env, "KVM_SET_CPUID2", "bad arguments");
  if ((size_t)count * sizeof(struct kvm_cpuid_entry2) > len) return throw_message(env, "KVM_SET_CPUID2", "count too large");
  vcpu_t *v = vcpu_unwrap(env, self, "KVM_SET_CPUID2");
  if (!v) return NULL;
  struct kvm_cpuid2 *c = calloc(1, sizeof *c + count * sizeof(struct kvm_cpuid_entry2));
  if (!c) return throw_errno(env, "KVM_SET_CPUID2", ENOMEM);
  c->nent = count;
  memcpy(c->entries, data, count * sizeof(struct kvm_cpuid_entry2));
  int r = ioctl(v->fd, KVM_SET_CPUID2, c);
  int err = errno;
  free(c);
  if (r < 0) return throw_errno(env, "KVM_SET_CPUID2", err);
  return make_undefined(env);
}

void register_kvm_vcpu(napi_env env, napi_value exports) {
  vcpu_install_kick_handler();
  napi_property_descriptor methods[] = {
      {"startThread", NULL, vcpu_start_thread, NULL, NULL, NULL, napi_default, NULL},
      {"interrupt", NULL, vcpu_interrupt, NULL, NULL, NULL, napi_default, NULL},
      {"clearInterrupt", NULL, vcpu_clear_interrupt, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, vcpu_close, NULL, NULL, NULL, napi_default, NULL},
      {"cpuTimeNs", NULL, vcpu_cpu_time, NULL, NULL, NULL, napi_default, NULL},
      {"getRegs", NULL, get_regs, NULL, NULL, NULL, napi_default, NULL},
      {"setRegs", NULL, set_regs, NULL, NULL, NULL, napi_default, NULL},
      {"getSregs", NULL, get_sregs, NULL, NULL, NULL, napi_default, NULL},
      {"setSregs", NULL, set_sregs, NULL, NULL, NULL, napi_default, NULL},
      {"getFpu", NULL, get_fpu, NULL, NULL, NULL, napi_default, NULL},
      {"setFpu", NULL, set_fpu, NULL, NULL, NULL, napi_default, NULL},
      {"getXsave", NULL, get_xsave, NULL, NULL, NULL, napi_default, NULL},
      {"setXsave", NULL, set_xsave, NULL, NULL, NULL, napi_default, NULL},
      {"setRegsXsave", NULL, vcpu_set_regs_xsave, NULL, NULL, NULL, napi_default, NULL},
      {"restorePlan", NULL, vcpu_restore_plan, NULL, NULL, NULL, napi_default, NULL},
      {"restoreSource", NULL, vcpu_restore_source, NULL, NULL, NULL, napi_default, NULL},
      {"restoreNow", NULL, vcpu_restore_now_js, NULL, NULL, NULL, napi_default, NULL},
      {"takeDirtyLog", NULL, vcpu_take_dirty_log, NULL, NULL, NULL, napi_default, NULL},
      {"mapDirtyRing", NULL, vcpu_map_dirty_ring, NULL, NULL, NULL, napi_default, NULL},
      {"getEvents", NULL, get_events, NULL, NULL, NULL, napi_default, NULL},
      {"setEvents", NULL, set_events, NULL, NULL, NULL, napi_default, NULL},
      {"getMsrs", NULL, get_msrs, NULL, NULL, NULL, napi_default, NULL},
      {"setMsrs", NULL, set_msrs, NULL, NULL, NULL, napi_default, NULL},
      {"setCpuid", NULL, set_cpuid, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls;
  napi_define_class(env, "Vcpu", NAPI_AUTO_LENGTH, vcpu_new, NULL, sizeof methods / sizeof methods[0], methods, &cls);
  napi_set_named_property(env, exports, "Vcpu", cls);
}


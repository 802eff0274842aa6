/*
 * Calls on a KVM vCPU file descriptor, wrapped in a `Vcpu` class that owns the
 * fd, its mmap'd kvm_run, and (for async calls) one dedicated native thread.
 * One wrapper per ioctl; what the exits mean is decided in TypeScript.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "napi_util.h"

/* Exit record shared with TypeScript (u64 slots). */
enum { EXIT_REASON, EXIT_ERRNO, EXIT_A, EXIT_B, EXIT_C, EXIT_D, EXIT_E, EXIT_F, EXIT_SLOTS };

enum job { JOB_NONE, JOB_RUN, JOB_QUIT };

/* run() result for a one-byte `out`: this flag | port. Other exits return the KVM reason, errors -errno. */
#define RUN_OUT_BYTE 0x10000

typedef struct {
  int fd;
  struct kvm_run *run;
  size_t run_size;
  uint64_t *exit;
  napi_ref exit_ref;
  /* Who is inside KVM_RUN right now, so interrupt() can signal it. */
  pthread_t runner;
  int in_run;
  /* The dedicated thread for async runs, created on first use. */
  bool has_thread;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  enum job job;  /* atomic: posted by the JS thread, taken by the vCPU thread */
  int sleeping;  /* atomic: the vCPU thread waits on cv */
  uint64_t job_timeout_ns;
  napi_threadsafe_function tsfn;
} vcpu_t;

/* ---- interruption: a real-time signal whose handler sets immediate_exit ---- */

static int kick_signal;
static __thread struct kvm_run *volatile tls_run;
static __thread timer_t tls_timer;
static __thread bool tls_timer_ready;

static void on_kick(int sig) {
  (void)sig;
  /* A signal landing just before KVM_RUN is entered would be lost; immediate_exit makes
   * KVM_RUN return EINTR at once instead. Async-signal-safe: a single store. */
  struct kvm_run *r = tls_run;
  if (r) __atomic_store_n(&r->immediate_exit, 1, __ATOMIC_SEQ_CST);
}

static void install_kick_handler(void) {
  kick_signal = SIGRTMIN + 5;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_kick;
  /* SA_RESTART keeps other syscalls of Node's thread unaffected; KVM_RUN returns EINTR regardless. */
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(kick_signal, &sa, NULL);
}

/* timer_create(CLOCK_MONOTONIC, SIGEV_THREAD_ID) once per thread, then timer_settime per run. */
static bool arm_timer(uint64_t ns) {
  if (!tls_timer_ready) {
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = kick_signal;
    sev._sigev_un._tid = gettid();
    if (timer_create(CLOCK_MONOTONIC, &sev, &tls_timer) < 0) return false;
    tls_timer_ready = true;
  }
  struct itimerspec its = {.it_value = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)}};
  return timer_settime(tls_timer, 0, &its, NULL) == 0;
}

static void disarm_timer(void) {
  struct itimerspec off = {0};
  timer_settime(tls_timer, 0, &off, NULL);
}

/* ---- KVM_RUN and the exit record ---- */

static void record_exit(vcpu_t *v, int result, int err) {
  uint64_t *e = v->exit;
  struct kvm_run *r = v->run;
  memset(e, 0, EXIT_SLOTS * sizeof *e);
  e[EXIT_ERRNO] = result < 0 ? (uint64_t)err : 0;
  e[EXIT_REASON] = r->exit_reason;
  if (result < 0) return;
  switch (r->exit_reason) {
    case KVM_EXIT_IO:
      e[EXIT_A] = r->io.direction;
      e[EXIT_B] = r->io.size;
      e[EXIT_C] = r->io.port;
      e[EXIT_D] = r->io.count;
      if (r->io.size <= 8 && r->io.data_offset + r->io.size <= v->run_size)
        memcpy(&e[EXIT_E], (uint8_t *)r + r->io.data_offset, r->io.size);
      break;
    case KVM_EXIT_MMIO:
      e[EXIT_A] = r->mmio.is_write;
      e[EXIT_B] = r->mmio.len;
      e[EXIT_C] = r->mmio.phys_addr;
      memcpy(&e[EXIT_E], r->mmio.data, r->mmio.len <= 8 ? r->mmio.len : 8);
      break;
    case KVM_EXIT_INTERNAL_ERROR:
      e[EXIT_A] = r->internal.suberror;
      e[EXIT_B] = r->internal.ndata;
      for (uint32_t i = 0; i < r->internal.ndata && i < 4; i++) e[EXIT_C + i] = r->internal.data[i];
      break;
    case KVM_EXIT_FAIL_ENTRY:
      e[EXIT_A] = r->fail_entry.hardware_entry_failure_reason;
      break;
    case KVM_EXIT_SYSTEM_EVENT:
      e[EXIT_A] = r->system_event.type;
      break;
    default:
      break;
  }
}

/* KVM_RUN once on the calling thread, with an optional deadline timer. */
static int run_once(vcpu_t *v, uint64_t timeout_ns) {
  bool timed = timeout_ns > 0 && arm_timer(timeout_ns);
  tls_run = v->run;
  v->runner = pthread_self();
  __atomic_store_n(&v->in_run, 1, __ATOMIC_SEQ_CST);
  int r = ioctl(v->fd, KVM_RUN, 0);
  int err = errno;
  __atomic_store_n(&v->in_run, 0, __ATOMIC_SEQ_CST);
  tls_run = NULL;
  if (timed) disarm_timer();
  record_exit(v, r, err);
  if (r < 0) return -err;
  /* A byte-sized `out` is the exit of every call: report it in the return value so the
   * caller need not read the exit record (each page touched after KVM_RUN costs here). */
  if (v->run->exit_reason == KVM_EXIT_IO && v->run->io.direction == KVM_EXIT_IO_OUT && v->run->io.size == 1)
    return RUN_OUT_BYTE | v->run->io.port;
  return (int)v->run->exit_reason;
}

/* ---- the dedicated vCPU thread ---- */

/* How long the vCPU thread polls for the next job before sleeping: a caller that
 * answers a host call or issues the next call within this window skips a futex wake,
 * which costs tens of microseconds on nested hosts. */
#define SPIN_NS 60000ull

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static enum job wait_for_job(vcpu_t *v) {
  uint64_t start = now_ns();
  enum job j;
  while ((j = __atomic_load_n(&v->job, __ATOMIC_ACQUIRE)) == JOB_NONE && now_ns() - start < SPIN_NS)
    __builtin_ia32_pause();
  if (j == JOB_NONE) {
    pthread_mutex_lock(&v->mu);
    __atomic_store_n(&v->sleeping, 1, __ATOMIC_SEQ_CST);
    while ((j = __atomic_load_n(&v->job, __ATOMIC_SEQ_CST)) == JOB_NONE) pthread_cond_wait(&v->cv, &v->mu);
    __atomic_store_n(&v->sleeping, 0, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&v->mu);
  }
  return __atomic_exchange_n(&v->job, JOB_NONE, __ATOMIC_ACQ_REL);
}

static void post_job(vcpu_t *v, enum job j) {
  __atomic_store_n(&v->job, j, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&v->sleeping, __ATOMIC_SEQ_CST)) {
    pthread_mutex_lock(&v->mu);
    pthread_cond_signal(&v->cv);
    pthread_mutex_unlock(&v->mu);
  }
}

static void *vcpu_thread_main(void *arg) {
  vcpu_t *v = arg;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, kick_signal);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  for (;;) {
    enum job j = wait_for_job(v);
    if (j == JOB_QUIT) break;
    int result = run_once(v, v->job_timeout_ns);
    napi_call_threadsafe_function(v->tsfn, (void *)(intptr_t)result, napi_tsfn_blocking);
  }
  if (tls_timer_ready) timer_delete(tls_timer); /* the timer belongs to this thread, which ends here */
  return NULL;
}

/* Runs on the JS thread: hands the exit code to the `onExit` callback. */
static void deliver_exit(napi_env env, napi_value callback, void *context, void *data) {
  vcpu_t *v = context;
  if (env == NULL) return;
  napi_unref_threadsafe_function(env, v->tsfn); /* an idle vCPU must not keep Node alive */
  napi_value arg = make_i32(env, (int32_t)(intptr_t)data), undefined = make_undefined(env);
  napi_call_function(env, undefined, callback, 1, &arg, NULL);
}

static void stop_thread(vcpu_t *v) {
  if (!v->has_thread) return;
  post_job(v, JOB_QUIT);
  pthread_join(v->thread, NULL);
  napi_release_threadsafe_function(v->tsfn, napi_tsfn_release);
  v->has_thread = false;
}

static void release_vcpu(napi_env env, vcpu_t *v) {
  stop_thread(v);
  if (v->run) munmap(v->run, v->run_size);
  if (v->fd >= 0) reaper_close(v->fd); /* before the VM fd, which is queued after it */
  if (v->exit_ref) napi_delete_reference(env, v->exit_ref);
  v->run = NULL;
  v->fd = -1;
  v->exit_ref = NULL;
}

static void finalize_vcpu(napi_env env, void *data, void *hint) {
  (void)hint;
  vcpu_t *v = data;
  release_vcpu(env, v);
  pthread_mutex_destroy(&v->mu);
  pthread_cond_destroy(&v->cv);
  free(v);
}

static vcpu_t *unwrap(napi_env env, napi_value self, const char *operation) {
  vcpu_t *v = NULL;
  if (napi_unwrap(env, self, (void **)&v) != napi_ok || !v) {
    throw_message(env, operation, "not a Vcpu");
    return NULL;
  }
  if (v->fd < 0) {
    throw_message(env, operation, "vCPU is closed");
    return NULL;
  }
  return v;
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
  return self;
}

/* KVM_RUN on the calling thread: returns the KVM exit reason, or -errno (e.g. -EINTR) */
static napi_value vcpu_run(napi_env env, napi_callback_info info) {
  napi_value argv[1], self;
  uint64_t timeout_ns;
  if (!get_args(env, info, 1, argv, &self, "KVM_RUN") || !arg_u64(env, argv[0], &timeout_ns))
    return throw_message(env, "KVM_RUN", "bad arguments");
  vcpu_t *v = unwrap(env, self, "KVM_RUN");
  if (!v) return NULL;
  return make_i32(env, run_once(v, timeout_ns));
}

/* startThread(onExit): creates the dedicated vCPU thread; onExit(code) receives async results */
static napi_value vcpu_start_thread(napi_env env, napi_callback_info info) {
  napi_value argv[1], self, name;
  if (!get_args(env, info, 1, argv, &self, "startThread")) return NULL;
  vcpu_t *v = unwrap(env, self, "startThread");
  if (!v) return NULL;
  if (v->has_thread) return make_undefined(env);
  napi_create_string_utf8(env, "vmlet-vcpu", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, v, deliver_exit, &v->tsfn) != napi_ok)
    return throw_message(env, "startThread", "cannot create threadsafe function");
  napi_unref_threadsafe_function(env, v->tsfn);
  int err = pthread_create(&v->thread, NULL, vcpu_thread_main, v);
  if (err) {
    napi_release_threadsafe_function(v->tsfn, napi_tsfn_release);
    return throw_errno(env, "pthread_create", err);
  }
  v->has_thread = true;
  return make_undefined(env);
}

/* runAsync(timeoutNs): KVM_RUN on the dedicated thread; the result arrives via onExit */
static napi_value vcpu_run_async(napi_env env, napi_callback_info info) {
  napi_value argv[1], self;
  uint64_t timeout_ns;
  if (!get_args(env, info, 1, argv, &self, "runAsync") || !arg_u64(env, argv[0], &timeout_ns))
    return throw_message(env, "runAsync", "bad arguments");
  vcpu_t *v = unwrap(env, self, "runAsync");
  if (!v) return NULL;
  if (!v->has_thread) return throw_message(env, "runAsync", "startThread() was not called");
  napi_ref_threadsafe_function(env, v->tsfn); /* keep Node alive while the guest runs */
  v->job_timeout_ns = timeout_ns; /* published by the release in post_job */
  post_job(v, JOB_RUN);
  return make_undefined(env);
}

/* interrupt(): immediate_exit = 1, and kick the thread inside KVM_RUN (if any) with a signal */
static napi_value vcpu_interrupt(napi_env env, napi_callback_info info) {
  napi_value self;
  if (!get_args(env, info, 0, NULL, &self, "interrupt")) return NULL;
  vcpu_t *v = unwrap(env, self, "interrupt");
  if (!v) return NULL;
  __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&v->in_run, __ATOMIC_SEQ_CST)) pthread_kill(v->runner, kick_signal);
  return make_undefined(env);
}

/* clearInterrupt(): immediate_exit = 0 */
static napi_value vcpu_clear_interrupt(napi_env env, napi_callback_info info) {
  napi_value self;
  if (!get_args(env, info, 0, NULL, &self, "clearInterrupt")) return NULL;
  vcpu_t *v = unwrap(env, self, "clearInterrupt");
  if (!v) return NULL;
  __atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
  return make_undefined(env);
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
  vcpu_t *v = unwrap(env, self, operation);
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

/* KVM_SET_REGS then KVM_SET_XSAVE(regs, xsave): the restore path's pair in one crossing into C */
static napi_value set_regs_xsave(napi_env env, napi_callback_info info) {
  napi_value argv[2], self;
  void *regs, *xsave;
  size_t regs_len, xsave_len;
  if (!get_args(env, info, 2, argv, &self, "KVM_SET_REGS") || !arg_bytes(env, argv[0], &regs, &regs_len) ||
      !arg_bytes(env, argv[1], &xsave, &xsave_len))
    return throw_message(env, "KVM_SET_REGS", "bad arguments");
  if (regs_len < sizeof(struct kvm_regs) || xsave_len < sizeof(struct kvm_xsave))
    return throw_message(env, "KVM_SET_REGS", "buffer too small for the kernel struct");
  vcpu_t *v = unwrap(env, self, "KVM_SET_REGS");
  if (!v) return NULL;
  if (ioctl(v->fd, KVM_SET_REGS, regs) < 0) return throw_errno(env, "KVM_SET_REGS", errno);
  if (ioctl(v->fd, KVM_SET_XSAVE, xsave) < 0) return throw_errno(env, "KVM_SET_XSAVE", errno);
  return make_undefined(env);
}

/*
 * restore(vmFd, slot, dirty, hot, memory, image, hostPages, regs, xsave) -> pages copied.
 * One restore in one crossing from JS (each crossing after a VM exit costs microseconds
 * on PVM): KVM_GET_DIRTY_LOG into `dirty`; if `hot` is given (manual-protect mode),
 * KVM_CLEAR_DIRTY_LOG for dirty pages not in `hot`; copy every page set in `dirty` or
 * listed in `hostPages` from `image` to `memory`; KVM_SET_REGS; KVM_SET_XSAVE.
 * Which pages are hot is decided in TypeScript.
 */
static napi_value vcpu_restore(napi_env env, napi_callback_info info) {
  napi_value argv[9], self;
  int32_t vm;
  uint32_t slot;
  void *dirty, *hot = NULL, *memory, *image, *host, *regs, *xsave;
  size_t dirty_len, hot_len = 0, memory_len, image_len, host_len, regs_len, xsave_len;
  napi_valuetype hot_type;
  if (!get_args(env, info, 9, argv, &self, "restore") || !arg_i32(env, argv[0], &vm) || !arg_u32(env, argv[1], &slot) ||
      !arg_bytes(env, argv[2], &dirty, &dirty_len) || napi_typeof(env, argv[3], &hot_type) != napi_ok ||
      (hot_type != napi_null && !arg_bytes(env, argv[3], &hot, &hot_len)) || !arg_bytes(env, argv[4], &memory, &memory_len) ||
      !arg_bytes(env, argv[5], &image, &image_len) || !arg_bytes(env, argv[6], &host, &host_len) ||
      !arg_bytes(env, argv[7], &regs, &regs_len) || !arg_bytes(env, argv[8], &xsave, &xsave_len))
    return throw_message(env, "restore", "bad arguments");
  size_t pages = memory_len / 4096;
  if (image_len != memory_len || dirty_len * 8 < pages || (hot && hot_len != dirty_len) || dirty_len % 8 ||
      regs_len < sizeof(struct kvm_regs) || xsave_len < sizeof(struct kvm_xsave))
    return throw_message(env, "restore", "buffer sizes disagree");
  vcpu_t *v = unwrap(env, self, "restore");
  if (!v) return NULL;
  struct kvm_dirty_log log = {.slot = slot, .dirty_bitmap = dirty};
  if (ioctl(vm, KVM_GET_DIRTY_LOG, &log) < 0) return throw_errno(env, "KVM_GET_DIRTY_LOG", errno);
  uint64_t *d = dirty, *h = hot;
  size_t words = dirty_len / 8;
  if (h) {
    uint64_t *clear = malloc(dirty_len), any = 0;
    if (!clear) return throw_errno(env, "restore", ENOMEM);
    for (size_t w = 0; w < words; w++) any |= clear[w] = d[w] & ~h[w];
    int r = 0;
    if (any) {
      struct kvm_clear_dirty_log c = {.slot = slot, .num_pages = (uint32_t)pages, .first_page = 0, .dirty_bitmap = clear};
      r = ioctl(vm, KVM_CLEAR_DIRTY_LOG, &c);
    }
    int err = errno;
    free(clear);
    if (r < 0) return throw_errno(env, "KVM_CLEAR_DIRTY_LOG", err);
  }
  uint8_t *dst = memory;
  const uint8_t *src = image;
  uint32_t copied = 0;
  for (size_t w = 0; w < words; w++) {
    for (uint64_t bits = d[w]; bits; bits &= bits - 1) {
      size_t page = w * 64 + (size_t)__builtin_ctzll(bits);
      if (page >= pages) break;
      memcpy(dst + page * 4096, src + page * 4096, 4096);
      copied++;
    }
  }
  const int32_t *hp = host;
  for (size_t i = 0; i < host_len / 4; i++) {
    size_t page = (size_t)hp[i];
    if (page >= pages || (d[page / 64] >> (page % 64)) & 1) continue; /* out of range, or copied above */
    memcpy(dst + page * 4096, src + page * 4096, 4096);
    copied++;
  }
  if (ioctl(v->fd, KVM_SET_REGS, regs) < 0) return throw_errno(env, "KVM_SET_REGS", errno);
  if (ioctl(v->fd, KVM_SET_XSAVE, xsave) < 0) return throw_errno(env, "KVM_SET_XSAVE", errno);
  napi_value result;
  napi_create_uint32(env, copied, &result);
  return result;
}

/* KVM_GET_MSRS / KVM_SET_MSRS(indices: Uint32Array, values: BigUint64Array) -> count processed */
static napi_value msrs_ioctl(napi_env env, napi_callback_info info, bool set) {
  const char *operation = set ? "KVM_SET_MSRS" : "KVM_GET_MSRS";
  napi_value argv[2], self;
  void *idx, *val;
  size_t idx_len, val_len;
  if (!get_args(env, info, 2, argv, &self, operation) || !arg_bytes(env, argv[0], &idx, &idx_len) ||
      !arg_bytes(env, argv[1], &val, &val_len))
    return throw_message(env, operation, "bad arguments");
  vcpu_t *v = unwrap(env, self, operation);
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
  vcpu_t *v = unwrap(env, self, "KVM_SET_CPUID2");
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
  install_kick_handler();
  napi_property_descriptor methods[] = {
      {"run", NULL, vcpu_run, NULL, NULL, NULL, napi_default, NULL},
      {"startThread", NULL, vcpu_start_thread, NULL, NULL, NULL, napi_default, NULL},
      {"runAsync", NULL, vcpu_run_async, NULL, NULL, NULL, napi_default, NULL},
      {"interrupt", NULL, vcpu_interrupt, NULL, NULL, NULL, napi_default, NULL},
      {"clearInterrupt", NULL, vcpu_clear_interrupt, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, vcpu_close, NULL, NULL, NULL, napi_default, NULL},
      {"getRegs", NULL, get_regs, NULL, NULL, NULL, napi_default, NULL},
      {"setRegs", NULL, set_regs, NULL, NULL, NULL, napi_default, NULL},
      {"getSregs", NULL, get_sregs, NULL, NULL, NULL, napi_default, NULL},
      {"setSregs", NULL, set_sregs, NULL, NULL, NULL, napi_default, NULL},
      {"getFpu", NULL, get_fpu, NULL, NULL, NULL, napi_default, NULL},
      {"setFpu", NULL, set_fpu, NULL, NULL, NULL, napi_default, NULL},
      {"getXsave", NULL, get_xsave, NULL, NULL, NULL, napi_default, NULL},
      {"setXsave", NULL, set_xsave, NULL, NULL, NULL, napi_default, NULL},
      {"setRegsXsave", NULL, set_regs_xsave, NULL, NULL, NULL, napi_default, NULL},
      {"restore", NULL, vcpu_restore, NULL, NULL, NULL, napi_default, NULL},
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

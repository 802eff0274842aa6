/* The vCPU object shared by the addon's vCPU files: kvm_vcpu.c (the class and its
 * ioctls), vcpu_run.c (KVM_RUN, interruption), vcpu_thread.c (the async thread),
 * vcpu_restore.c (the restore fast path). */
#ifndef VMLET_KVM_VCPU_H
#define VMLET_KVM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <time.h>

#include "napi_util.h"

/* Exit record shared with TypeScript (u64 slots). */
enum { EXIT_REASON, EXIT_ERRNO, EXIT_A, EXIT_B, EXIT_C, EXIT_D, EXIT_E, EXIT_F, EXIT_SLOTS };

enum job { JOB_NONE, JOB_RUN, JOB_QUIT };

/* run() result for a one-byte `out`: this flag | port. Other exits return the KVM reason, errors -errno. */
#define RUN_OUT_BYTE 0x10000

/* Slots of the restore control array shared with TypeScript (Int32Array). After the
 * header: host-written pages to copy (host_cap slots), then pages JavaScript has already
 * copied from the image (the skip list), then CTL_PATCHES (address, value) pairs: 32-bit
 * host writes to apply after the copies (the control block's host fields of a deferred
 * restore, written without copying their page in JavaScript first). */
enum { CTL_PENDING, CTL_COPIED, CTL_HOST_COUNT, CTL_SKIP_COUNT, CTL_ERROP, CTL_PATCH_COUNT, CTL_RING_RESETS, CTL_HEADER = 8 };
#define CTL_PATCHES 8
enum { RESTORE_OP_NONE, RESTORE_OP_GET_LOG, RESTORE_OP_CLEAR_LOG, RESTORE_OP_SET_REGS, RESTORE_OP_SET_XSAVE, RESTORE_OP_RESET_RING };

/* How the plan learns dirty pages: KVM_GET_DIRTY_LOG (re-protecting all, or only the
 * non-hot pages in manual-protect mode), or the vCPU's dirty ring. */
enum dirty_mode { DIRTY_BITMAP, DIRTY_MANUAL, DIRTY_RING };

/* run() result when a pending restore failed before KVM_RUN: RUN_RESTORE_FAILED - errno (negative). */
#define RUN_RESTORE_FAILED (-0x20000)
/* run() result when the deadline timer could not be armed (the guest did not run): RUN_TIMER_FAILED - errno. */
#define RUN_TIMER_FAILED (-0x10000)

/* What a restore needs, registered once (vcpu_restore.c). Buffers belong to TypeScript. */
typedef struct {
  int vm_fd;
  uint32_t slot;
  enum dirty_mode mode;
  bool sync_regs; /* KVM_CAP_SYNC_REGS covers the general registers */
  size_t pages, words;
  /* Bitmap modes: dirty = the last read, prev = the one before, hot = kept writable,
   * clear = scratch for KVM_CLEAR_DIRTY_LOG. Ring mode: dirty = takeDirtyLog()'s answer,
   * hot = the ring's writable pages, prev = pages to restore that were re-protected since. */
  uint64_t *dirty, *prev, *hot, *clear;
  uint32_t hot_count;
  size_t prev_first, prev_last; /* the words of prev that may be non-zero */
  uint8_t *memory;
  const uint8_t *image;
  void *regs, *xsave;
  int32_t *ctl;   /* NULL until restorePlan() */
  uint32_t host_cap, skip_cap; /* skip_cap excludes the CTL_PATCHES pairs at the end */
} restore_plan_t;

/* The vCPU's dirty ring, when its VM has one (dirty_ring.c). */
typedef struct {
  struct kvm_dirty_gfn *gfns; /* NULL until mapDirtyRing() */
  size_t bytes;
  uint32_t entries, fetch;
  uint32_t *writable; /* pages collected since the last reset (still writable) */
  uint32_t writable_n, writable_cap;
  uint32_t restores_since_reset;
  /* The restore policy's relearning period (vcpu_restore.c), and what it judges it by. */
  uint32_t relearn_every, kept_before, hot_size;
  bool judging;
} dirty_ring_t;

typedef struct {
  int fd;
  struct kvm_run *run;
  size_t run_size;
  uint64_t *exit;
  napi_ref exit_ref;
  /* Who is inside KVM_RUN right now, so interrupt() can signal it. */
  pthread_t runner;
  int in_run;
  /* interrupt() was called and clearInterrupt() not yet: an exit request that is not stray. */
  int kick_requested;
  /* The dedicated thread for async runs, created on first use. */
  bool has_thread;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  enum job job;  /* atomic: posted by the JS thread, taken by the vCPU thread */
  int sleeping;  /* atomic: the vCPU thread waits on cv */
  uint64_t job_timeout_ns;
  napi_threadsafe_function tsfn;
  /* The thread-safe function exists until its finalizer has run (after release, or when
   * Node shuts down); a Vcpu finalized before that is freed by that finalizer. */
  bool tsfn_alive;
  bool free_pending;
  restore_plan_t restore;
  dirty_ring_t ring;
  /* CPU time of the threads inside KVM_RUN, summed over runs once cpuTimeNs() asked for it
   * (two clock reads per run otherwise saved). Atomic: the vCPU thread adds, JS reads. */
  bool account_cpu;
  uint64_t cpu_ns;
} vcpu_t;

void vcpu_free(vcpu_t *v);

/* clock_gettime(CLOCK_MONOTONIC), ns: deadlines and spin windows of the run loop. */
static inline uint64_t monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One bit per guest page in the plan's bitmaps. */
static inline bool test_bit(const uint64_t *bits, size_t n) { return (bits[n / 64] >> (n % 64)) & 1; }
static inline void set_bit(uint64_t *bits, size_t n) { bits[n / 64] |= 1ull << (n % 64); }
static inline void clear_bit(uint64_t *bits, size_t n) { bits[n / 64] &= ~(1ull << (n % 64)); }

/* vcpu_run.c */
void vcpu_install_kick_handler(void);
int vcpu_kick_signal(void);
int vcpu_run_once(vcpu_t *v, uint64_t timeout_ns);
void vcpu_release_thread_timer(void);

/* vcpu_thread.c */
void vcpu_thread_post(vcpu_t *v, enum job j);
void *vcpu_thread_main(void *arg);
void vcpu_deliver_exit(napi_env env, napi_value callback, void *context, void *data);
void vcpu_thread_stop(vcpu_t *v);
void vcpu_thread_tsfn_finalize(napi_env env, void *data, void *hint);

/* kvm_vcpu.c */
vcpu_t *vcpu_unwrap(napi_env env, napi_value self, const char *operation);

/* vcpu_restore.c */
napi_value vcpu_set_regs_xsave(napi_env env, napi_callback_info info);
int vcpu_restore_now(vcpu_t *v, bool before_run);
napi_value vcpu_restore_plan(napi_env env, napi_callback_info info);
napi_value vcpu_restore_source(napi_env env, napi_callback_info info);
napi_value vcpu_restore_now_js(napi_env env, napi_callback_info info);
napi_value vcpu_take_dirty_log(napi_env env, napi_callback_info info);

/* dirty_ring.c */
napi_value vcpu_map_dirty_ring(napi_env env, napi_callback_info info);
bool dirty_ring_plan(vcpu_t *v, size_t pages, size_t keep);
int dirty_ring_harvest(vcpu_t *v);
int dirty_ring_reset(vcpu_t *v);
int dirty_ring_spill(vcpu_t *v);
void dirty_ring_release(vcpu_t *v);

#endif

/* KVM_RUN on the calling thread, with a per-thread deadline timer, and the
 * interruption mechanism: a real-time signal whose handler sets immediate_exit. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kvm_vcpu.h"

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

void vcpu_install_kick_handler(void) {
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

int vcpu_kick_signal(void) { return kick_signal; }

/* Deletes the calling thread's deadline timer, if it made one (call before the thread ends). */
void vcpu_release_thread_timer(void) {
  if (tls_timer_ready) timer_delete(tls_timer);
  tls_timer_ready = false;
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

/* clock_gettime(CLOCK_THREAD_CPUTIME_ID): the calling thread's CPU time, ns. */
static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Whether an exit request now is real: interrupt() asked for one, or the deadline passed. */
static bool exit_wanted(vcpu_t *v, uint64_t deadline) {
  return __atomic_load_n(&v->kick_requested, __ATOMIC_SEQ_CST) || (deadline && monotonic_ns() >= deadline);
}

/* Drops an immediate_exit that only a stray kick signal (one vmlet did not send) set. Cleared
 * first and then re-checked: a real kick or the deadline timer landing in between is kept. */
static void drop_stray_exit_request(vcpu_t *v, uint64_t deadline) {
  if (exit_wanted(v, deadline)) return;
  __atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
  if (exit_wanted(v, deadline)) __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
}

/* KVM_RUN once on the calling thread, with an optional deadline timer. */
int vcpu_run_once(vcpu_t *v, uint64_t timeout_ns) {
  /* A restore deferred by TypeScript runs first, in this same crossing. */
  if (v->restore.ctl && __atomic_load_n(&v->restore.ctl[CTL_PENDING], __ATOMIC_ACQUIRE)) {
    int copied = vcpu_restore_now(v, true);
    if (copied < 0) return RUN_RESTORE_FAILED + copied;
  }
  /* A deadline that cannot be armed (timer_create or timer_settime refused, e.g. RLIMIT_SIGPENDING)
   * fails the run before the guest runs: never a run without the deadline the caller asked for. */
  uint64_t deadline = timeout_ns > 0 ? monotonic_ns() + timeout_ns : 0;
  if (timeout_ns > 0 && !arm_timer(timeout_ns)) return RUN_TIMER_FAILED - (errno ? errno : EAGAIN);
  bool timed = timeout_ns > 0;
  bool account = __atomic_load_n(&v->account_cpu, __ATOMIC_ACQUIRE);
  uint64_t cpu_before = account ? thread_cpu_ns() : 0;
  tls_run = v->run;
  v->runner = pthread_self();
  __atomic_store_n(&v->in_run, 1, __ATOMIC_SEQ_CST);
  drop_stray_exit_request(v, deadline);
  int r, err;
  for (;;) {
    r = ioctl(v->fd, KVM_RUN, 0);
    err = errno;
    /* EINTR that neither interrupt() nor the deadline asked for: a stray signal. Run on. */
    if (r < 0 && err == EINTR && !exit_wanted(v, deadline)) {
      drop_stray_exit_request(v, deadline);
      continue;
    }
    /* The guest dirtied more pages than the ring holds: collect them and go on. */
    if (r < 0 || v->run->exit_reason != KVM_EXIT_DIRTY_RING_FULL || !v->ring.gfns) break;
    int e = dirty_ring_spill(v);
    if (e < 0) {
      r = -1;
      err = -e;
      break;
    }
  }
  __atomic_store_n(&v->in_run, 0, __ATOMIC_SEQ_CST);
  tls_run = NULL;
  if (timed) disarm_timer();
  if (account) __atomic_add_fetch(&v->cpu_ns, thread_cpu_ns() - cpu_before, __ATOMIC_RELEASE);
  record_exit(v, r, err);
  if (r < 0) return -err;
  /* A byte-sized `out` is the exit of every call: report it in the return value so the
   * caller need not read the exit record (each page touched after KVM_RUN costs here). */
  if (v->run->exit_reason == KVM_EXIT_IO && v->run->io.direction == KVM_EXIT_IO_OUT && v->run->io.size == 1)
    return RUN_OUT_BYTE | v->run->io.port;
  return (int)v->run->exit_reason;
}


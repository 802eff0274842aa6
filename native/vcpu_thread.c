/* The dedicated vCPU thread for async calls: it takes run jobs from the JS thread,
 * runs KVM_RUN, and hands each exit back through a thread-safe function. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kvm_vcpu.h"

/* ---- the dedicated vCPU thread ---- */

/* How long the vCPU thread polls for the next job before sleeping: a caller that
 * answers a host call or issues the next call within this window skips a futex wake,
 * which costs tens of microseconds on nested hosts. */
#define SPIN_NS 60000ull

static enum job wait_for_job(vcpu_t *v) {
  uint64_t start = monotonic_ns();
  enum job j;
  while ((j = __atomic_load_n(&v->job, __ATOMIC_ACQUIRE)) == JOB_NONE && monotonic_ns() - start < SPIN_NS)
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

void vcpu_thread_post(vcpu_t *v, enum job j) {
  __atomic_store_n(&v->job, j, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&v->sleeping, __ATOMIC_SEQ_CST)) {
    pthread_mutex_lock(&v->mu);
    pthread_cond_signal(&v->cv);
    pthread_mutex_unlock(&v->mu);
  }
}

void *vcpu_thread_main(void *arg) {
  vcpu_t *v = arg;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, vcpu_kick_signal());
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  for (;;) {
    enum job j = wait_for_job(v);
    if (j == JOB_QUIT) break;
    int result = vcpu_run_once(v, v->job_timeout_ns);
    napi_call_threadsafe_function(v->tsfn, (void *)(intptr_t)result, napi_tsfn_blocking);
  }
  vcpu_release_thread_timer(); /* the timer belongs to this thread, which ends here */
  return NULL;
}

/* Runs on the JS thread: hands the exit code to the `onExit` callback. */
void vcpu_deliver_exit(napi_env env, napi_value callback, void *context, void *data) {
  vcpu_t *v = context;
  if (env == NULL) return;
  napi_unref_threadsafe_function(env, v->tsfn); /* an idle vCPU must not keep Node alive */
  napi_value arg = make_i32(env, (int32_t)(intptr_t)data), undefined = make_undefined(env);
  napi_call_function(env, undefined, callback, 1, &arg, NULL);
}

/* Ends the thread: a guest still running is kicked out of KVM_RUN first. */
static void join_thread(vcpu_t *v) {
  if (v->run) __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&v->in_run, __ATOMIC_SEQ_CST)) pthread_kill(v->runner, vcpu_kick_signal());
  vcpu_thread_post(v, JOB_QUIT);
  pthread_join(v->thread, NULL);
  v->has_thread = false;
}

void vcpu_thread_stop(vcpu_t *v) {
  if (!v->has_thread) return;
  join_thread(v);
  napi_release_threadsafe_function(v->tsfn, napi_tsfn_release);
  v->tsfn = NULL;
}

/*
 * The thread-safe function's finalizer. When Node shuts down it deletes every
 * thread-safe function, possibly before the Vcpu's own finalizer runs: the thread is
 * stopped here, so nothing releases or calls the deleted function afterwards.
 */
void vcpu_thread_tsfn_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  vcpu_t *v = data;
  if (v->has_thread) join_thread(v);
  v->tsfn = NULL;
  v->tsfn_alive = false;
  if (v->free_pending) vcpu_free(v);
}


/* The vCPU object shared by the addon's vCPU files: kvm_vcpu.c (the class and its
 * ioctls), vcpu_run.c (KVM_RUN, interruption), vcpu_thread.c (the async thread),
 * vcpu_restore.c (the restore fast path). */
#ifndef VMLET_KVM_VCPU_H
#define VMLET_KVM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>

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

/* kvm_vcpu.c */
vcpu_t *vcpu_unwrap(napi_env env, napi_value self, const char *operation);

/* vcpu_restore.c */
napi_value vcpu_set_regs_xsave(napi_env env, napi_callback_info info);
napi_value vcpu_restore(napi_env env, napi_callback_info info);

#endif

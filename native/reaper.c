/*
 * Teardown work on a background thread, in the order it was queued:
 * - close(fd): the last close of a KVM VM fd tears the VM down synchronously (about half a
 *   millisecond here);
 * - retiring a process-backend child: SIGKILL, wait for its death (waitid), then punch out
 *   the pages of its guest memory and control memfds so both can serve another sandbox.
 *   Only after the death: a killed process may still be running on another core when
 *   kill(2) returns. The host learns that the files are empty through a ticket.
 * Doing these off the JS thread takes them off close()'s path.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "napi_util.h"
#include "work_thread.h"

/* What a retire job tells the host: RETIRE_PENDING until the files are empty (or not). */
enum { RETIRE_PENDING = 0, RETIRE_DONE = 1, RETIRE_FAILED = -1 };

struct ticket {
  _Atomic int state;
  _Atomic int refs; /* the job's and JavaScript's */
};

typedef struct job {
  struct work_item link; /* first: the reaper thread's queue */
  int fd;            /* a close job: the fd; a retire job: the child's pidfd, or -1 */
  int files[2];      /* a retire job: its own copies of the memfds to empty */
  uint64_t sizes[2];
  struct ticket *ticket; /* NULL: a close job */
  bool dup_failed;
} job_t;


static void ticket_release(struct ticket *t) {
  if (atomic_fetch_sub(&t->refs, 1) == 1) free(t);
}

int kill_and_reap(int pidfd, siginfo_t *status) {
  syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
  int r;
  do r = waitid((idtype_t)P_PIDFD, (id_t)pidfd, status, WEXITED);
  while (r < 0 && errno == EINTR);
  close(pidfd);
  return r;
}

/* SIGKILL, waitid until dead (kill_and_reap), then both files emptied. */
static void retire(job_t *j) {
  if (j->fd >= 0) {
    siginfo_t info;
    kill_and_reap(j->fd, &info);
  }
  bool ok = !j->dup_failed;
  for (int i = 0; i < 2; i++) {
    if (j->files[i] < 0) continue;
    ok = punch_data(j->files[i], j->sizes[i]) == 0 && ok;
    close(j->files[i]);
  }
  atomic_store(&j->ticket->state, ok ? RETIRE_DONE : RETIRE_FAILED);
  ticket_release(j->ticket);
}

/* One job on the reaper thread: a retirement or a close. */
static void run_job(struct work_item *item) {
  job_t *j = (job_t *)item;
  if (j->ticket) retire(j);
  else close(j->fd);
  free(j);
}

/* Its jobs; a push that fails (the thread cannot start) leaves the work to the caller. */
static struct work_thread reaper = WORK_THREAD_INIT(run_job);

/* Queues close(fd); falls back to closing now if the thread or memory is unavailable. */
void reaper_close(int fd) {
  job_t *j = calloc(1, sizeof *j);
  if (!j) {
    close(fd);
    return;
  }
  j->fd = fd;
  if (!work_thread_push(&reaper, &j->link)) {
    close(fd);
    free(j);
  }
}

/* SIGKILL and reap a child (its pidfd passes to the job) on the reaper thread; no files. */
void reaper_retire_child(int pidfd) {
  job_t *j = calloc(1, sizeof *j);
  struct ticket *t = calloc(1, sizeof *t);
  if (!j || !t) {
    free(j);
    free(t);
    syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    close(pidfd); /* not reaped: it stays a zombie until the process exits */
    return;
  }
  atomic_init(&t->refs, 1);
  j->ticket = t;
  j->fd = pidfd;
  j->files[0] = j->files[1] = -1;
  if (!work_thread_push(&reaper, &j->link)) retire(j), free(j);
}

/* closeFdLater(fd): close(fd) on the reaper thread */
static napi_value close_fd_later(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv, NULL, "close") || !arg_i32(env, argv[0], &fd)) return NULL;
  reaper_close(fd);
  return make_undefined(env);
}

static void ticket_finalize(napi_env env, void *data, void *hint) {
  ticket_release(data);
}

/* processRetire(pidfd, memoryFd, memorySize, controlFd, controlSize): queues the child's
 * retirement (pidfd -1: none) and returns a ticket (an External). The pidfd passes to the
 * job; the memfds are duplicated (F_DUPFD_CLOEXEC), so the host may close its own. */
static napi_value process_retire(napi_env env, napi_callback_info info) {
  napi_value argv[5], handle;
  int32_t pidfd, fds[2];
  int64_t sizes[2];
  if (!get_args(env, info, 5, argv, NULL, "waitid") || !arg_i32(env, argv[0], &pidfd) || !arg_i32(env, argv[1], &fds[0]) ||
      napi_get_value_int64(env, argv[2], &sizes[0]) != napi_ok || !arg_i32(env, argv[3], &fds[1]) ||
      napi_get_value_int64(env, argv[4], &sizes[1]) != napi_ok || sizes[0] < 0 || sizes[1] < 0)
    return throw_message(env, "waitid", "bad arguments");
  job_t *j = calloc(1, sizeof *j);
  struct ticket *t = calloc(1, sizeof *t);
  if (!j || !t) {
    free(j);
    free(t);
    return throw_errno(env, "calloc", ENOMEM);
  }
  atomic_init(&t->refs, 2);
  j->ticket = t;
  j->fd = pidfd;
  for (int i = 0; i < 2; i++) {
    j->files[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
    j->sizes[i] = (uint64_t)sizes[i];
  }
  if (j->files[0] < 0 || j->files[1] < 0) j->dup_failed = true; /* the files cannot be vouched for */
  if (pidfd >= 0) process_disown(env, pidfd); /* the job reaps it now */
  if (!work_thread_push(&reaper, &j->link)) retire(j), free(j); /* now, on this thread */
  napi_create_external(env, t, ticket_finalize, NULL, &handle);
  return handle;
}

/* processRetired(ticket): 0 pending, 1 done (child dead, files empty), -1 failed. */
static napi_value process_retired(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct ticket *t;
  if (!get_args(env, info, 1, argv, NULL, "waitid") || napi_get_value_external(env, argv[0], (void **)&t) != napi_ok)
    return throw_message(env, "waitid", "bad arguments");
  return make_i32(env, atomic_load(&t->state));
}

void register_reaper(napi_env env, napi_value exports) {
  NAPI_EXPORT_FN(env, exports, "closeFdLater", close_fd_later);
  NAPI_EXPORT_FN(env, exports, "processRetire", process_retire);
  NAPI_EXPORT_FN(env, exports, "processRetired", process_retired);
}

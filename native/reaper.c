/*
 * Closes file descriptors on a background thread. The last close of a KVM VM fd tears
 * the VM down synchronously (about half a millisecond here); doing it off the JS thread
 * takes that off the caller's critical path. Closes run in the order they were queued.
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "napi_util.h"

typedef struct job {
  struct job *next;
  int fd;
} job_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static job_t *head, *tail;
static bool started;

static void *reaper_main(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&mu);
    while (!head) pthread_cond_wait(&cv, &mu);
    job_t *j = head;
    head = j->next;
    if (!head) tail = NULL;
    pthread_mutex_unlock(&mu);
    close(j->fd);
    free(j);
  }
  return NULL;
}

/* Queues close(fd); falls back to closing now if the thread or memory is unavailable. */
void reaper_close(int fd) {
  job_t *j = malloc(sizeof *j);
  pthread_mutex_lock(&mu);
  if (!started) {
    pthread_t t;
    started = pthread_create(&t, NULL, reaper_main, NULL) == 0;
    if (started) pthread_detach(t);
  }
  if (!j || !started) {
    pthread_mutex_unlock(&mu);
    free(j);
    close(fd);
    return;
  }
  j->fd = fd;
  j->next = NULL;
  if (tail) tail->next = j;
  else head = j;
  tail = j;
  pthread_cond_signal(&cv);
  pthread_mutex_unlock(&mu);
}

/* closeFdLater(fd): close(fd) on the reaper thread */
static napi_value close_fd_later(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv, NULL, "close") || !arg_i32(env, argv[0], &fd)) return NULL;
  reaper_close(fd);
  return make_undefined(env);
}

void register_reaper(napi_env env, napi_value exports) {
  NAPI_EXPORT_FN(env, exports, "closeFdLater", close_fd_later);
}

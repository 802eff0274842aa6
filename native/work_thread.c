/* The queue and thread behind native/work_thread.h (the reaper's and the spawner's). */
#include <signal.h>

#include "work_thread.h"

static void *work_thread_main(void *arg) {
  struct work_thread *w = arg;
  for (;;) {
    pthread_mutex_lock(&w->mu);
    while (!w->head) pthread_cond_wait(&w->cv, &w->mu);
    struct work_item *item = w->head;
    w->head = item->next;
    if (!w->head) w->tail = NULL;
    pthread_mutex_unlock(&w->mu);
    w->run(item);
  }
  return NULL;
}

bool work_thread_push(struct work_thread *w, struct work_item *item) {
  pthread_mutex_lock(&w->mu);
  if (!w->started) {
    /* Created with every signal blocked (a new thread inherits the mask): Node's signals are for its own threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t thread;
    w->started = pthread_create(&thread, NULL, work_thread_main, w) == 0;
    if (w->started) pthread_detach(thread);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  if (w->started) {
    item->next = NULL;
    if (w->tail) w->tail->next = item;
    else w->head = item;
    w->tail = item;
    pthread_cond_signal(&w->cv);
  }
  bool queued = w->started;
  pthread_mutex_unlock(&w->mu);
  return queued;
}

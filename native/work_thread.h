/* A background thread that runs queued items in order: started on first use, with every signal blocked. */
#ifndef VMLET_WORK_THREAD_H
#define VMLET_WORK_THREAD_H

#include <pthread.h>
#include <stdbool.h>

/* The first member of whatever a work thread runs. */
struct work_item {
  struct work_item *next;
};

struct work_thread {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct work_item *head, *tail;
  bool started;
  void (*run)(struct work_item *item); /* owns the item from then on */
};

#define WORK_THREAD_INIT(run_fn) { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, false, (run_fn) }

/* Queues `item` for `w`'s thread, starting the thread if needed; false if it cannot start (the caller keeps the item). */
bool work_thread_push(struct work_thread *w, struct work_item *item);

#endif

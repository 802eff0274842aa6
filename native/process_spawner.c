/*
 * Spawning process-backend helpers off the JavaScript thread. posix_spawn suspends its
 * caller until the child has exec'd (1-4 ms on a 2-core VM), and a new sandbox asks for a
 * waiting child to replace the one it took: on the event loop that would stall every other
 * callback of the process for that long. Here one thread spawns them, in queue order, and
 * a ticket (an External) carries the result to the thread that takes it, which then owns
 * the child (process_own_child: reaped if its environment ends first).
 *
 * A ticket nobody takes (collected, or its environment torn down) kills and reaps its child.
 */
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "napi_util.h"
#include "work_thread.h"

/* PENDING (queued) -> SPAWNING -> DONE or FAILED; PENDING or SPAWNING -> ABANDONED (nobody will take it). */
enum { SPAWN_PENDING = 0, SPAWN_SPAWNING = 1, SPAWN_DONE = 2, SPAWN_FAILED = 3, SPAWN_ABANDONED = 4 };

typedef struct spawn_ticket {
  struct work_item link;     /* first: the spawner thread's queue */
  _Atomic int state;         /* also the futex word a waiting taker sleeps on */
  _Atomic int refs;          /* the thread's and JavaScript's */
  int err;
  int pidfd;
  pid_t pid;
  int socket;    /* the host's end of the socket the child waits on */
  bool claimed;  /* taken by JavaScript (its thread only) */
  char path[];
} spawn_ticket_t;

/* Marks the addon's spawn tickets, so that no other External (a retire ticket, say) is read as one. */
static const napi_type_tag SPAWN_TICKET_TAG = { 0x766d6c6574737077ull, 0x6e7469636b657431ull };


static void ticket_release(spawn_ticket_t *t) {
  if (atomic_fetch_sub(&t->refs, 1) == 1) free(t);
}

/* The child of a ticket nobody will take: killed and reaped (on the reaper thread), its socket closed. */
static void drop_child(spawn_ticket_t *t) {
  reaper_retire_child(t->pidfd);
  close(t->socket);
}

/* socketpair + posix_spawn of a warm helper (spawn_helper, native/process_child.c). */
static void spawn(spawn_ticket_t *t) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    t->err = errno;
    return;
  }
  t->err = spawn_helper(t->path, &pair[1], 1, true, &t->pidfd, &t->pid);
  close(pair[1]);
  if (t->err) close(pair[0]);
  else t->socket = pair[0];
}

/* One ticket on the spawner thread: spawned unless abandoned first, its child dropped if abandoned meanwhile. */
static void run_ticket(struct work_item *item) {
  spawn_ticket_t *t = (spawn_ticket_t *)item;
  int expected = SPAWN_PENDING;
  if (atomic_compare_exchange_strong(&t->state, &expected, SPAWN_SPAWNING)) {
    spawn(t);
    expected = SPAWN_SPAWNING;
    if (!atomic_compare_exchange_strong(&t->state, &expected, t->err ? SPAWN_FAILED : SPAWN_DONE)) {
      if (!t->err) drop_child(t); /* abandoned while it spawned */
    }
    syscall(SYS_futex, &t->state, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
  }
  ticket_release(t);
}

static struct work_thread spawner = WORK_THREAD_INIT(run_ticket);

/* Garbage collection or the environment's teardown: a child nobody took is dropped. */
static void ticket_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  spawn_ticket_t *t = data;
  for (;;) {
    int state = atomic_load(&t->state);
    if (state == SPAWN_PENDING || state == SPAWN_SPAWNING) {
      if (atomic_compare_exchange_strong(&t->state, &state, SPAWN_ABANDONED)) break; /* the thread drops what it spawns */
      continue;
    }
    if (state == SPAWN_DONE && !t->claimed) drop_child(t);
    break;
  }
  ticket_release(t);
}

/* processSpawnWarmLater(path): queues the spawn of a warm helper (one waiting on a socket for its memfds); returns its ticket. */
static napi_value process_spawn_warm_later(napi_env env, napi_callback_info info) {
  napi_value argv[1], handle;
  size_t path_len;
  if (!get_args(env, info, 1, argv, NULL, "posix_spawn") || napi_get_value_string_utf8(env, argv[0], NULL, 0, &path_len) != napi_ok ||
      path_len == 0 || path_len >= 4096)
    return throw_message(env, "posix_spawn", "bad arguments");
  spawn_ticket_t *t = calloc(1, sizeof *t + path_len + 1);
  if (!t) return throw_errno(env, "calloc", ENOMEM);
  napi_get_value_string_utf8(env, argv[0], t->path, path_len + 1, &path_len);
  atomic_init(&t->state, SPAWN_PENDING);
  atomic_init(&t->refs, 2);
  t->pidfd = t->socket = -1;
  if (!work_thread_push(&spawner, &t->link)) {
    free(t);
    return throw_errno(env, "pthread_create", EAGAIN);
  }
  /* The finalizer is attached last: until then a failure abandons the ticket here, once. */
  if (napi_create_external(env, t, NULL, NULL, &handle) != napi_ok || napi_type_tag_object(env, handle, &SPAWN_TICKET_TAG) != napi_ok ||
      napi_add_finalizer(env, handle, t, ticket_finalize, NULL, NULL) != napi_ok) {
    ticket_finalize(env, t, NULL);
    return throw_message(env, "posix_spawn", "cannot make a ticket");
  }
  return handle;
}

/* Waits up to `ns` while the ticket is being spawned (FUTEX_WAIT), and while it is queued only if
 * `queued_too`: a queued one may sit behind other environments' spawns, where a spawn of the
 * caller's own would be quicker. */
static void wait_spawned(spawn_ticket_t *t, int64_t ns, bool queued_too) {
  struct timespec end, now;
  clock_gettime(CLOCK_MONOTONIC, &end);
  end.tv_sec += ns / 1000000000;
  end.tv_nsec += ns % 1000000000;
  if (end.tv_nsec >= 1000000000) end.tv_sec++, end.tv_nsec -= 1000000000;
  for (int state; (state = atomic_load(&t->state)) == SPAWN_SPAWNING || (queued_too && state == SPAWN_PENDING);) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t left = (int64_t)(end.tv_sec - now.tv_sec) * 1000000000 + (end.tv_nsec - now.tv_nsec);
    if (left <= 0) return;
    struct timespec rel = { left / 1000000000, left % 1000000000 };
    syscall(SYS_futex, &t->state, FUTEX_WAIT_PRIVATE, state, &rel, NULL, 0);
  }
}

/* processSpawnTake(ticket, waitNs, whileQueued): after waiting up to waitNs while it is being
 * spawned (and while it is queued, if whileQueued), its
 * child as [pidfd, pid, socket], now owned by this environment; undefined if still pending;
 * null once taken; the spawn's errno is thrown (once). */
static napi_value process_spawn_take(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  spawn_ticket_t *t;
  int64_t wait_ns;
  bool tagged = false, queued_too = false;
  if (!get_args(env, info, 3, argv, NULL, "posix_spawn") || napi_check_object_type_tag(env, argv[0], &SPAWN_TICKET_TAG, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, argv[0], (void **)&t) != napi_ok || napi_get_value_int64(env, argv[1], &wait_ns) != napi_ok || wait_ns < 0 ||
      napi_get_value_bool(env, argv[2], &queued_too) != napi_ok)
    return throw_message(env, "posix_spawn", "bad arguments");
  if (wait_ns > 0) wait_spawned(t, wait_ns, queued_too);
  int state = atomic_load(&t->state);
  if (state == SPAWN_PENDING || state == SPAWN_SPAWNING) return make_undefined(env);
  if (t->claimed || state == SPAWN_ABANDONED) {
    napi_value null;
    napi_get_null(env, &null);
    return null;
  }
  t->claimed = true;
  if (state == SPAWN_FAILED) return throw_errno(env, "posix_spawn", t->err);
  process_own_child(env, t->pidfd, t->socket);
  napi_value result;
  napi_create_array_with_length(env, 3, &result);
  napi_set_element(env, result, 0, make_i32(env, t->pidfd));
  napi_set_element(env, result, 1, make_i32(env, (int32_t)t->pid));
  napi_set_element(env, result, 2, make_i32(env, t->socket));
  return result;
}

void register_process_spawner(napi_env env, napi_value exports) {
  NAPI_EXPORT_FN(env, exports, "processSpawnWarmLater", process_spawn_warm_later);
  NAPI_EXPORT_FN(env, exports, "processSpawnTake", process_spawn_take);
}

/* The process backend's exit notifications for async runs: an eventfd the child writes
 * after it posts an exit (when the resume frame asks), watched by a uv_poll on the
 * thread's own event loop, so that an async call's result reaches JavaScript with one
 * wake-up (the event loop's) instead of two (a waiting thread's, then the loop's). The
 * eventfd is only a hint: JavaScript reads the mailbox's state word to know whether the
 * run ended, so a guest that writes it itself only makes the host look. */
#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <uv.h>

#include "napi_util.h"

struct notifier {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  int fd;
  bool closed;      /* uv_close called */
  bool uv_done;     /* libuv is done with the handle (its close callback ran) */
  bool handle_gone; /* JavaScript's External was finalized */
  /* Closes the poll when the environment (a worker's, say) shuts down, before Node unloads
   * this addon: a close callback run later would jump into unmapped code. */
  napi_async_cleanup_hook_handle cleanup;
};

/* Freed once neither libuv nor JavaScript can reach it. */
static void notifier_maybe_free(struct notifier *n) {
  if (n->uv_done && n->handle_gone) free(n);
}

/* Drains the eventfd (read), then calls the callback in a callback scope (microtasks run after it). */
static void notifier_readable(uv_poll_t *handle, int status, int events) {
  struct notifier *n = handle->data;
  uint64_t count;
  while (read(n->fd, &count, sizeof count) == sizeof count) {}
  napi_handle_scope scope;
  if (napi_open_handle_scope(n->env, &scope) != napi_ok) return;
  napi_value callback, receiver;
  if (napi_get_reference_value(n->env, n->callback, &callback) == napi_ok && callback != NULL && napi_get_global(n->env, &receiver) == napi_ok) {
    napi_value result;
    napi_make_callback(n->env, n->context, receiver, callback, 0, NULL, &result);
  }
  napi_close_handle_scope(n->env, scope);
}

static void notifier_closed(uv_handle_t *handle) {
  struct notifier *n = handle->data;
  close(n->fd); /* the notifier owns the eventfd (children keep their own copies) */
  n->uv_done = true;
  if (n->cleanup) napi_remove_async_cleanup_hook(n->cleanup); /* done, whether the hook ran or not */
  n->cleanup = NULL;
  notifier_maybe_free(n);
}

/* uv_poll_stop + uv_close, once; the eventfd is closed when libuv is done with it. */
static void notifier_close(napi_env env, struct notifier *n) {
  if (n->closed) return;
  n->closed = true;
  uv_poll_stop(&n->poll);
  napi_delete_reference(env, n->callback);
  napi_async_destroy(env, n->context);
  uv_close((uv_handle_t *)&n->poll, notifier_closed);
}

/* The environment shuts down: close now; notifier_closed tells Node it is done. */
static void notifier_env_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  struct notifier *n = arg;
  notifier_close(n->env, n);
}

static void notifier_finalize(napi_env env, void *data, void *hint) {
  struct notifier *n = data;
  notifier_close(env, n);
  n->handle_gone = true;
  notifier_maybe_free(n);
}

/* eventfdCreate(): eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) */
static napi_value eventfd_create(napi_env env, napi_callback_info info) {
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  return fd < 0 ? throw_errno(env, "eventfd", errno) : make_i32(env, fd);
}

/* processNotifier(eventfd, onNotify): a uv_poll (readable) of the eventfd on this thread's loop, unref'd; returns its handle. The eventfd passes to it. */
static napi_value process_notifier(napi_env env, napi_callback_info info) {
  napi_value argv[2], name, handle;
  int32_t fd;
  uv_loop_t *loop;
  if (!get_args(env, info, 2, argv, NULL, "uv_poll_init") || !arg_i32(env, argv[0], &fd) || napi_get_uv_event_loop(env, &loop) != napi_ok)
    return throw_message(env, "uv_poll_init", "bad arguments");
  struct notifier *n = calloc(1, sizeof *n);
  if (!n) return throw_errno(env, "calloc", ENOMEM);
  n->env = env;
  n->fd = fd;
  n->poll.data = n;
  if (uv_poll_init(loop, &n->poll, fd) != 0) {
    free(n);
    return throw_message(env, "uv_poll_init", "cannot watch the eventfd");
  }
  napi_create_string_utf8(env, "vmlet-process-notify", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, argv[1], 1, &n->callback);
  napi_async_init(env, NULL, name, &n->context);
  uv_poll_start(&n->poll, UV_READABLE, notifier_readable);
  uv_unref((uv_handle_t *)&n->poll); /* an idle sandbox must not keep Node alive */
  napi_add_async_cleanup_hook(env, notifier_env_cleanup, n, &n->cleanup);
  napi_create_external(env, n, notifier_finalize, NULL, &handle);
  return handle;
}

/* processNotifierClose(handle): stops watching (uv_close). */
static napi_value process_notifier_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct notifier *n;
  if (!get_args(env, info, 1, argv, NULL, "uv_close") || napi_get_value_external(env, argv[0], (void **)&n) != napi_ok)
    return throw_message(env, "uv_close", "bad arguments");
  notifier_close(env, n);
  return make_undefined(env);
}

void register_process_notify(napi_env env, napi_value exports) {
  NAPI_EXPORT_FN(env, exports, "eventfdCreate", eventfd_create);
  NAPI_EXPORT_FN(env, exports, "processNotifier", process_notifier);
  NAPI_EXPORT_FN(env, exports, "processNotifierClose", process_notifier_close);
}

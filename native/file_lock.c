/* Advisory locks on snapshot layout directories: flock(2), released by the kernel when the holder dies. */
#include <errno.h>
#include <sys/file.h>

#include "napi_util.h"

/* flock(fd, LOCK_EX | LOCK_NB) -> true if taken, false if another process holds it */
static napi_value try_lock_exclusive(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv, NULL, "flock") || !arg_i32(env, argv[0], &fd)) return throw_message(env, "flock", "bad arguments");
  while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      napi_value r;
      napi_get_boolean(env, false, &r);
      return r;
    }
    return throw_errno(env, "flock", errno);
  }
  napi_value r;
  napi_get_boolean(env, true, &r);
  return r;
}

void register_file_lock(napi_env env, napi_value exports) {
  NAPI_EXPORT_FN(env, exports, "tryLockExclusive", try_lock_exclusive);
}

/* Random bytes for guests' seeds and sandbox ids: getrandom(2), so the first sandbox of a process need not load node:crypto. */
#include <errno.h>
#include <sys/random.h>

#include "napi_util.h"

/* getrandom(buf, len, 0): fills a TypedArray or ArrayBuffer from the kernel's CSPRNG. */
static napi_value fill_random(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void *data;
  size_t len;
  if (!get_args(env, info, 1, argv, NULL, "getrandom") || !arg_bytes(env, argv[0], &data, &len))
    return throw_message(env, "getrandom", "bad arguments");
  unsigned char *at = data;
  while (len > 0) {
    ssize_t n = getrandom(at, len, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return throw_errno(env, "getrandom", errno);
    }
    at += n;
    len -= (size_t)n;
  }
  return make_undefined(env);
}

void register_random(napi_env env, napi_value exports) {
  NAPI_EXPORT_FN(env, exports, "fillRandom", fill_random);
}

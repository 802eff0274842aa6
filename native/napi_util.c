/* Argument and error helpers for the N-API wrappers. No policy lives here. */
#include "napi_util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *errno_name(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC";
    case E2BIG: return "E2BIG";
    case ENXIO: return "ENXIO";
    case ENOTTY: return "ENOTTY";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return "EUNKNOWN";
  }
}

napi_value throw_errno(napi_env env, const char *operation, int err) {
  napi_value msg, code, op, error, num;
  char text[256];
  snprintf(text, sizeof text, "%s: %s", operation, strerror(err));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, operation, NAPI_AUTO_LENGTH, &op);
  napi_create_int32(env, err, &num);
  napi_create_error(env, code, msg, &error);
  napi_set_named_property(env, error, "operation", op);
  napi_set_named_property(env, error, "errno", num);
  napi_throw(env, error);
  return NULL;
}

napi_value throw_message(napi_env env, const char *operation, const char *message) {
  napi_value msg, op, error;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, operation, NAPI_AUTO_LENGTH, &op);
  napi_create_type_error(env, NULL, msg, &error);
  napi_set_named_property(env, error, "operation", op);
  napi_throw(env, error);
  return NULL;
}

bool arg_i32(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

bool arg_u32(napi_env env, napi_value v, uint32_t *out) {
  return napi_get_value_uint32(env, v, out) == napi_ok;
}

bool arg_u64(napi_env env, napi_value v, uint64_t *out) {
  napi_valuetype type;
  if (napi_typeof(env, v, &type) != napi_ok) return false;
  if (type == napi_bigint) {
    bool lossless;
    return napi_get_value_bigint_uint64(env, v, out, &lossless) == napi_ok && lossless;
  }
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || d < 0 || d > 9007199254740991.0) return false;
  *out = (uint64_t)d;
  return true;
}

bool arg_bytes(napi_env env, napi_value v, void **data, size_t *len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t count, offset;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &type, &count, data, &ab, &offset) != napi_ok) return false;
    size_t elem = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: elem = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: elem = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
      default: elem = 1;
    }
    *len = count * elem;
    return true;
  }
  if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    napi_value ab;
    size_t offset;
    return napi_get_dataview_info(env, v, len, data, &ab, &offset) == napi_ok;
  }
  if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    return napi_get_arraybuffer_info(env, v, data, len) == napi_ok;
  }
  return false;
}

napi_value make_i32(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

napi_value make_undefined(napi_env env) {
  napi_value r;
  napi_get_undefined(env, &r);
  return r;
}

bool get_args(napi_env env, napi_callback_info info, size_t argc, napi_value *argv, napi_value *self,
              const char *operation) {
  size_t got = argc;
  if (napi_get_cb_info(env, info, &got, argv, self, NULL) != napi_ok) return false;
  if (got < argc) {
    throw_message(env, operation, "too few arguments");
    return false;
  }
  return true;
}

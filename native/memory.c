/* Guest memory: anonymous host mappings handed to JavaScript as ArrayBuffers, no copy. */
#include <errno.h>
#include <sys/mman.h>

#include "napi_util.h"

static void unmap_buffer(napi_env env, void *data, void *hint) {
  size_t size = (size_t)(uintptr_t)hint;
  /* SAFETY: data/hint are the address and length returned by mmap in alloc_memory. */
  munmap(data, size);
  int64_t unused; /* undo the adjustment made in alloc_memory, as V8 drops its own count */
  napi_adjust_external_memory(env, (int64_t)size, &unused);
}

/* mmap(MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE) [+ madvise(MADV_HUGEPAGE)] -> ArrayBuffer */
static napi_value alloc_memory(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  uint64_t size;
  bool huge;
  if (!get_args(env, info, 2, argv, NULL, "mmap") || !arg_u64(env, argv[0], &size) ||
      napi_get_value_bool(env, argv[1], &huge) != napi_ok)
    return throw_message(env, "mmap", "bad arguments");
  if (size == 0 || size % 4096 != 0) return throw_message(env, "mmap", "size must be a positive multiple of 4096");
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return throw_errno(env, "mmap", errno);
  /* Advisory: fewer shadow-page faults with 2 MiB host pages; failure is harmless. */
  if (huge) madvise(p, size, MADV_HUGEPAGE);
  if (napi_create_external_arraybuffer(env, p, size, unmap_buffer, (void *)(uintptr_t)size, &result) != napi_ok) {
    munmap(p, size);
    return throw_message(env, "napi_create_external_arraybuffer", "cannot wrap guest memory");
  }
  /* V8 counts the buffer as external memory and collects garbage when that grows fast;
   * a reservation is not memory in use (pages arrive as the guest touches them). */
  int64_t unused;
  napi_adjust_external_memory(env, -(int64_t)size, &unused);
  return result;
}

/* mmap(MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED|MAP_NORESERVE) over a whole buffer [+ MADV_HUGEPAGE]: fresh zero pages, file mappings dropped */
static napi_value reset_memory(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  void *data;
  size_t len;
  bool huge;
  if (!get_args(env, info, 2, argv, NULL, "mmap") || !arg_bytes(env, argv[0], &data, &len) ||
      napi_get_value_bool(env, argv[1], &huge) != napi_ok)
    return throw_message(env, "mmap", "bad arguments");
  if (len == 0 || len % 4096 || (uintptr_t)data % 4096) return throw_message(env, "mmap", "not a page-aligned buffer");
  /* SAFETY: the buffer is a mapping alloc_memory created; MAP_FIXED replaces its pages in
   * place, so the ArrayBuffer's pointer and length stay valid. */
  void *p = mmap(data, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return throw_errno(env, "mmap", errno);
  if (huge) madvise(p, len, MADV_HUGEPAGE);
  return make_undefined(env);
}

/* adviseHugePages(buffer): madvise(MADV_HUGEPAGE) over a whole mapping (the process backend's shared guest memory) */
static napi_value advise_huge_pages(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void *data;
  size_t len;
  if (!get_args(env, info, 1, argv, NULL, "madvise") || !arg_bytes(env, argv[0], &data, &len))
    return throw_message(env, "madvise", "bad arguments");
  if (len == 0 || len % 4096 || (uintptr_t)data % 4096) return throw_message(env, "madvise", "not a page-aligned buffer");
  if (madvise(data, len, MADV_HUGEPAGE) != 0) return throw_errno(env, "madvise", errno);
  return make_undefined(env);
}

void register_memory(napi_env env, napi_value exports) {
  NAPI_EXPORT_FN(env, exports, "adviseHugePages", advise_huge_pages);
  NAPI_EXPORT_FN(env, exports, "resetMemory", reset_memory);
  NAPI_EXPORT_FN(env, exports, "allocMemory", alloc_memory);
}

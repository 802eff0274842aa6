/*
 * Snapshot images: memfd files holding guest memory, mapped privately (copy-on-write)
 * under guest memory, or shared read-only as the source of restores.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "napi_util.h"

#define PAGE 4096u

static void unmap_view(napi_env env, void *data, void *hint) {
  (void)env;
  /* SAFETY: data/hint are the address and length returned by mmap in map_file_shared. */
  munmap(data, (size_t)(uintptr_t)hint);
}

static bool range_in(size_t len, uint64_t offset, uint64_t size) {
  return offset <= len && size <= len - offset && offset % PAGE == 0 && size % PAGE == 0;
}

/* memfd_create(name, MFD_CLOEXEC) + ftruncate(size) -> fd */
static napi_value memfd_new(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char name[64];
  size_t name_len;
  uint64_t size;
  if (!get_args(env, info, 2, argv, NULL, "memfd_create") ||
      napi_get_value_string_utf8(env, argv[0], name, sizeof name, &name_len) != napi_ok || !arg_u64(env, argv[1], &size))
    return throw_message(env, "memfd_create", "bad arguments");
  int fd = memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) return throw_errno(env, "memfd_create", errno);
  if (ftruncate(fd, (off_t)size) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "ftruncate", err);
  }
  return make_i32(env, fd);
}

static bool page_is_zero(const uint8_t *p) {
  const uint64_t *w = (const uint64_t *)p;
  uint64_t acc = 0;
  for (unsigned i = 0; i < PAGE / 8; i++) acc |= w[i];
  return acc == 0;
}

/* pwrite each run of non-zero pages of buf[0, len) to fd at file_offset + its offset, so zero
 * pages stay holes. Adds the pages written to *written; returns 0 or an errno. */
static int write_non_zero_runs(int fd, const uint8_t *buf, uint64_t len, uint64_t file_offset, uint64_t *written) {
  for (uint64_t at = 0; at < len;) {
    if (page_is_zero(buf + at)) {
      at += PAGE;
      continue;
    }
    uint64_t end = at + PAGE; /* one pwrite per run of non-zero pages */
    while (end < len && !page_is_zero(buf + end)) end += PAGE;
    for (uint64_t done = at; done < end;) {
      ssize_t n = pwrite(fd, buf + done, end - done, (off_t)(file_offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return n < 0 ? errno : EIO;
      done += (uint64_t)n;
    }
    *written += (end - at) / PAGE;
    at = end;
  }
  return 0;
}

static napi_value pages_result(napi_env env, uint64_t pages) {
  napi_value r;
  napi_create_double(env, (double)pages, &r);
  return r;
}

/* writeNonZeroPages(fd, buffer, offset, size): pwrite each non-zero page at its own offset, so zero pages stay holes -> pages written */
static napi_value write_non_zero_pages(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t fd;
  void *data;
  size_t len;
  uint64_t offset, size;
  if (!get_args(env, info, 4, argv, NULL, "pwrite") || !arg_i32(env, argv[0], &fd) || !arg_bytes(env, argv[1], &data, &len) ||
      !arg_u64(env, argv[2], &offset) || !arg_u64(env, argv[3], &size))
    return throw_message(env, "pwrite", "bad arguments");
  if (!range_in(len, offset, size)) return throw_message(env, "pwrite", "range outside buffer or not page aligned");
  uint64_t written = 0;
  int err = write_non_zero_runs(fd, (const uint8_t *)data + offset, size, offset, &written);
  if (err) return throw_errno(env, "pwrite", err);
  return pages_result(env, written);
}

/* copyNonZeroPages(srcFd, dstFd, offset, size): pread [offset, offset+size) of src, pwrite its
 * non-zero pages at the same offsets of dst (zero pages stay holes) -> pages written. No
 * mapping of src: a fresh mapping would fault on every page it reads. */
static napi_value copy_non_zero_pages(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t src, dst;
  uint64_t offset, size;
  if (!get_args(env, info, 4, argv, NULL, "pread") || !arg_i32(env, argv[0], &src) || !arg_i32(env, argv[1], &dst) ||
      !arg_u64(env, argv[2], &offset) || !arg_u64(env, argv[3], &size))
    return throw_message(env, "pread", "bad arguments");
  if (offset % PAGE || size % PAGE) return throw_message(env, "pread", "range not page aligned");
  enum { CHUNK = 256 * PAGE };
  uint8_t *buf = malloc(CHUNK);
  if (!buf) return throw_errno(env, "pread", ENOMEM);
  uint64_t written = 0;
  const char *op = NULL;
  int err = 0;
  for (uint64_t at = offset; at < offset + size && !err;) {
    size_t want = (size_t)(offset + size - at < CHUNK ? offset + size - at : CHUNK);
    ssize_t got = pread(src, buf, want, (off_t)at);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0 || got % PAGE) {
      op = "pread";
      err = got < 0 ? errno : EIO; /* a short read: the source shrank */
      break;
    }
    if ((err = write_non_zero_runs(dst, buf, (uint64_t)got, at, &written))) op = "pwrite";
    at += (uint64_t)got;
  }
  free(buf);
  if (err) return throw_errno(env, op, err);
  return pages_result(env, written);
}

/* mapFilePrivate(buffer, offset, size, fd): mmap(MAP_PRIVATE|MAP_FIXED) of the file over that range of the buffer */
static napi_value map_file_private(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  void *data;
  size_t len;
  uint64_t offset, size;
  int32_t fd;
  if (!get_args(env, info, 4, argv, NULL, "mmap") || !arg_bytes(env, argv[0], &data, &len) ||
      !arg_u64(env, argv[1], &offset) || !arg_u64(env, argv[2], &size) || !arg_i32(env, argv[3], &fd))
    return throw_message(env, "mmap", "bad arguments");
  if (!range_in(len, offset, size)) return throw_message(env, "mmap", "range outside buffer or not page aligned");
  /* SAFETY: the range lies inside a mapping this addon created (alloc_memory); MAP_FIXED
   * replaces its pages in place, so the ArrayBuffer's pointer and length stay valid. */
  void *p = mmap((uint8_t *)data + offset, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd,
                 (off_t)offset);
  if (p == MAP_FAILED) return throw_errno(env, "mmap", errno);
  return make_undefined(env);
}

/* mapFileShared(fd, size) -> read-only ArrayBuffer over the whole file (MAP_SHARED) */
static napi_value map_file_shared(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  int32_t fd;
  uint64_t size;
  if (!get_args(env, info, 2, argv, NULL, "mmap") || !arg_i32(env, argv[0], &fd) || !arg_u64(env, argv[1], &size))
    return throw_message(env, "mmap", "bad arguments");
  if (size == 0 || size % PAGE) return throw_message(env, "mmap", "size must be a positive multiple of 4096");
  void *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return throw_errno(env, "mmap", errno);
  if (napi_create_external_arraybuffer(env, p, size, unmap_view, (void *)(uintptr_t)size, &result) != napi_ok) {
    munmap(p, size);
    return throw_message(env, "napi_create_external_arraybuffer", "cannot wrap the image");
  }
  return result;
}

/* dataRanges(fd, size) -> [start, end, start, end, ...] of the file's data (lseek SEEK_DATA/SEEK_HOLE) */
static napi_value data_ranges(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  int32_t fd;
  uint64_t size;
  if (!get_args(env, info, 2, argv, NULL, "lseek") || !arg_i32(env, argv[0], &fd) || !arg_u64(env, argv[1], &size))
    return throw_message(env, "lseek", "bad arguments");
  napi_create_array(env, &result);
  uint32_t n = 0;
  off_t at = 0;
  while ((uint64_t)at < size) {
    off_t start = lseek(fd, at, SEEK_DATA);
    if (start < 0) {
      if (errno == ENXIO) break; /* no data after `at` */
      return throw_errno(env, "lseek", errno);
    }
    off_t end = lseek(fd, start, SEEK_HOLE);
    if (end < 0) return throw_errno(env, "lseek", errno);
    napi_value s, e;
    napi_create_double(env, (double)start, &s);
    napi_create_double(env, (double)end, &e);
    napi_set_element(env, result, n++, s);
    napi_set_element(env, result, n++, e);
    at = end;
  }
  return result;
}

void register_memory_file(napi_env env, napi_value exports) {
  NAPI_EXPORT_FN(env, exports, "dataRanges", data_ranges);
  NAPI_EXPORT_FN(env, exports, "memfdCreate", memfd_new);
  NAPI_EXPORT_FN(env, exports, "writeNonZeroPages", write_non_zero_pages);
  NAPI_EXPORT_FN(env, exports, "copyNonZeroPages", copy_non_zero_pages);
  NAPI_EXPORT_FN(env, exports, "mapFilePrivate", map_file_private);
  NAPI_EXPORT_FN(env, exports, "mapFileShared", map_file_shared);
}

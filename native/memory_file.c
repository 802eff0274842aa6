/*
 * Snapshot images: memfd files holding guest memory, mapped privately (copy-on-write)
 * under guest memory, or shared read-only as the source of restores.
 */
#include <errno.h>
#include <fcntl.h>
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

/* mmap(MAP_SHARED) of a whole file with `prot` -> ArrayBuffer (munmap when it is collected) */
static napi_value map_whole_file(napi_env env, napi_callback_info info, int prot, int flags) {
  napi_value argv[2], result;
  int32_t fd;
  uint64_t size;
  if (!get_args(env, info, 2, argv, NULL, "mmap") || !arg_i32(env, argv[0], &fd) || !arg_u64(env, argv[1], &size))
    return throw_message(env, "mmap", "bad arguments");
  if (size == 0 || size % PAGE) return throw_message(env, "mmap", "size must be a positive multiple of 4096");
  void *p = mmap(NULL, size, prot, MAP_SHARED | flags, fd, 0);
  if (p == MAP_FAILED) return throw_errno(env, "mmap", errno);
  if (napi_create_external_arraybuffer(env, p, size, unmap_view, (void *)(uintptr_t)size, &result) != napi_ok) {
    munmap(p, size);
    return throw_message(env, "napi_create_external_arraybuffer", "cannot wrap the mapping");
  }
  return result;
}

/* mapFileShared(fd, size) -> read-only ArrayBuffer over the whole file (MAP_SHARED) */
static napi_value map_file_shared(napi_env env, napi_callback_info info) {
  return map_whole_file(env, info, PROT_READ, 0);
}

/* mapFileSharedWritable(fd, size) -> read-write ArrayBuffer over the whole file (MAP_SHARED):
 * guest memory of the process backend, which the sandbox's child maps too */
static napi_value map_file_shared_writable(napi_env env, napi_callback_info info) {
  return map_whole_file(env, info, PROT_READ | PROT_WRITE, MAP_NORESERVE);
}

/* punchHole(fd, offset, size): fallocate(PUNCH_HOLE | KEEP_SIZE): the range reads as zeros, its pages are freed */
static napi_value punch_hole(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd;
  uint64_t offset, size;
  if (!get_args(env, info, 3, argv, NULL, "fallocate") || !arg_i32(env, argv[0], &fd) || !arg_u64(env, argv[1], &offset) ||
      !arg_u64(env, argv[2], &size))
    return throw_message(env, "fallocate", "bad arguments");
  if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)size) != 0) return throw_errno(env, "fallocate", errno);
  return make_undefined(env);
}

/* fallocate(PUNCH_HOLE | KEEP_SIZE) over every range of [0, size) with data (lseek
 * SEEK_DATA/SEEK_HOLE): one punch over the whole file would also walk every page-table
 * entry of the file's mappings over the empty rest. 0, or an errno. */
int punch_data(int fd, uint64_t size) {
  off_t at = 0;
  while ((uint64_t)at < size) {
    off_t data = lseek(fd, at, SEEK_DATA);
    if (data < 0) return errno == ENXIO ? 0 : errno; /* ENXIO: no data after `at` */
    off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0) return errno;
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, data, hole - data) != 0) return errno;
    at = hole;
  }
  return 0;
}

/* punchData(fd, size): punch_data: every page of the file with data is dropped */
static napi_value punch_data_napi(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  uint64_t size;
  if (!get_args(env, info, 2, argv, NULL, "fallocate") || !arg_i32(env, argv[0], &fd) || !arg_u64(env, argv[1], &size))
    return throw_message(env, "fallocate", "bad arguments");
  int err = punch_data(fd, size);
  return err ? throw_errno(env, "fallocate", err) : make_undefined(env);
}

/* Data ranges of a file as [start, end) pairs (lseek SEEK_DATA/SEEK_HOLE); *count pairs. */
static int collect_ranges(int fd, uint64_t size, uint64_t **out, size_t *count) {
  size_t cap = 16, n = 0;
  uint64_t *r = malloc(cap * 2 * sizeof *r);
  if (!r) return ENOMEM;
  off_t at = 0;
  while ((uint64_t)at < size) {
    off_t start = lseek(fd, at, SEEK_DATA);
    if (start < 0) {
      if (errno == ENXIO) break;
      free(r);
      return errno;
    }
    off_t end = lseek(fd, start, SEEK_HOLE);
    if (end < 0) {
      free(r);
      return errno;
    }
    if (n == cap) {
      uint64_t *grown = realloc(r, (cap *= 2) * 2 * sizeof *r);
      if (!grown) {
        free(r);
        return ENOMEM;
      }
      r = grown;
    }
    r[2 * n] = (uint64_t)start;
    r[2 * n + 1] = (uint64_t)end < size ? (uint64_t)end : size;
    n++;
    at = end;
  }
  *out = r;
  *count = n;
  return 0;
}

static bool in_ranges(const uint64_t *r, size_t n, size_t *cursor, uint64_t at) {
  while (*cursor < n && r[2 * *cursor + 1] <= at) (*cursor)++;
  return *cursor < n && r[2 * *cursor] <= at;
}

/* syncToImage(memoryFd, memory, imageFd, image): makes shared guest memory equal to a
 * snapshot image, visiting only pages that hold data in either file: a page the image has
 * is compared and copied if it differs, any other page with data is zeroed. Returns pages
 * changed. (The process backend's restore: it has no dirty log of the child's writes.) */
static napi_value sync_to_image(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t mem_fd, img_fd;
  void *mem, *img;
  size_t mem_len, img_len;
  if (!get_args(env, info, 4, argv, NULL, "lseek") || !arg_i32(env, argv[0], &mem_fd) || !arg_bytes(env, argv[1], &mem, &mem_len) ||
      !arg_i32(env, argv[2], &img_fd) || !arg_bytes(env, argv[3], &img, &img_len))
    return throw_message(env, "lseek", "bad arguments");
  if (mem_len != img_len || mem_len % PAGE) return throw_message(env, "lseek", "memory and image differ in size");
  static const uint8_t zero[PAGE];
  uint64_t *mr = NULL, *ir = NULL;
  size_t mn = 0, in = 0;
  int err = collect_ranges(mem_fd, mem_len, &mr, &mn);
  if (!err) err = collect_ranges(img_fd, img_len, &ir, &in);
  if (err) {
    free(mr);
    return throw_errno(env, "lseek", err);
  }
  uint64_t changed = 0;
  size_t mc = 0, ic = 0, mi = 0, ii = 0;
  for (;;) {
    /* The next page with data in either file. */
    while (mi < mn && mr[2 * mi + 1] <= 0) mi++;
    uint64_t next_m = mi < mn ? mr[2 * mi] : UINT64_MAX, next_i = ii < in ? ir[2 * ii] : UINT64_MAX;
    uint64_t start = next_m < next_i ? next_m : next_i;
    if (start == UINT64_MAX) break;
    uint64_t end = start == next_m ? mr[2 * mi + 1] : ir[2 * ii + 1];
    if (start == next_m && start == next_i) end = mr[2 * mi + 1] > ir[2 * ii + 1] ? mr[2 * mi + 1] : ir[2 * ii + 1];
    for (uint64_t at = start & ~(uint64_t)(PAGE - 1); at < end; at += PAGE) {
      uint8_t *m = (uint8_t *)mem + at;
      const uint8_t *want = in_ranges(ir, in, &ic, at) ? (const uint8_t *)img + at : zero;
      (void)in_ranges(mr, mn, &mc, at);
      if (memcmp(m, want, PAGE) != 0) {
        memcpy(m, want, PAGE);
        changed++;
      }
    }
    /* Past `end` in both lists. */
    while (mi < mn && mr[2 * mi + 1] <= end) mi++;
    while (ii < in && ir[2 * ii + 1] <= end) ii++;
    if (mi < mn && mr[2 * mi] < end) mr[2 * mi] = end;
    if (ii < in && ir[2 * ii] < end) ir[2 * ii] = end;
  }
  free(mr);
  free(ir);
  return pages_result(env, changed);
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
  NAPI_EXPORT_FN(env, exports, "mapFileSharedWritable", map_file_shared_writable);
  NAPI_EXPORT_FN(env, exports, "punchHole", punch_hole);
  NAPI_EXPORT_FN(env, exports, "punchData", punch_data_napi);
  NAPI_EXPORT_FN(env, exports, "syncToImage", sync_to_image);
}

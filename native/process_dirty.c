/* The process backend's dirty log: the child write-protects its writable guest memory
 * with a userfaultfd in async mode (native/process/helper.c), so a write clears a page's
 * protection; the host finds those pages, and protects them again, with PAGEMAP_SCAN on
 * the child's /proc/<pid>/pagemap. Policy (when to trust the scan, what to copy) is
 * TypeScript's: src/hypervisor/process/write-tracking.ts. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "napi_util.h"

/* include/uapi/linux/fs.h of Linux 6.7+, newer than some distributions' headers. */
struct vmlet_page_region {
  uint64_t start, end, categories;
};
struct vmlet_pm_scan_arg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define VMLET_PAGEMAP_SCAN _IOWR('f', 16, struct vmlet_pm_scan_arg)
#define PM_SCAN_WP_MATCHING_ (1u << 0)
#define PM_SCAN_CHECK_WPASYNC_ (1u << 1)
#define PAGE_IS_WPALLOWED_ (1u << 0)
#define PAGE_IS_WRITTEN_ (1u << 1)
#define PAGE_IS_PRESENT_ (1u << 3)
#define PAGE_IS_SWAPPED_ (1u << 4)

#define PAGE_SHIFT_ 12
#define BATCH 256

/* pagemapOpen(pid) -> fd: open(/proc/<pid>/pagemap), kept for the child's life. */
static napi_value pagemap_open(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t pid;
  if (!get_args(env, info, 1, argv, NULL, "open") || !arg_i32(env, argv[0], &pid) || pid <= 0)
    return throw_message(env, "open", "bad arguments");
  char path[48];
  snprintf(path, sizeof path, "/proc/%d/pagemap", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, "open", errno);
  return make_i32(env, fd);
}

/* Runs one PAGEMAP_SCAN query over [start, end) to its end (batch after batch), writing
 * each region found as [first page, end page) into out (while it has room). Returns the
 * regions found (more than out holds means some were left out), or -errno. */
static int64_t scan_range(int fd, uint64_t start, uint64_t end, const struct vmlet_pm_scan_arg *query, uint32_t *out,
                          size_t out_pairs, size_t *at) {
  struct vmlet_page_region batch[BATCH];
  int64_t found = 0;
  while (start < end) {
    struct vmlet_pm_scan_arg arg = *query;
    arg.size = sizeof arg;
    arg.start = start;
    arg.end = end;
    arg.vec = (uint64_t)(uintptr_t)batch;
    arg.vec_len = BATCH;
    long n = ioctl(fd, VMLET_PAGEMAP_SCAN, &arg); /* PAGEMAP_SCAN */
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    for (long i = 0; i < n; i++, found++) {
      if (*at >= out_pairs) continue;
      out[2 * *at] = (uint32_t)(batch[i].start >> PAGE_SHIFT_);
      out[2 * *at + 1] = (uint32_t)(batch[i].end >> PAGE_SHIFT_);
      (*at)++;
    }
    if (arg.walk_end <= start) return -EIO; /* no progress: never loop forever */
    start = arg.walk_end;
  }
  return found;
}

/* Reads (fd, ranges: Float64Array [start, end, ...] of guest addresses, out: Uint32Array). */
static bool scan_args(napi_env env, napi_callback_info info, napi_value *argv, size_t argc, int32_t *fd, double **ranges,
                      size_t *range_count, uint32_t **out, size_t *out_pairs) {
  void *r, *o;
  size_t rl, ol;
  if (!get_args(env, info, argc, argv, NULL, "PAGEMAP_SCAN") || !arg_i32(env, argv[0], fd) || !arg_bytes(env, argv[1], &r, &rl) ||
      !arg_bytes(env, argv[2], &o, &ol))
    return false;
  *ranges = r;
  *range_count = rl / (2 * sizeof(double));
  *out = o;
  *out_pairs = ol / (2 * sizeof(uint32_t));
  return true;
}

/* Every range of `ranges` scanned with `query`, regions appended to `out` (*at of them so
 * far); the regions found, or -errno. */
static int64_t scan_ranges(int fd, const double *ranges, size_t count, struct vmlet_pm_scan_arg *query, uint32_t *out, size_t pairs, size_t *at) {
  int64_t found = 0;
  for (size_t i = 0; i < count && found >= 0; i++) {
    int64_t n = scan_range(fd, (uint64_t)ranges[2 * i], (uint64_t)ranges[2 * i + 1], query, out, pairs, at);
    found = n < 0 ? n : found + n;
  }
  return found;
}

static napi_value scan_result(napi_env env, int64_t found) {
  if (found < 0) return throw_errno(env, "PAGEMAP_SCAN", (int)-found);
  napi_value v;
  napi_create_double(env, (double)found, &v);
  return v;
}

/* pagemapTakeWritten(fd, ranges, out) -> regions: the pages with an entry (present or
 * swapped) that is not write-protected (PAGE_IS_WRITTEN), protected again in the same walk
 * (PM_SCAN_WP_MATCHING); every range must be registered for async write-protect
 * (PM_SCAN_CHECK_WPASYNC). Only pages with an entry: the kernel counts a range with no
 * page table as written too, and protecting it would put a marker on each of its pages. */
static napi_value pagemap_take_written(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd;
  double *ranges;
  uint32_t *out;
  size_t count, pairs, at = 0;
  if (!scan_args(env, info, argv, 3, &fd, &ranges, &count, &out, &pairs)) return throw_message(env, "PAGEMAP_SCAN", "bad arguments");
  struct vmlet_pm_scan_arg query = { .flags = PM_SCAN_WP_MATCHING_ | PM_SCAN_CHECK_WPASYNC_, .category_mask = PAGE_IS_WRITTEN_,
                                     .category_anyof_mask = PAGE_IS_PRESENT_ | PAGE_IS_SWAPPED_, .return_mask = PAGE_IS_WRITTEN_ };
  int64_t found = scan_ranges(fd, ranges, count, &query, out, pairs, &at);
  return scan_result(env, found);
}

/* pagemapTakeUnprotected(fd, ranges, out) -> regions: pages with no entry at all (neither
 * present nor swapped, so no write protection either), e.g. a written page whose entry
 * the kernel dropped (reclaim), which PAGE_IS_WRITTEN does not report; each is protected
 * again (a marker entry) by a second walk over it. */
static napi_value pagemap_take_unprotected(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd;
  double *ranges;
  uint32_t *out;
  size_t count, pairs, at = 0;
  if (!scan_args(env, info, argv, 3, &fd, &ranges, &count, &out, &pairs)) return throw_message(env, "PAGEMAP_SCAN", "bad arguments");
  struct vmlet_pm_scan_arg query = { .flags = PM_SCAN_CHECK_WPASYNC_, .category_inverted = PAGE_IS_PRESENT_ | PAGE_IS_SWAPPED_,
                                     .category_mask = PAGE_IS_PRESENT_ | PAGE_IS_SWAPPED_, .return_mask = PAGE_IS_WPALLOWED_ };
  int64_t found = scan_ranges(fd, ranges, count, &query, out, pairs, &at);
  /* Protect what was found: without an output vector PM_SCAN_WP_MATCHING protects every
   * unprotected entry of the range, empty ones included. */
  for (size_t i = 0; i < at && found >= 0; i++) {
    struct vmlet_pm_scan_arg arg = { .size = sizeof arg, .flags = PM_SCAN_WP_MATCHING_ | PM_SCAN_CHECK_WPASYNC_,
                                     .start = (uint64_t)out[2 * i] << PAGE_SHIFT_, .end = (uint64_t)out[2 * i + 1] << PAGE_SHIFT_,
                                     .category_mask = PAGE_IS_WPALLOWED_, .return_mask = PAGE_IS_WPALLOWED_ };
    if (ioctl(fd, VMLET_PAGEMAP_SCAN, &arg) < 0) found = -errno; /* PAGEMAP_SCAN (protect only) */
  }
  return scan_result(env, found);
}

/* pagemapPresent(fd, ranges, out, written) -> regions: the pages with a present entry (what
 * the child mapped: a snapshot's working set), only those not write-protected when
 * `written`; read only (no flags: nothing is protected). */
static napi_value pagemap_present(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t fd;
  double *ranges;
  uint32_t *out;
  size_t count, pairs, at = 0;
  bool written;
  if (!scan_args(env, info, argv, 4, &fd, &ranges, &count, &out, &pairs) || napi_get_value_bool(env, argv[3], &written) != napi_ok)
    return throw_message(env, "PAGEMAP_SCAN", "bad arguments");
  uint64_t categories = PAGE_IS_PRESENT_ | (written ? PAGE_IS_WRITTEN_ : 0);
  struct vmlet_pm_scan_arg query = { .category_mask = categories, .return_mask = categories };
  return scan_result(env, scan_ranges(fd, ranges, count, &query, out, pairs, &at)); /* PAGEMAP_SCAN (read only) */
}

void register_process_dirty(napi_env env, napi_value exports) {
  NAPI_EXPORT_FN(env, exports, "pagemapPresent", pagemap_present);
  NAPI_EXPORT_FN(env, exports, "pagemapOpen", pagemap_open);
  NAPI_EXPORT_FN(env, exports, "pagemapTakeWritten", pagemap_take_written);
  NAPI_EXPORT_FN(env, exports, "pagemapTakeUnprotected", pagemap_take_unprotected);
}

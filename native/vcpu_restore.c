/*
 * The restore path: put guest memory and CPU state back to a snapshot's in as few
 * crossings from JavaScript as possible (each crossing after a VM exit costs
 * microseconds on PVM).
 *
 * A restore plan is registered once per vCPU (restorePlan: the dirty-log bitmaps, guest
 * memory and a shared control array) and once per snapshot (restoreSource: image, regs,
 * XSAVE). A restore then takes no arguments. It runs either at once (restoreNow) or,
 * when JavaScript sets ctl[CTL_PENDING], inside the next run (vcpu_run_once), so that a
 * restore and the call after it cost one crossing.
 *
 * One restore finds the dirty pages either from the vCPU's dirty ring (no ioctl: the
 * ring is memory; see dirty_ring.c and RING_MAX_WRITABLE for when pages are re-protected)
 * or, where the kernel has no ring, with KVM_GET_DIRTY_LOG (in manual-protect mode it
 * learns the hot pages — dirty in two reads in a row, kept writable — and
 * KVM_CLEAR_DIRTY_LOGs the other dirty pages over the range of words that have any). It
 * copies every dirty page and every host-written page from the image, except the pages
 * JavaScript already copied (the skip list); then KVM_SET_REGS (or the kvm_run sync
 * area) and KVM_SET_XSAVE unless the guest reloads its FPU itself. Every pass is over
 * preallocated buffers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm_vcpu.h"

#define PAGE 4096
/* A page dirty in two reads in a row becomes hot; at most about this many are hot. */
#define MAX_HOT_PAGES 64
/* Ring mode: the writable pages are copied on every restore (~0.2 µs each) instead of
 * faulting on their next write (~7 µs each on PVM). Reset (re-protect them all) when they
 * are more than this many, or every `relearn_every` restores, so that pages the guest
 * stopped writing are not copied for ever: a page is kept for about as many restores as
 * its fault would cost in copies (ski rental). The period starts at RING_RELEARN_EVERY and
 * doubles, up to RING_RELEARN_MAX, each time a relearn finds the guest writing nearly all
 * the same pages again (nothing was stale): a steady working set then pays its faults
 * rarely. A relearn that sheds pages sets it back, and so does a writable set grown well
 * past the working set the last relearn found (one request wrote many other pages: they
 * are likely stale at the next restore already). */
#define RING_MAX_WRITABLE 512
#define RING_RELEARN_EVERY 32
#define RING_RELEARN_MAX 1024

static const char *const restore_ops[] = {"restore", "KVM_GET_DIRTY_LOG", "KVM_CLEAR_DIRTY_LOG", "KVM_SET_REGS", "KVM_SET_XSAVE",
                                          "KVM_RESET_DIRTY_RINGS"};

static bool in_list(const int32_t *list, int32_t n, size_t page) {
  for (int32_t i = 0; i < n; i++)
    if ((size_t)list[i] == page) return true;
  return false;
}

static inline void copy_page(restore_plan_t *p, size_t page) {
  memcpy(p->memory + page * PAGE, p->image + page * PAGE, PAGE);
}

/*
 * KVM_GET_DIRTY_LOG, then one pass over the bitmap: (manual mode) learn hot pages and
 * collect the dirty non-hot ones for KVM_CLEAR_DIRTY_LOG, and, if `copy`, copy every
 * dirty page not in `skip` from the image. The previous read is looked at only where it
 * had bits (its range is kept), so the pass reads little more than the kernel's bitmap.
 * Returns pages dirty, or -errno with ctl[CTL_ERROP] set.
 */
static int read_dirty_log(restore_plan_t *p, bool copy, const int32_t *skip, int32_t skip_n) {
  struct kvm_dirty_log log = {.slot = p->slot, .dirty_bitmap = p->dirty};
  if (ioctl(p->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
    p->ctl[CTL_ERROP] = RESTORE_OP_GET_LOG;
    return -errno;
  }
  uint64_t *d = p->dirty, *prev = p->prev, *hot = p->hot, *clear = p->clear;
  size_t first = SIZE_MAX, last = 0, prev_first = SIZE_MAX, prev_last = 0;
  int dirty = 0;
  for (size_t w = 0; w < p->words; w++) {
    uint64_t dw = d[w];
    if (dw == 0 && (w < p->prev_first || w > p->prev_last || prev[w] == 0)) continue;
    if (p->mode == DIRTY_MANUAL) {
      uint64_t repeated = dw & prev[w] & ~hot[w];
      if (repeated && p->hot_count < MAX_HOT_PAGES) {
        hot[w] |= repeated;
        p->hot_count += (uint32_t)__builtin_popcountll(repeated);
      }
      prev[w] = dw;
      if (dw) {
        if (prev_first == SIZE_MAX) prev_first = w;
        prev_last = w;
      }
      uint64_t c = dw & ~hot[w];
      if (c) {
        clear[w] = c;
        if (first == SIZE_MAX) first = w;
        last = w;
      }
    }
    for (uint64_t bits = dw; bits; bits &= bits - 1) {
      size_t page = w * 64 + (size_t)__builtin_ctzll(bits);
      if (page >= p->pages) break;
      dirty++;
      if (copy && !(skip_n && in_list(skip, skip_n, page))) copy_page(p, page); /* else JavaScript copied it */
    }
  }
  p->prev_first = prev_first;
  p->prev_last = prev_last;
  if (first == SIZE_MAX) return dirty;
  /* first_page must be a multiple of 64, num_pages too unless the range ends the slot. */
  uint64_t first_page = (uint64_t)first * 64, end_page = (uint64_t)(last + 1) * 64;
  if (end_page > p->pages) end_page = p->pages;
  struct kvm_clear_dirty_log c = {.slot = p->slot, .num_pages = (uint32_t)(end_page - first_page), .first_page = first_page,
                                  .dirty_bitmap = clear + first};
  int r = ioctl(p->vm_fd, KVM_CLEAR_DIRTY_LOG, &c);
  int err = errno;
  memset(clear + first, 0, (last - first + 1) * sizeof *clear); /* clear[] stays all zero between reads */
  if (r < 0) {
    p->ctl[CTL_ERROP] = RESTORE_OP_CLEAR_LOG;
    return -err;
  }
  return dirty;
}

/* The 32-bit host writes JavaScript queued for after the copies (CTL_PATCHES). */
static void apply_patches(restore_plan_t *p) {
  int32_t *ctl = p->ctl, n = ctl[CTL_PATCH_COUNT];
  const int32_t *pairs = ctl + CTL_HEADER + p->host_cap + p->skip_cap;
  if (n < 0 || n > CTL_PATCHES) n = 0;
  for (int32_t i = 0; i < n; i++) {
    size_t at = (size_t)(uint32_t)pairs[2 * i];
    if (at <= p->pages * PAGE - 4) memcpy(p->memory + at, &pairs[2 * i + 1], 4);
  }
  ctl[CTL_PATCH_COUNT] = 0;
}

/* Ring mode: copy the writable pages and the ones re-protected since the last restore
 * (they were spilled from a full ring); the latter stay marked until forget_spilled(). */
static int copy_ring_pages(vcpu_t *v, const int32_t *skip, int32_t skip_n) {
  restore_plan_t *p = &v->restore;
  dirty_ring_t *r = &v->ring;
  int e = dirty_ring_harvest(v);
  if (e < 0) {
    p->ctl[CTL_ERROP] = RESTORE_OP_RESET_RING;
    return e;
  }
  int copied = 0;
  for (uint32_t i = 0; i < r->writable_n; i++, copied++)
    if (!(skip_n && in_list(skip, skip_n, r->writable[i]))) copy_page(p, r->writable[i]);
  if (p->prev_first == SIZE_MAX) return copied;
  for (size_t w = p->prev_first; w <= p->prev_last; w++) {
    for (uint64_t bits = p->prev[w] & ~p->hot[w]; bits; bits &= bits - 1, copied++) {
      size_t page = w * 64 + (size_t)__builtin_ctzll(bits);
      if (!(skip_n && in_list(skip, skip_n, page))) copy_page(p, page);
    }
  }
  return copied;
}

static void forget_spilled(restore_plan_t *p) {
  if (p->prev_first == SIZE_MAX) return;
  memset(p->prev + p->prev_first, 0, (p->prev_last - p->prev_first + 1) * sizeof *p->prev);
  p->prev_first = SIZE_MAX;
  p->prev_last = 0;
}

/* Whether the dirty-page pass of this restore already counted (and copied) `page`. */
static bool counted(const restore_plan_t *p, size_t page) {
  if (p->mode == DIRTY_RING) return test_bit(p->hot, page) || test_bit(p->prev, page);
  return test_bit(p->dirty, page);
}

/* The first restore after a relearn: were nearly all the pages written again (7/8)? */
static void judge_relearn(dirty_ring_t *r) {
  r->judging = false;
  r->hot_size = r->writable_n;
  bool steady = (uint64_t)r->writable_n * 8 >= (uint64_t)r->kept_before * 7;
  r->relearn_every = steady && r->relearn_every < RING_RELEARN_MAX ? r->relearn_every * 2 : steady ? RING_RELEARN_MAX : RING_RELEARN_EVERY;
}

/* Ring mode, after the copies: the ring's policy of when to re-protect (see RING_MAX_WRITABLE). */
static int maybe_reset_ring(vcpu_t *v) {
  dirty_ring_t *r = &v->ring;
  if (r->relearn_every == 0) r->relearn_every = RING_RELEARN_EVERY;
  if (r->judging) judge_relearn(r);
  r->restores_since_reset++;
  bool grown = r->writable_n > r->hot_size + r->hot_size / 4 + 8;
  bool relearn = r->writable_n > 0 && r->restores_since_reset >= (grown ? RING_RELEARN_EVERY : r->relearn_every);
  if (r->writable_n <= RING_MAX_WRITABLE && !relearn) return 0;
  uint32_t kept = r->writable_n;
  int e = dirty_ring_reset(v);
  if (e < 0) {
    v->restore.ctl[CTL_ERROP] = RESTORE_OP_RESET_RING;
    return e;
  }
  if (kept <= RING_MAX_WRITABLE) { /* a relearn, not an overflow: judge it at the next restore */
    r->kept_before = kept;
    r->judging = true;
  }
  return 0;
}

/* One restore (see the top of the file). Returns pages copied, or -errno with
 * ctl[CTL_ERROP] naming the failed call. Clears ctl[CTL_PENDING] and sets ctl[CTL_COPIED].
 * `before_run`: KVM_RUN follows at once on this thread, so the registers may go through
 * kvm_run's sync area (KVM_CAP_SYNC_REGS), which KVM_RUN loads, instead of KVM_SET_REGS:
 * one ioctl fewer. */
int vcpu_restore_now(vcpu_t *v, bool before_run) {
  restore_plan_t *p = &v->restore;
  int32_t *ctl = p->ctl;
  ctl[CTL_PENDING] = 0;
  ctl[CTL_COPIED] = -1;
  if (!p->image) {
    ctl[CTL_ERROP] = RESTORE_OP_NONE;
    return -EINVAL;
  }
  const int32_t *host = ctl + CTL_HEADER, *skip = host + p->host_cap;
  int32_t host_n = ctl[CTL_HOST_COUNT], skip_n = ctl[CTL_SKIP_COUNT];
  if (host_n < 0 || (uint32_t)host_n > p->host_cap) host_n = 0;
  if (skip_n < 0 || (uint32_t)skip_n > p->skip_cap) skip_n = 0;
  bool ring = p->mode == DIRTY_RING;
  int copied = ring ? copy_ring_pages(v, skip, skip_n) : read_dirty_log(p, true, skip, skip_n);
  if (copied < 0) return copied;
  for (int32_t i = 0; i < host_n; i++) {
    size_t page = (size_t)(uint32_t)host[i];
    if (page >= p->pages || counted(p, page)) continue; /* out of range, or counted above */
    copied++;
    if (!(skip_n && in_list(skip, skip_n, page))) copy_page(p, page);
  }
  ctl[CTL_HOST_COUNT] = 0;
  ctl[CTL_SKIP_COUNT] = 0;
  apply_patches(p);
  if (ring) {
    forget_spilled(p);
    int e = maybe_reset_ring(v);
    if (e < 0) return e;
  }
  if (before_run && p->sync_regs) {
    memcpy(&v->run->s.regs.regs, p->regs, sizeof(struct kvm_regs));
    v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
  } else if (ioctl(v->fd, KVM_SET_REGS, p->regs) < 0) {
    ctl[CTL_ERROP] = RESTORE_OP_SET_REGS;
    return -errno;
  }
  /* No xsave: the snapshot resumes at an instruction that reloads the FPU from its memory. */
  if (p->xsave && ioctl(v->fd, KVM_SET_XSAVE, p->xsave) < 0) {
    ctl[CTL_ERROP] = RESTORE_OP_SET_XSAVE;
    return -errno;
  }
  ctl[CTL_COPIED] = copied;
  return copied;
}

static napi_value throw_restore_error(napi_env env, vcpu_t *v, int r) {
  int32_t op = v->restore.ctl ? v->restore.ctl[CTL_ERROP] : 0;
  if (op < 0 || op >= (int32_t)(sizeof restore_ops / sizeof restore_ops[0])) op = 0;
  if (op == RESTORE_OP_NONE) return throw_message(env, "restore", "no restore source");
  return throw_errno(env, restore_ops[op], -r);
}

/* KVM_SET_REGS then KVM_SET_XSAVE(regs, xsave): the remapping restore's pair in one crossing into C */
napi_value vcpu_set_regs_xsave(napi_env env, napi_callback_info info) {
  napi_value argv[2], self;
  void *regs, *xsave;
  size_t regs_len, xsave_len;
  if (!get_args(env, info, 2, argv, &self, "KVM_SET_REGS") || !arg_bytes(env, argv[0], &regs, &regs_len) ||
      !arg_bytes(env, argv[1], &xsave, &xsave_len))
    return throw_message(env, "KVM_SET_REGS", "bad arguments");
  if (regs_len < sizeof(struct kvm_regs) ||
      (xsave_len != 0 && xsave_len < sizeof(struct kvm_xsave)))
    return throw_message(env, "KVM_SET_REGS", "buffer too small for the kernel struct");
  vcpu_t *v = vcpu_unwrap(env, self, "KVM_SET_REGS");
  if (!v) return NULL;
  if (ioctl(v->fd, KVM_SET_REGS, regs) < 0) return throw_errno(env, "KVM_SET_REGS", errno);
  if (ioctl(v->fd, KVM_SET_XSAVE, xsave) < 0) return throw_errno(env, "KVM_SET_XSAVE", errno);
  return make_undefined(env);
}

/*
 * restorePlan(vmFd, slot, mode, dirty, prev, hot, clear, memory, ctl, hostCap): the
 * per-vCPU part of the plan; mode: enum dirty_mode (DIRTY_RING needs mapDirtyRing()
 * first). dirty/prev/hot/clear: one bit per page of the slot
 * (BigUint64Arrays of equal length; clear all zero); ctl: Int32Array of CTL_HEADER +
 * hostCap + skip slots + 2 × CTL_PATCHES. SAFETY: the caller (src/hypervisor/kvm) keeps every buffer
 * alive as long as the vCPU, and calls this again before replacing one.
 */
napi_value vcpu_restore_plan(napi_env env, napi_callback_info info) {
  napi_value argv[10], self;
  int32_t vm;
  uint32_t slot, mode, host_cap;
  void *dirty, *prev, *hot, *clear, *memory, *ctl;
  size_t dirty_len, prev_len, hot_len, clear_len, memory_len, ctl_len;
  if (!get_args(env, info, 10, argv, &self, "restorePlan") || !arg_i32(env, argv[0], &vm) || !arg_u32(env, argv[1], &slot) ||
      !arg_u32(env, argv[2], &mode) || !arg_bytes(env, argv[3], &dirty, &dirty_len) ||
      !arg_bytes(env, argv[4], &prev, &prev_len) || !arg_bytes(env, argv[5], &hot, &hot_len) ||
      !arg_bytes(env, argv[6], &clear, &clear_len) || !arg_bytes(env, argv[7], &memory, &memory_len) ||
      !arg_bytes(env, argv[8], &ctl, &ctl_len) || !arg_u32(env, argv[9], &host_cap))
    return throw_message(env, "restorePlan", "bad arguments");
  size_t pages = memory_len / PAGE, words = (pages + 63) / 64;
  if (dirty_len != words * 8 || prev_len != dirty_len || hot_len != dirty_len || clear_len != dirty_len ||
      ctl_len / 4 < CTL_HEADER + (size_t)host_cap + 2 * CTL_PATCHES || ((uintptr_t)dirty | (uintptr_t)prev | (uintptr_t)hot | (uintptr_t)clear) & 7 ||
      (uintptr_t)ctl & 3)
    return throw_message(env, "restorePlan", "buffer sizes disagree");
  vcpu_t *v = vcpu_unwrap(env, self, "restorePlan");
  if (!v) return NULL;
  if (mode > DIRTY_RING || (mode == DIRTY_RING && !v->ring.gfns)) return throw_message(env, "restorePlan", "no such dirty-page mode, or no dirty ring");
  if (mode == DIRTY_RING && !dirty_ring_plan(v, pages, RING_MAX_WRITABLE)) return throw_errno(env, "restorePlan", ENOMEM);
  restore_plan_t *p = &v->restore;
  p->vm_fd = vm;
  p->slot = slot;
  p->mode = (enum dirty_mode)mode;
  p->pages = pages;
  p->words = words;
  p->dirty = dirty;
  p->prev = prev;
  p->hot = hot;
  p->clear = clear;
  p->memory = memory;
  p->ctl = ctl;
  p->host_cap = host_cap;
  p->skip_cap = (uint32_t)(ctl_len / 4 - CTL_HEADER - host_cap - 2 * CTL_PATCHES);
  int sync = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS);
  p->sync_regs = sync > 0 && (sync & KVM_SYNC_X86_REGS);
  /* hot_count and the range of prev follow the bitmaps, which may carry over from an earlier plan */
  p->hot_count = 0;
  p->prev_first = SIZE_MAX;
  p->prev_last = 0;
  for (size_t w = 0; w < words; w++) {
    p->hot_count += (uint32_t)__builtin_popcountll(p->hot[w]);
    if (p->prev[w]) {
      if (p->prev_first == SIZE_MAX) p->prev_first = w;
      p->prev_last = w;
    }
  }
  return make_undefined(env);
}

/* restoreSource(image, regs, xsave): the per-snapshot part. An empty xsave skips
 * KVM_SET_XSAVE (the guest reloads its FPU state itself). SAFETY: as for restorePlan. */
napi_value vcpu_restore_source(napi_env env, napi_callback_info info) {
  napi_value argv[3], self;
  void *image, *regs, *xsave;
  size_t image_len, regs_len, xsave_len;
  if (!get_args(env, info, 3, argv, &self, "restoreSource") || !arg_bytes(env, argv[0], &image, &image_len) ||
      !arg_bytes(env, argv[1], &regs, &regs_len) || !arg_bytes(env, argv[2], &xsave, &xsave_len))
    return throw_message(env, "restoreSource", "bad arguments");
  vcpu_t *v = vcpu_unwrap(env, self, "restoreSource");
  if (!v) return NULL;
  restore_plan_t *p = &v->restore;
  if (!p->ctl) return throw_message(env, "restoreSource", "restorePlan() was not called");
  if (image_len != p->pages * PAGE || regs_len < sizeof(struct kvm_regs) ||
      (xsave_len != 0 && xsave_len < sizeof(struct kvm_xsave)))
    return throw_message(env, "restoreSource", "buffer sizes disagree");
  p->image = image;
  p->regs = regs;
  p->xsave = xsave_len ? xsave : NULL;
  return make_undefined(env);
}

/* restoreNow() -> pages copied: the restore the plan describes, at once. */
napi_value vcpu_restore_now_js(napi_env env, napi_callback_info info) {
  napi_value self;
  if (!get_args(env, info, 0, NULL, &self, "restore")) return NULL;
  vcpu_t *v = vcpu_unwrap(env, self, "restore");
  if (!v) return NULL;
  if (!v->restore.ctl) return throw_message(env, "restore", "restorePlan() was not called");
  int r = vcpu_restore_now(v, false);
  if (r < 0) return throw_restore_error(env, v, r);
  return make_i32(env, r);
}

/* Ring mode's answer to takeDirtyLog(): the writable pages and the spilled ones, which
 * are then forgotten and write-protected, so that the next answer holds only pages
 * written after this one (snapshots rely on it; it is off the restore path). */
static int take_ring_pages(vcpu_t *v) {
  restore_plan_t *p = &v->restore;
  int e = dirty_ring_harvest(v);
  if (e < 0) {
    p->ctl[CTL_ERROP] = RESTORE_OP_RESET_RING;
    return e;
  }
  memset(p->dirty, 0, p->words * sizeof *p->dirty);
  for (uint32_t i = 0; i < v->ring.writable_n; i++) p->dirty[v->ring.writable[i] / 64] |= 1ull << (v->ring.writable[i] % 64);
  if (p->prev_first != SIZE_MAX)
    for (size_t w = p->prev_first; w <= p->prev_last; w++) p->dirty[w] |= p->prev[w];
  forget_spilled(p);
  e = dirty_ring_reset(v);
  if (e < 0) p->ctl[CTL_ERROP] = RESTORE_OP_RESET_RING;
  return e;
}

/* takeDirtyLog(): KVM_GET_DIRTY_LOG into the plan's dirty bitmap (+ hot pages, clear), no copies. */
napi_value vcpu_take_dirty_log(napi_env env, napi_callback_info info) {
  napi_value self;
  if (!get_args(env, info, 0, NULL, &self, "KVM_GET_DIRTY_LOG")) return NULL;
  vcpu_t *v = vcpu_unwrap(env, self, "KVM_GET_DIRTY_LOG");
  if (!v) return NULL;
  if (!v->restore.ctl) return throw_message(env, "KVM_GET_DIRTY_LOG", "restorePlan() was not called");
  int r = v->restore.mode == DIRTY_RING ? take_ring_pages(v) : read_dirty_log(&v->restore, false, NULL, 0);
  if (r < 0) return throw_restore_error(env, v, r);
  return make_undefined(env);
}

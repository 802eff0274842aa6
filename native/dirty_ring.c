/*
 * KVM's dirty ring (KVM_CAP_DIRTY_LOG_RING): the pages a vCPU dirties, pushed by the
 * kernel into a ring mapped from the vCPU fd. Reading it is a memory read, not an
 * ioctl (each ioctl costs ~3 µs on PVM); KVM_RESET_DIRTY_RINGS write-protects the
 * pages read so far again.
 *
 * A page the ring reported stays writable until the next reset, and the kernel does not
 * report it again: such pages are kept in a list (`writable`) and copied back on every
 * restore. When to reset is the restore's policy (vcpu_restore.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm_vcpu.h"

/* mapDirtyRing(bytes): mmap of the vCPU's dirty ring (KVM_DIRTY_LOG_PAGE_OFFSET); the VM enabled it with that size */
napi_value vcpu_map_dirty_ring(napi_env env, napi_callback_info info) {
  napi_value argv[1], self;
  uint32_t bytes;
  if (!get_args(env, info, 1, argv, &self, "mmap dirty ring") || !arg_u32(env, argv[0], &bytes))
    return throw_message(env, "mmap dirty ring", "bad arguments");
  vcpu_t *v = vcpu_unwrap(env, self, "mmap dirty ring");
  if (!v) return NULL;
  uint32_t entries = bytes / (uint32_t)sizeof(struct kvm_dirty_gfn);
  if (v->ring.gfns || entries == 0 || (entries & (entries - 1))) return throw_message(env, "mmap dirty ring", "bad size, or mapped already");
  long page = sysconf(_SC_PAGESIZE);
  void *gfns = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, (off_t)KVM_DIRTY_LOG_PAGE_OFFSET * page);
  if (gfns == MAP_FAILED) return throw_errno(env, "mmap dirty ring", errno);
  v->ring.gfns = gfns;
  v->ring.bytes = bytes;
  v->ring.entries = entries;
  v->ring.fetch = 0;
  return make_undefined(env);
}

void dirty_ring_release(vcpu_t *v) {
  if (v->ring.gfns) munmap(v->ring.gfns, v->ring.bytes);
  free(v->ring.writable);
  memset(&v->ring, 0, sizeof v->ring);
}

/* Room for the writable list: `keep` pages (what a restore may leave writable) plus a
 * full ring; never more than the slot's pages (it holds no page twice). A harvest that
 * still finds it full spills (dirty_ring_harvest). */
bool dirty_ring_plan(vcpu_t *v, size_t pages, size_t keep) {
  size_t cap = keep + v->ring.entries < pages ? keep + v->ring.entries : pages;
  if (v->ring.writable && v->ring.writable_cap >= cap) return true;
  uint32_t *list = realloc(v->ring.writable, cap * sizeof *list);
  if (!list) return false;
  v->ring.writable = list;
  v->ring.writable_cap = (uint32_t)cap;
  return true;
}

/* Pages to restore that are no longer writable (bitmap p->prev over words prev_first..prev_last). */
static void mark_spilled(restore_plan_t *p, size_t page) {
  set_bit(p->prev, page);
  size_t w = page / 64;
  if (p->prev_first == SIZE_MAX || w < p->prev_first) p->prev_first = w;
  if (w > p->prev_last) p->prev_last = w;
}

/* The writable pages become pages to restore, and are write-protected again. */
static int spill_writable(vcpu_t *v) {
  for (uint32_t i = 0; i < v->ring.writable_n; i++) mark_spilled(&v->restore, v->ring.writable[i]);
  return dirty_ring_reset(v);
}

/* Reads every entry the kernel published into the writable list (bitmap p->hot), and
 * marks them collected, so the next reset re-protects their pages. Returns 0 or -errno
 * (a reset, when the list is full, failed). */
int dirty_ring_harvest(vcpu_t *v) {
  dirty_ring_t *r = &v->ring;
  restore_plan_t *p = &v->restore;
  bool listing = p->mode == DIRTY_RING && r->writable_cap > 0; /* else: no plan yet, nothing to restore */
  for (;;) {
    if (listing && r->writable_n == r->writable_cap) {
      int err = spill_writable(v); /* full: re-protect now rather than leave a page writable unlisted */
      if (err < 0) return err;
    }
    struct kvm_dirty_gfn *e = &r->gfns[r->fetch & (r->entries - 1)];
    if (!(__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & KVM_DIRTY_GFN_F_DIRTY)) break;
    uint64_t page = e->offset;
    if (listing && e->slot == p->slot && page < p->pages && !test_bit(p->hot, page)) {
      set_bit(p->hot, page);
      r->writable[r->writable_n++] = (uint32_t)page;
    }
    __atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
    r->fetch++;
  }
  return 0;
}

/* KVM_RESET_DIRTY_RINGS: every collected page is write-protected again and leaves the writable list. */
int dirty_ring_reset(vcpu_t *v) {
  dirty_ring_t *r = &v->ring;
  restore_plan_t *p = &v->restore;
  if (ioctl(p->vm_fd, KVM_RESET_DIRTY_RINGS, 0) < 0) return -errno;
  if (p->mode == DIRTY_RING)
    for (uint32_t i = 0; i < r->writable_n; i++) clear_bit(p->hot, r->writable[i]);
  r->writable_n = 0;
  r->restores_since_reset = 0;
  r->judging = false;
  if (p->ctl) p->ctl[CTL_RING_RESETS]++; /* a count tests read */
  return 0;
}

/* The ring is full (KVM_EXIT_DIRTY_RING_FULL): collect it, remember its pages as dirty,
 * and reset so the guest can go on. */
int dirty_ring_spill(vcpu_t *v) {
  int e = dirty_ring_harvest(v);
  return e < 0 ? e : spill_writable(v);
}

/* The restore path's ioctls in as few crossings from JavaScript as possible. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kvm_vcpu.h"

/* KVM_SET_REGS then KVM_SET_XSAVE(regs, xsave): the restore path's pair in one crossing into C */
napi_value vcpu_set_regs_xsave(napi_env env, napi_callback_info info) {
  napi_value argv[2], self;
  void *regs, *xsave;
  size_t regs_len, xsave_len;
  if (!get_args(env, info, 2, argv, &self, "KVM_SET_REGS") || !arg_bytes(env, argv[0], &regs, &regs_len) ||
      !arg_bytes(env, argv[1], &xsave, &xsave_len))
    return throw_message(env, "KVM_SET_REGS", "bad arguments");
  if (regs_len < sizeof(struct kvm_regs) || xsave_len < sizeof(struct kvm_xsave))
    return throw_message(env, "KVM_SET_REGS", "buffer too small for the kernel struct");
  vcpu_t *v = vcpu_unwrap(env, self, "KVM_SET_REGS");
  if (!v) return NULL;
  if (ioctl(v->fd, KVM_SET_REGS, regs) < 0) return throw_errno(env, "KVM_SET_REGS", errno);
  if (ioctl(v->fd, KVM_SET_XSAVE, xsave) < 0) return throw_errno(env, "KVM_SET_XSAVE", errno);
  return make_undefined(env);
}

/*
 * restore(vmFd, slot, dirty, hot, memory, image, hostPages, regs, xsave) -> pages copied.
 * One restore in one crossing from JS (each crossing after a VM exit costs microseconds
 * on PVM): KVM_GET_DIRTY_LOG into `dirty`; if `hot` is given (manual-protect mode),
 * KVM_CLEAR_DIRTY_LOG for dirty pages not in `hot`; copy every page set in `dirty` or
 * listed in `hostPages` from `image` to `memory`; KVM_SET_REGS; KVM_SET_XSAVE.
 * Which pages are hot is decided in TypeScript.
 */
napi_value vcpu_restore(napi_env env, napi_callback_info info) {
  napi_value argv[9], self;
  int32_t vm;
  uint32_t slot;
  void *dirty, *hot = NULL, *memory, *image, *host, *regs, *xsave;
  size_t dirty_len, hot_len = 0, memory_len, image_len, host_len, regs_len, xsave_len;
  napi_valuetype hot_type;
  if (!get_args(env, info, 9, argv, &self, "restore") || !arg_i32(env, argv[0], &vm) || !arg_u32(env, argv[1], &slot) ||
      !arg_bytes(env, argv[2], &dirty, &dirty_len) || napi_typeof(env, argv[3], &hot_type) != napi_ok ||
      (hot_type != napi_null && !arg_bytes(env, argv[3], &hot, &hot_len)) || !arg_bytes(env, argv[4], &memory, &memory_len) ||
      !arg_bytes(env, argv[5], &image, &image_len) || !arg_bytes(env, argv[6], &host, &host_len) ||
      !arg_bytes(env, argv[7], &regs, &regs_len) || !arg_bytes(env, argv[8], &xsave, &xsave_len))
    return throw_message(env, "restore", "bad arguments");
  size_t pages = memory_len / 4096;
  if (image_len != memory_len || dirty_len * 8 < pages || (hot && hot_len != dirty_len) || dirty_len % 8 ||
      regs_len < sizeof(struct kvm_regs) || xsave_len < sizeof(struct kvm_xsave))
    return throw_message(env, "restore", "buffer sizes disagree");
  vcpu_t *v = vcpu_unwrap(env, self, "restore");
  if (!v) return NULL;
  struct kvm_dirty_log log = {.slot = slot, .dirty_bitmap = dirty};
  if (ioctl(vm, KVM_GET_DIRTY_LOG, &log) < 0) return throw_errno(env, "KVM_GET_DIRTY_LOG", errno);
  uint64_t *d = dirty, *h = hot;
  size_t words = dirty_len / 8;
  if (h) {
    uint64_t *clear = malloc(dirty_len), any = 0;
    if (!clear) return throw_errno(env, "restore", ENOMEM);
    for (size_t w = 0; w < words; w++) any |= clear[w] = d[w] & ~h[w];
    int r = 0;
    if (any) {
      struct kvm_clear_dirty_log c = {.slot = slot, .num_pages = (uint32_t)pages, .first_page = 0, .dirty_bitmap = clear};
      r = ioctl(vm, KVM_CLEAR_DIRTY_LOG, &c);
    }
    int err = errno;
    free(clear);
    if (r < 0) return throw_errno(env, "KVM_CLEAR_DIRTY_LOG", err);
  }
  uint8_t *dst = memory;
  const uint8_t *src = image;
  uint32_t copied = 0;
  for (size_t w = 0; w < words; w++) {
    for (uint64_t bits = d[w]; bits; bits &= bits - 1) {
      size_t page = w * 64 + (size_t)__builtin_ctzll(bits);
      if (page >= pages) break;
      memcpy(dst + page * 4096, src + page * 4096, 4096);
      copied++;
    }
  }
  const int32_t *hp = host;
  for (size_t i = 0; i < host_len / 4; i++) {
    size_t page = (size_t)hp[i];
    if (page >= pages || (d[page / 64] >> (page % 64)) & 1) continue; /* out of range, or copied above */
    memcpy(dst + page * 4096, src + page * 4096, 4096);
    copied++;
  }
  if (ioctl(v->fd, KVM_SET_REGS, regs) < 0) return throw_errno(env, "KVM_SET_REGS", errno);
  if (ioctl(v->fd, KVM_SET_XSAVE, xsave) < 0) return throw_errno(env, "KVM_SET_XSAVE", errno);
  napi_value result;
  napi_create_uint32(env, copied, &result);
  return result;
}


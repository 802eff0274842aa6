/* Calls on a KVM VM file descriptor. One wrapper per ioctl. */
#include <errno.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "napi_util.h"

/* KVM_SET_USER_MEMORY_REGION(slot, flags, guestPhysAddr, buffer, offset, size) */
static napi_value set_user_memory_region(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  int32_t vm;
  uint32_t slot, flags;
  uint64_t gpa, offset, size;
  void *data;
  size_t len;
  if (!get_args(env, info, 7, argv, NULL, "KVM_SET_USER_MEMORY_REGION") || !arg_i32(env, argv[0], &vm) ||
      !arg_u32(env, argv[1], &slot) || !arg_u32(env, argv[2], &flags) || !arg_u64(env, argv[3], &gpa) ||
      !arg_bytes(env, argv[4], &data, &len) || !arg_u64(env, argv[5], &offset) || !arg_u64(env, argv[6], &size))
    return throw_message(env, "KVM_SET_USER_MEMORY_REGION", "bad arguments");
  if (offset > len || size > len - offset) return throw_message(env, "KVM_SET_USER_MEMORY_REGION", "range outside buffer");
  struct kvm_userspace_memory_region region = {
      .slot = slot,
      .flags = flags,
      .guest_phys_addr = gpa,
      .memory_size = size,
      /* SAFETY: the buffer outlives the VM: the TypeScript VM object holds it until destroy. */
      .userspace_addr = (uint64_t)(uintptr_t)((uint8_t *)data + offset),
  };
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) return throw_errno(env, "KVM_SET_USER_MEMORY_REGION", errno);
  return make_undefined(env);
}

/* KVM_ENABLE_CAP(cap, arg0) on a VM fd */
static napi_value enable_cap(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t vm;
  uint32_t cap;
  uint64_t arg0;
  if (!get_args(env, info, 3, argv, NULL, "KVM_ENABLE_CAP") || !arg_i32(env, argv[0], &vm) || !arg_u32(env, argv[1], &cap) ||
      !arg_u64(env, argv[2], &arg0))
    return throw_message(env, "KVM_ENABLE_CAP", "bad arguments");
  struct kvm_enable_cap c = {.cap = cap, .args = {arg0}};
  if (ioctl(vm, KVM_ENABLE_CAP, &c) < 0) return throw_errno(env, "KVM_ENABLE_CAP", errno);
  return make_undefined(env);
}

/* KVM_CREATE_VCPU(id) -> vCPU fd */
static napi_value create_vcpu_fd(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t vm, id;
  if (!get_args(env, info, 2, argv, NULL, "KVM_CREATE_VCPU") || !arg_i32(env, argv[0], &vm) ||
      !arg_i32(env, argv[1], &id))
    return NULL;
  int fd = ioctl(vm, KVM_CREATE_VCPU, id);
  if (fd < 0) return throw_errno(env, "KVM_CREATE_VCPU", errno);
  return make_i32(env, fd);
}

void register_kvm_vm(napi_env env, napi_value exports) {
  NAPI_EXPORT_FN(env, exports, "setUserMemoryRegion", set_user_memory_region);
  NAPI_EXPORT_FN(env, exports, "enableCap", enable_cap);
  NAPI_EXPORT_FN(env, exports, "createVcpuFd", create_vcpu_fd);
}

/* Calls on the /dev/kvm system file descriptor. One wrapper per ioctl. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "napi_util.h"

/* open("/dev/kvm", O_RDWR | O_CLOEXEC) -> fd */
static napi_value open_kvm(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, "open /dev/kvm", errno);
  return make_i32(env, fd);
}

/* close(fd) for any KVM file descriptor */
static napi_value close_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv, NULL, "close") || !arg_i32(env, argv[0], &fd)) return NULL;
  if (close(fd) < 0) return throw_errno(env, "close", errno);
  return make_undefined(env);
}

/* KVM_GET_API_VERSION */
static napi_value get_api_version(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv, NULL, "KVM_GET_API_VERSION") || !arg_i32(env, argv[0], &fd)) return NULL;
  int r = ioctl(fd, KVM_GET_API_VERSION, 0);
  if (r < 0) return throw_errno(env, "KVM_GET_API_VERSION", errno);
  return make_i32(env, r);
}

/* KVM_CHECK_EXTENSION (system or VM fd) */
static napi_value check_extension(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd, cap;
  if (!get_args(env, info, 2, argv, NULL, "KVM_CHECK_EXTENSION") || !arg_i32(env, argv[0], &fd) ||
      !arg_i32(env, argv[1], &cap))
    return NULL;
  int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);
  if (r < 0) return throw_errno(env, "KVM_CHECK_EXTENSION", errno);
  return make_i32(env, r);
}

/* KVM_GET_VCPU_MMAP_SIZE */
static napi_value get_vcpu_mmap_size(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv, NULL, "KVM_GET_VCPU_MMAP_SIZE") || !arg_i32(env, argv[0], &fd)) return NULL;
  int r = ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (r < 0) return throw_errno(env, "KVM_GET_VCPU_MMAP_SIZE", errno);
  return make_i32(env, r);
}

/* KVM_GET_SUPPORTED_CPUID: fills a buffer of struct kvm_cpuid_entry2, returns the entry count */
static napi_value get_supported_cpuid(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  void *data;
  size_t len;
  if (!get_args(env, info, 2, argv, NULL, "KVM_GET_SUPPORTED_CPUID") || !arg_i32(env, argv[0], &fd) ||
      !arg_bytes(env, argv[1], &data, &len))
    return NULL;
  uint32_t max = len / sizeof(struct kvm_cpuid_entry2);
  struct kvm_cpuid2 *c = calloc(1, sizeof *c + max * sizeof(struct kvm_cpuid_entry2));
  if (!c) return throw_errno(env, "KVM_GET_SUPPORTED_CPUID", ENOMEM);
  c->nent = max;
  if (ioctl(fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
    int err = errno;
    free(c);
    return throw_errno(env, "KVM_GET_SUPPORTED_CPUID", err);
  }
  uint32_t n = c->nent;
  memcpy(data, c->entries, n * sizeof(struct kvm_cpuid_entry2));
  free(c);
  return make_i32(env, (int32_t)n);
}

/* KVM_CREATE_VM -> VM fd */
static napi_value create_vm(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv, NULL, "KVM_CREATE_VM") || !arg_i32(env, argv[0], &fd)) return NULL;
  int vm;
  do vm = ioctl(fd, KVM_CREATE_VM, 0);
  while (vm < 0 && errno == EINTR);
  if (vm < 0) return throw_errno(env, "KVM_CREATE_VM", errno);
  return make_i32(env, vm);
}

void register_kvm_system(napi_env env, napi_value exports) {
  NAPI_EXPORT_FN(env, exports, "openKvm", open_kvm);
  NAPI_EXPORT_FN(env, exports, "closeFd", close_fd);
  NAPI_EXPORT_FN(env, exports, "getApiVersion", get_api_version);
  NAPI_EXPORT_FN(env, exports, "checkExtension", check_extension);
  NAPI_EXPORT_FN(env, exports, "getVcpuMmapSize", get_vcpu_mmap_size);
  NAPI_EXPORT_FN(env, exports, "getSupportedCpuid", get_supported_cpuid);
  NAPI_EXPORT_FN(env, exports, "createVm", create_vm);
}

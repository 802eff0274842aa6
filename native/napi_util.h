/* Small helpers shared by the addon's files: argument reading and error throwing. */
#ifndef VMLET_NAPI_UTIL_H
#define VMLET_NAPI_UTIL_H

#define NAPI_VERSION 8
#include <node_api.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

/* Throws an Error whose `code` is the errno name and `operation` the failed call. */
napi_value throw_errno(napi_env env, const char *operation, int err);
napi_value throw_message(napi_env env, const char *operation, const char *message);

bool arg_i32(napi_env env, napi_value v, int32_t *out);
bool arg_u32(napi_env env, napi_value v, uint32_t *out);
bool arg_u64(napi_env env, napi_value v, uint64_t *out); /* Number or BigInt */
/* Data pointer and length of a TypedArray, DataView or ArrayBuffer. */
bool arg_bytes(napi_env env, napi_value v, void **data, size_t *len);

napi_value make_i32(napi_env env, int32_t v);
napi_value make_undefined(napi_env env);

/* Reads argc arguments into argv; throws and returns false if fewer were given. */
bool get_args(napi_env env, napi_callback_info info, size_t argc, napi_value *argv, napi_value *self,
              const char *operation);

#define NAPI_EXPORT_FN(env, exports, name, fn)                                  \
  do {                                                                          \
    napi_value f_;                                                              \
    napi_create_function((env), (name), NAPI_AUTO_LENGTH, (fn), NULL, &f_);     \
    napi_set_named_property((env), (exports), (name), f_);                      \
  } while (0)

void register_kvm_system(napi_env env, napi_value exports);
void register_kvm_vm(napi_env env, napi_value exports);
void register_kvm_vcpu(napi_env env, napi_value exports);
void register_memory(napi_env env, napi_value exports);
void register_reaper(napi_env env, napi_value exports);
void register_memory_file(napi_env env, napi_value exports);
void register_file_lock(napi_env env, napi_value exports);
void register_cpu(napi_env env, napi_value exports);
void register_process_child(napi_env env, napi_value exports);
void register_process_notify(napi_env env, napi_value exports);
void register_process_dirty(napi_env env, napi_value exports);
void register_random(napi_env env, napi_value exports);
void register_process_spawner(napi_env env, napi_value exports);
void reaper_close(int fd);
/* fallocate(PUNCH_HOLE) over every range of a file with data; 0 or an errno (native/memory_file.c). */
int punch_data(int fd, uint64_t size);
/* SIGKILL (pidfd_send_signal), waitid until the child is dead, close the pidfd; waitid's result (native/reaper.c). */
int kill_and_reap(int pidfd, siginfo_t *status);
/* SIGKILL and reap a process-backend child on the reaper thread (native/reaper.c). */
void reaper_retire_child(int pidfd);
/* posix_spawn of the process backend's helper with `fds` as its fds 3, 4, ...; "w" (warm) makes it wait on fd 3 for its memfds. 0 or an errno (native/process_child.c). */
int spawn_helper(const char *path, const int *fds, int count, bool warm, int *pidfd_out, pid_t *pid_out);
/* The environment owns a child it spawned: its teardown kills and reaps it (native/process_child.c). */
void process_own_child(napi_env env, int pidfd, int socket);
/* The host let go of a child it spawned: its environment's teardown no longer reaps it (native/process_child.c). */
void process_disown(napi_env env, int pidfd);

#endif

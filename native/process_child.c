/* The process backend's kernel calls: spawn a sandbox's helper process, hand it work
 * through the shared mailbox (futex), interrupt it, kill and reap it. The child is known
 * by a pidfd, so no signal can reach a recycled pid. Policy (what an exit means, when to
 * kill) is TypeScript's: src/hypervisor/process/. */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "napi_util.h"
#include "process/mailbox.h"

/* What processResume returns (and the runner delivers). */
enum { RESUME_EXIT = 0, RESUME_LOST = 2, RESUME_KILLED = 3 };

/* How long a waiting host spins before it sleeps (processSetSpin; 0 = never). */
static int64_t spin_ns = 0;

/* How often a waiting host checks that the child still lives. */
#define LIVENESS_SLICE_NS 20000000ll

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* pidfd_send_signal(2) */
static int send_signal(int pidfd, int sig) {
  return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* waitid(P_PIDFD, WEXITED | WNOHANG | WNOWAIT): whether the child has ended (left unreaped). */
static bool child_ended(int pidfd) {
  siginfo_t info = {0};
  if (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED | WNOHANG | WNOWAIT) != 0) return true; /* reaped or not ours */
  return info.si_pid != 0;
}

static void futex_wait_ns(uint32_t *word, uint32_t value, int64_t ns) {
  struct timespec ts = { ns / 1000000000ll, ns % 1000000000ll };
  syscall(SYS_futex, word, FUTEX_WAIT, value, &ts, NULL, 0);
}

/* FUTEX_WAKE of every waiter on the state word: the child's park loop and the host's wait
 * can sleep there at once, and a wake of one could reach the wrong one. */
static void wake_all(struct mailbox *mb) {
  syscall(SYS_futex, &mb->state, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
}

/* The interrupt flag, then the interrupt signal: the child posts an exit (or is killed after the grace). */
static void ask_to_stop(struct mailbox *mb, int pidfd) {
  atomic_store_explicit((_Atomic uint32_t *)&mb->interrupt, 1, memory_order_release);
  send_signal(pidfd, MB_INTERRUPT_SIGNAL);
}

/* A run's deadline: past it the child is asked to stop (interrupt flag + signal); past the
 * grace after that, it is killed. */
struct deadline {
  int64_t at, grace_ns, asked_at; /* asked_at: 0 until the child was asked to stop */
};

/* The deadline's part of one look at a run, at `now`: RESUME_KILLED once the grace is over
 * (the child was sent SIGKILL), else -1 and, in *until, when it next needs a look. */
static int deadline_step(struct deadline *d, struct mailbox *mb, int pidfd, int64_t now, int64_t *until) {
  if (d->asked_at == 0 && now >= d->at) {
    ask_to_stop(mb, pidfd);
    d->asked_at = now;
  }
  if (d->asked_at != 0 && now - d->asked_at >= d->grace_ns) {
    send_signal(pidfd, SIGKILL);
    return RESUME_KILLED;
  }
  *until = d->asked_at != 0 ? d->asked_at + d->grace_ns : d->at;
  return -1;
}

/* The wait of one run: until the child posts an exit, its deadline passes (deadline_step)
 * or it dies. */
static int wait_for_exit(struct mailbox *mb, int pidfd, int64_t timeout_ns, int64_t grace_ns) {
  _Atomic uint32_t *state = (_Atomic uint32_t *)&mb->state;
  int64_t start = now_ns();
  struct deadline d = { timeout_ns > 0 ? start + timeout_ns : INT64_MAX, grace_ns, 0 };
  /* A short spin first: a guest that exits within it is answered without a futex sleep and wake. */
  for (int64_t spin_until = start + spin_ns; now_ns() < spin_until;) {
    if (atomic_load_explicit(state, memory_order_acquire) == MB_EXIT_POSTED) return RESUME_EXIT;
    for (int i = 0; i < 16; i++) __builtin_ia32_pause();
  }
  for (;;) {
    uint32_t seen = atomic_load_explicit(state, memory_order_acquire);
    if (seen == MB_EXIT_POSTED) return RESUME_EXIT;
    int64_t t = now_ns(), until;
    if (deadline_step(&d, mb, pidfd, t, &until) >= 0) return RESUME_KILLED;
    int64_t slice = until - t < LIVENESS_SLICE_NS ? until - t : LIVENESS_SLICE_NS;
    futex_wait_ns(&mb->state, seen, slice > 0 ? slice : 1);
    if (atomic_load_explicit(state, memory_order_acquire) != MB_EXIT_POSTED && child_ended(pidfd)) return RESUME_LOST;
  }
}

/* How a run starts (processResume's mode). */
enum { RUN_WAIT_ONLY = 0, RUN_FROM_MAILBOX = 1, RUN_FROM_FRAME = 2 };

static void frame_from_mailbox(struct mailbox *mb, uint64_t rip_advance);

static struct resume_frame *frame_of(struct mailbox *mb);

/* Resumes the child: the frame (whether its next exit also writes the notify eventfd),
 * state = MB_RESUME, FUTEX_WAKE (nothing for RUN_WAIT_ONLY). */
static void resume_child(struct mailbox *mb, int mode, uint64_t rip_advance, bool notify) {
  if (mode == RUN_WAIT_ONLY) return;
  if (mode == RUN_FROM_MAILBOX) frame_from_mailbox(mb, rip_advance);
  frame_of(mb)->notify = notify;
  atomic_store_explicit((_Atomic uint32_t *)&mb->state, MB_RESUME, memory_order_release);
  wake_all(mb);
}

static bool arg_mailbox(napi_env env, napi_value v, struct mailbox **mb) {
  void *data;
  size_t len;
  if (!arg_bytes(env, v, &data, &len) || len < CONTROL_SIZE || (uintptr_t)data % 4096) return false;
  *mb = data;
  return true;
}

/* ---- the resume frame: the kernel's rt_sigreturn frame, which only the host writes ---- */

#define FP_XSTATE_MAGIC1_ 0x46505853u
#define FP_XSTATE_MAGIC2_ 0x46505845u
#define UC_FP_XSTATE_ 1
#define UC_SIGCONTEXT_SS_ 2
#define UC_STRICT_RESTORE_SS_ 4
#define USER_CS 0x33
#define USER_DS 0x2b
#define FRAME_FPSTATE_CAPACITY (FRAME_SIZE - FRAME_FPSTATE_OFFSET - 4)

static struct resume_frame *frame_of(struct mailbox *mb) {
  return (struct resume_frame *)((uint8_t *)mb + FRAME_OFFSET);
}

/* The XSAVE image's size the frame was set up with (its own software-reserved words). */
static uint32_t frame_xstate_size(const struct resume_frame *f) {
  uint32_t size;
  memcpy(&size, f->fpstate + 464 + 16, 4);
  return size;
}

static void frame_registers(struct resume_frame *f, const uint64_t *r, uint64_t rip_advance) {
  struct frame_sigcontext *sc = &f->mcontext;
  sc->rax = r[0]; sc->rbx = r[1]; sc->rcx = r[2]; sc->rdx = r[3];
  sc->rsi = r[4]; sc->rdi = r[5]; sc->rsp = r[6]; sc->rbp = r[7];
  sc->r8 = r[8]; sc->r9 = r[9]; sc->r10 = r[10]; sc->r11 = r[11];
  sc->r12 = r[12]; sc->r13 = r[13]; sc->r14 = r[14]; sc->r15 = r[15];
  sc->rip = r[16] + rip_advance; sc->eflags = r[17];
  sc->cs = USER_CS;
  sc->ss = USER_DS;
  sc->gs = sc->fs = 0;
  sc->err = sc->trapno = sc->oldmask = sc->cr2 = 0;
}

/* Copies a standard-format XSAVE image in, keeping the frame's own words and a header the
 * kernel's XRSTOR accepts: MXCSR without reserved bits, only components the frame holds. */
static void frame_fpu(struct resume_frame *f, const uint8_t *image, size_t image_len) {
  uint32_t size = frame_xstate_size(f);
  uint64_t xfeatures;
  memcpy(&xfeatures, f->fpstate + 464 + 8, 8);
  memcpy(f->fpstate, image, image_len < 464 ? image_len : 464);
  uint32_t mxcsr;
  memcpy(&mxcsr, f->fpstate + 24, 4);
  mxcsr &= 0xffff;
  memcpy(f->fpstate + 24, &mxcsr, 4);
  if (size <= 512) return;
  size_t rest = image_len > 512 ? image_len - 512 : 0;
  if (rest > size - 512) rest = size - 512;
  memset(f->fpstate + 512, 0, size - 512);
  memcpy(f->fpstate + 512, image + 512, rest);
  uint64_t bv;
  memcpy(&bv, f->fpstate + 512, 8);
  bv &= xfeatures;
  memcpy(f->fpstate + 512, &bv, 8);
  memset(f->fpstate + 520, 0, 56); /* XCOMP_BV and the reserved header words */
}

/* processInitFrame(control, xfeatures, xstateSize, fsgsbase, spinLoops): the fixed parts of the frame,
 * once per child: flags, signal stack, signal mask, where the FPU image is and its words. */
static napi_value process_init_frame(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  struct mailbox *mb;
  uint64_t xfeatures;
  uint32_t size, spin_loops;
  bool fsgsbase;
  if (!get_args(env, info, 5, argv, NULL, "resume frame") || !arg_mailbox(env, argv[0], &mb) || !arg_u64(env, argv[1], &xfeatures) ||
      !arg_u32(env, argv[2], &size) || napi_get_value_bool(env, argv[3], &fsgsbase) != napi_ok || !arg_u32(env, argv[4], &spin_loops))
    return throw_message(env, "resume frame", "bad arguments");
  if ((size != 512 && size < 576) || size > FRAME_FPSTATE_CAPACITY || (xfeatures & 3) != 3)
    return throw_message(env, "resume frame", "the kernel's signal frames hold an XSAVE image vmlet cannot handle");
  struct resume_frame *f = frame_of(mb);
  memset(f, 0, sizeof *f);
  f->uc_flags = UC_FP_XSTATE_ | UC_SIGCONTEXT_SS_ | UC_STRICT_RESTORE_SS_;
  f->ss_sp = CONTROL_ADDR + SIGNAL_STACK_OFFSET;
  f->ss_size = SIGNAL_STACK_SIZE;
  f->sigmask = 0; /* every signal deliverable in the guest */
  f->fsgsbase = fsgsbase;
  f->spin_loops = spin_loops;
  f->mcontext.fpstate = CONTROL_ADDR + FRAME_OFFSET + FRAME_FPSTATE_OFFSET;
  uint32_t sw[12] = { FP_XSTATE_MAGIC1_, size + 4, (uint32_t)xfeatures, (uint32_t)(xfeatures >> 32), size };
  memcpy(f->fpstate + 464, sw, sizeof sw);
  uint32_t magic2 = FP_XSTATE_MAGIC2_;
  memcpy(f->fpstate + size, &magic2, 4);
  return make_undefined(env);
}

/* processWriteFrame(control, regs (18, kvm_regs order), xsave, fsBase, gsBase): the host's own state for the next resume. */
static napi_value process_write_frame(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  struct mailbox *mb;
  void *regs, *image;
  size_t regs_len, image_len;
  uint64_t fs, gs;
  if (!get_args(env, info, 5, argv, NULL, "resume frame") || !arg_mailbox(env, argv[0], &mb) ||
      !arg_bytes(env, argv[1], &regs, &regs_len) || regs_len < 18 * 8 || !arg_bytes(env, argv[2], &image, &image_len) ||
      !arg_u64(env, argv[3], &fs) || !arg_u64(env, argv[4], &gs))
    return throw_message(env, "resume frame", "bad arguments");
  struct resume_frame *f = frame_of(mb);
  frame_registers(f, regs, 0);
  frame_fpu(f, image, image_len);
  f->fs_base = fs;
  f->gs_base = gs;
  f->set_fs = 1; /* a state the host chose: the park loop loads its FS base even without FSGSBASE */
  return make_undefined(env);
}

/* The guest's own state, as its last exit posted it, for a resume that changes nothing but RIP. */
static void frame_from_mailbox(struct mailbox *mb, uint64_t rip_advance) {
  struct resume_frame *f = frame_of(mb);
  uint64_t regs[18];
  memcpy(regs, (const void *)mb->regs, sizeof regs); /* once: the guest could change them */
  frame_registers(f, regs, rip_advance);
  frame_fpu(f, mb->xsave, MB_XSAVE_SIZE);
  if (f->fsgsbase) { /* what the guest had (rdfsbase); without FSGSBASE the host's bases stand */
    f->fs_base = mb->fs_base;
    f->gs_base = mb->gs_base;
  }
  f->set_fs = 0; /* the guest goes on with the FS base it has */
}

/* ---- the children the host owns, reaped when their environment shuts down ----
 * A worker thread that exits with sandboxes open (or warm children waiting) can run no
 * JavaScript to end them. A child it spawned itself dies with it (PR_SET_PDEATHSIG) but would
 * stay a zombie of this process; a waiting child the spawner thread started
 * (process_spawner.c) lives on until someone kills it. Each child an environment takes is
 * registered with an environment cleanup hook that hands it to the reaper thread; the host
 * disowns it when it ends it itself. */
struct owned_child {
  struct owned_child *next;
  napi_env env;
  int pidfd;
  int socket; /* a warm child's, until its hand-over; else -1 */
};

static pthread_mutex_t owned_mu = PTHREAD_MUTEX_INITIALIZER;
static struct owned_child *owned;

/* Unlinks the entry of `pidfd` (or of `socket` when pidfd is -1); NULL if none. */
static struct owned_child *unlink_owned(int pidfd, int socket) {
  pthread_mutex_lock(&owned_mu);
  struct owned_child **at = &owned, *c = NULL;
  for (; *at; at = &(*at)->next) {
    if ((pidfd >= 0 && (*at)->pidfd == pidfd) || (pidfd < 0 && (*at)->socket == socket)) {
      c = *at;
      *at = c->next;
      break;
    }
  }
  pthread_mutex_unlock(&owned_mu);
  return c;
}

static void reap_at_teardown(void *arg) {
  struct owned_child *c = arg;
  if (unlink_owned(c->pidfd, -1) != c) return; /* disowned meanwhile */
  if (c->socket >= 0) close(c->socket);
  reaper_retire_child(c->pidfd);
  free(c);
}

void process_own_child(napi_env env, int pidfd, int socket) {
  struct owned_child *c = calloc(1, sizeof *c);
  if (!c) return; /* it is only not reaped at teardown */
  *c = (struct owned_child){ NULL, env, pidfd, socket };
  pthread_mutex_lock(&owned_mu);
  c->next = owned;
  owned = c;
  pthread_mutex_unlock(&owned_mu);
  napi_add_env_cleanup_hook(env, reap_at_teardown, c);
}

void process_disown(napi_env env, int pidfd) {
  struct owned_child *c = unlink_owned(pidfd, -1);
  if (!c) return;
  napi_remove_env_cleanup_hook(env, reap_at_teardown, c);
  free(c);
}

/* A warm child's socket is closed by its hand-over: teardown must not close that number again. */
static void forget_socket(int socket) {
  pthread_mutex_lock(&owned_mu);
  for (struct owned_child *c = owned; c; c = c->next) {
    if (c->socket == socket) c->socket = -1;
  }
  pthread_mutex_unlock(&owned_mu);
}

/* posix_spawn of the helper with `fds` as its fds 3, 4, ... and nothing else open above
 * them; a warm child ("w") gets one socket and waits on it for its memfds. Returns 0 and
 * the child's pidfd and pid, or an errno. */
int spawn_helper(const char *path, const int *fds, int count, bool warm, int *pidfd_out, pid_t *pid_out) {
  char parent[24];
  snprintf(parent, sizeof parent, "%d", (int)getpid());
  char *child_argv[] = { (char *)path, parent, warm ? "w" : NULL, NULL };
  char *child_env[] = { NULL };
  int high[3] = { -1, -1, -1 }, err = 0;
  /* Through fds above 16 first, so that no dup2 overwrites another's source. */
  for (int i = 0; i < count && !err; i++) {
    high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 16);
    if (high[i] < 0) err = errno;
  }
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  if (!err) {
    for (int i = 0; i < count; i++) posix_spawn_file_actions_adddup2(&actions, high[i], 3 + i);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3 + count);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSID);
    pid_t pid;
    err = posix_spawn(&pid, path, &actions, &attr, child_argv, child_env);
    if (!err) {
      int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
      if (pidfd < 0) {
        err = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
      } else {
        fcntl(pidfd, F_SETFD, FD_CLOEXEC);
        *pidfd_out = pidfd;
        *pid_out = pid;
      }
    }
  }
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  for (int i = 0; i < count; i++) if (high[i] >= 0) close(high[i]);
  return err;
}

static napi_value spawned(napi_env env, int pidfd, pid_t pid, int socket_fd) {
  napi_value result;
  napi_create_array_with_length(env, socket_fd >= 0 ? 3 : 2, &result);
  napi_set_element(env, result, 0, make_i32(env, pidfd));
  napi_set_element(env, result, 1, make_i32(env, (int32_t)pid));
  if (socket_fd >= 0) napi_set_element(env, result, 2, make_i32(env, socket_fd));
  return result;
}

/* processSpawn(path, memoryFd, controlFd, notifyFd): the helper with guest memory as fd 3, the control memfd as fd 4 and the notify eventfd as fd 5; returns [pidfd, pid]. */
static napi_value process_spawn(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  char path[4096];
  size_t path_len;
  int32_t fds[3];
  if (!get_args(env, info, 4, argv, NULL, "posix_spawn") ||
      napi_get_value_string_utf8(env, argv[0], path, sizeof path, &path_len) != napi_ok || path_len >= sizeof path - 1 ||
      !arg_i32(env, argv[1], &fds[0]) || !arg_i32(env, argv[2], &fds[1]) || !arg_i32(env, argv[3], &fds[2]))
    return throw_message(env, "posix_spawn", "bad arguments");
  int pidfd = -1;
  pid_t pid = 0;
  int err = spawn_helper(path, fds, 3, false, &pidfd, &pid);
  if (err) return throw_errno(env, "posix_spawn", err);
  process_own_child(env, pidfd, -1);
  return spawned(env, pidfd, pid, -1);
}

/* processHandOver(socket, memoryFd, controlFd, notifyFd): sends a warm child its three fds (sendmsg, SCM_RIGHTS) and closes the socket. */
static napi_value process_hand_over(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t socket_fd, fds[3];
  if (!get_args(env, info, 4, argv, NULL, "sendmsg") || !arg_i32(env, argv[0], &socket_fd) || !arg_i32(env, argv[1], &fds[0]) ||
      !arg_i32(env, argv[2], &fds[1]) || !arg_i32(env, argv[3], &fds[2]))
    return throw_message(env, "sendmsg", "bad arguments");
  char byte = 'm';
  struct iovec iov = { &byte, 1 };
  union { struct cmsghdr header; char bytes[CMSG_SPACE(sizeof fds)]; } control;
  memset(&control, 0, sizeof control);
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes, .msg_controllen = sizeof control.bytes };
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof fds);
  memcpy(CMSG_DATA(c), fds, sizeof fds);
  ssize_t n;
  do n = sendmsg(socket_fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  int err = n == 1 ? 0 : n < 0 ? errno : EPIPE;
  forget_socket(socket_fd);
  close(socket_fd);
  return err ? throw_errno(env, "sendmsg", err) : make_undefined(env);
}

/* processResume(control, pidfd, mode, ripAdvance, timeoutNs, graceNs): one run on the calling thread; returns RESUME_*. */
static napi_value process_resume(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  struct mailbox *mb;
  int32_t pidfd, mode;
  uint32_t advance;
  int64_t timeout_ns, grace_ns;
  if (!get_args(env, info, 6, argv, NULL, "futex") || !arg_mailbox(env, argv[0], &mb) || !arg_i32(env, argv[1], &pidfd) ||
      !arg_i32(env, argv[2], &mode) || !arg_u32(env, argv[3], &advance) || napi_get_value_int64(env, argv[4], &timeout_ns) != napi_ok ||
      napi_get_value_int64(env, argv[5], &grace_ns) != napi_ok || mode < RUN_WAIT_ONLY || mode > RUN_FROM_FRAME)
    return throw_message(env, "futex", "bad arguments");
  resume_child(mb, mode, advance, false);
  return make_i32(env, wait_for_exit(mb, pidfd, timeout_ns, grace_ns));
}

/* ---- the runner thread: the watchdog of one child's async runs ----
 * An async run's result normally comes through its exit notification, on the event loop
 * (process_notify.c, src/hypervisor/process/exit-notifier.ts). The runner only watches the
 * run: it stops the guest at the deadline (interrupt, then SIGKILL after the grace),
 * notices a child that died, and an exit posted without its notification (a guest that
 * wrote the state word itself). It sleeps until the next thing to check, at most
 * LIVENESS_SLICE_NS away, and nothing wakes it when a run ends, so that a call costs it no
 * wake-up on a machine whose cores the child and the event loop need. Its results go
 * through a threadsafe function, with the run's token. */

struct runner {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv; /* on CLOCK_MONOTONIC */
  napi_threadsafe_function tsfn;
  struct mailbox *mb; /* the runner's own mapping of the control memfd: valid while it lives, whatever JavaScript frees */
  bool quit, thread_started;
  bool external_gone, tsfn_gone; /* which owners let go of it (runner_free_if_unreachable) */
  /* the run watched, set by the JS thread under mu */
  bool watching;
  int pidfd;
  uint32_t token;
  struct deadline deadline;
  int64_t wake_at; /* when the runner looks next; INT64_MAX: only when signalled */
};

/* One look at the watched run (under mu): a result if it ended unnoticed or must end, else -1 and when to look again. */
static int watch_step(struct runner *r, int64_t now, int64_t *next) {
  if (atomic_load_explicit((_Atomic uint32_t *)&r->mb->state, memory_order_acquire) == MB_EXIT_POSTED) return RESUME_EXIT;
  if (child_ended(r->pidfd)) return RESUME_LOST;
  int64_t until;
  if (deadline_step(&r->deadline, r->mb, r->pidfd, now, &until) >= 0) return RESUME_KILLED;
  *next = until - now < LIVENESS_SLICE_NS ? until : now + LIVENESS_SLICE_NS;
  return -1;
}

static void runner_sleep_until(struct runner *r, int64_t at) {
  if (at == INT64_MAX) {
    pthread_cond_wait(&r->cv, &r->mu);
    return;
  }
  struct timespec ts = { at / 1000000000ll, at % 1000000000ll };
  pthread_cond_timedwait(&r->cv, &r->mu, &ts);
}

static void *runner_main(void *arg) {
  struct runner *r = arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL); /* Node's signals are for its own threads */
  pthread_mutex_lock(&r->mu);
  for (;;) {
    if (r->quit) {
      /* Stopped while it watched a run (its child is being killed): the run ends as lost. */
      napi_threadsafe_function tsfn = __atomic_load_n(&r->tsfn, __ATOMIC_ACQUIRE);
      if (r->watching && tsfn) napi_call_threadsafe_function(tsfn, (void *)(intptr_t)(((int64_t)r->token << 8) | RESUME_LOST), napi_tsfn_blocking);
      r->watching = false;
      break;
    }
    int64_t next = INT64_MAX;
    if (r->watching) {
      int result = watch_step(r, now_ns(), &next);
      if (result >= 0) {
        r->watching = false;
        uint32_t token = r->token;
        napi_threadsafe_function tsfn = __atomic_load_n(&r->tsfn, __ATOMIC_ACQUIRE);
        pthread_mutex_unlock(&r->mu);
        if (tsfn) napi_call_threadsafe_function(tsfn, (void *)(intptr_t)(((int64_t)token << 8) | result), napi_tsfn_blocking);
        pthread_mutex_lock(&r->mu);
        continue;
      }
    }
    r->wake_at = next;
    runner_sleep_until(r, next);
  }
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

/* Runs on the JS thread: hands a result and its run's token to the callback. */
static void runner_deliver(napi_env env, napi_value callback, void *context, void *data) {
  if (env == NULL) return;
  int64_t packed = (int64_t)(intptr_t)data;
  napi_value args[2] = { make_i32(env, (int32_t)(packed & 0xff)), NULL }, undefined = make_undefined(env);
  napi_create_uint32(env, (uint32_t)(packed >> 8), &args[1]);
  napi_call_function(env, undefined, callback, 2, args, NULL);
}

static void runner_join(struct runner *r) {
  if (!r->thread_started) return;
  pthread_mutex_lock(&r->mu);
  r->quit = true;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
  pthread_join(r->thread, NULL);
  r->thread_started = false;
}

/* Frees a runner once neither its External nor its threadsafe function can reach it (both
 * finalizers run on the JS thread; the second one frees). */
static void runner_free_if_unreachable(struct runner *r) {
  if (!r->external_gone || !r->tsfn_gone) return;
  if (r->pidfd >= 0) close(r->pidfd);
  munmap(r->mb, CONTROL_SIZE);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
  free(r);
}

/* Node deletes thread-safe functions when the environment shuts down (a worker thread that
 * exits, the process at exit), before it frees the control memory the runner reads: the
 * runner stops here, so it never reads freed memory (its watch is short: it is not blocked
 * on anything but its own timed wait). */
static void runner_tsfn_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  struct runner *r = data;
  __atomic_store_n(&r->tsfn, NULL, __ATOMIC_RELEASE);
  runner_join(r);
  r->tsfn_gone = true;
  runner_free_if_unreachable(r);
}

/* processRunner(control, onExit): a runner thread for async runs; returns its handle (an External). */
/* The External is collected: the threadsafe function is released (its finalizer, which runs
 * later, stops the thread if it still runs); never block here. */
static void runner_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  struct runner *r = data;
  r->external_gone = true;
  napi_threadsafe_function tsfn = r->tsfn;
  if (tsfn) napi_release_threadsafe_function(tsfn, napi_tsfn_abort);
  runner_free_if_unreachable(r);
}

static napi_value process_runner(napi_env env, napi_callback_info info) {
  napi_value argv[2], name, handle;
  int32_t control_fd;
  if (!get_args(env, info, 2, argv, NULL, "pthread_create") || !arg_i32(env, argv[0], &control_fd))
    return throw_message(env, "pthread_create", "bad arguments");
  /* mmap(2) of the control memfd: a worker thread's exit frees JavaScript's mapping while a
   * runner may still be looking at its child's mailbox. */
  void *mb = mmap(NULL, CONTROL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, control_fd, 0);
  if (mb == MAP_FAILED) return throw_errno(env, "mmap", errno);
  struct runner *r = calloc(1, sizeof *r);
  if (!r) {
    munmap(mb, CONTROL_SIZE);
    return throw_errno(env, "calloc", ENOMEM);
  }
  r->mb = mb;
  r->pidfd = -1;
  r->wake_at = INT64_MAX;
  pthread_mutex_init(&r->mu, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* now_ns()'s clock */
  pthread_cond_init(&r->cv, &attr);
  pthread_condattr_destroy(&attr);
  napi_create_string_utf8(env, "vmlet-process-runner", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, r, runner_tsfn_finalize, r, runner_deliver, &r->tsfn) != napi_ok) {
    munmap(mb, CONTROL_SIZE);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    return throw_message(env, "napi_create_threadsafe_function", "cannot create the runner's callback");
  }
  napi_unref_threadsafe_function(env, r->tsfn); /* an idle sandbox must not keep Node alive */
  int err = pthread_create(&r->thread, NULL, runner_main, r);
  if (err) {
    r->external_gone = true; /* no External is made: the threadsafe function's finalizer frees it */
    napi_release_threadsafe_function(r->tsfn, napi_tsfn_abort);
    return throw_errno(env, "pthread_create", err);
  }
  r->thread_started = true;
  napi_create_external(env, r, runner_finalize, NULL, &handle);
  return handle;
}

/* processRunnerPost(runner, pidfd, mode, ripAdvance, timeoutNs, graceNs, token): resumes the
 * child (its next exit also writes the notify eventfd) and has the runner watch run `token`;
 * Node stays alive until the run is called off. The runner is woken only if it would look
 * later than this run needs (it sleeps without a timeout when it watches nothing). */
static napi_value process_runner_post(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  struct runner *r;
  int32_t pidfd, mode;
  uint32_t advance, token;
  int64_t timeout_ns, grace_ns;
  if (!get_args(env, info, 7, argv, NULL, "futex") || napi_get_value_external(env, argv[0], (void **)&r) != napi_ok ||
      !arg_i32(env, argv[1], &pidfd) || !arg_i32(env, argv[2], &mode) || !arg_u32(env, argv[3], &advance) ||
      napi_get_value_int64(env, argv[4], &timeout_ns) != napi_ok || napi_get_value_int64(env, argv[5], &grace_ns) != napi_ok ||
      !arg_u32(env, argv[6], &token) || token >= (1u << 24) || mode < RUN_WAIT_ONLY || mode > RUN_FROM_FRAME || !r->thread_started)
    return throw_message(env, "futex", "bad arguments");
  /* The runner signals through its own copy: the host's pidfd number may be closed (and
   * reused for another child) while the runner still looks at this one. */
  int own = fcntl(pidfd, F_DUPFD_CLOEXEC, 3);
  if (own < 0) return throw_errno(env, "fcntl", errno);
  if (r->tsfn) napi_ref_threadsafe_function(env, r->tsfn); /* keep Node alive while the guest runs */
  resume_child(r->mb, mode, advance, true);
  int64_t now = now_ns();
  pthread_mutex_lock(&r->mu);
  r->watching = true;
  int old = r->pidfd;
  r->pidfd = own;
  r->token = token;
  r->deadline = (struct deadline){ timeout_ns > 0 ? now + timeout_ns : INT64_MAX, grace_ns, 0 };
  int64_t first_look = r->deadline.at - now < LIVENESS_SLICE_NS ? r->deadline.at : now + LIVENESS_SLICE_NS;
  if (first_look < r->wake_at) pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
  if (old >= 0) close(old);
  return make_undefined(env);
}

/* processRunnerCallOff(runner, token): run `token` ended (the JS thread has its result): the
 * runner no longer watches it, so can no longer stop the child (which may be running the
 * next call by then); Node is kept alive for it no more. Nothing wakes the runner. */
static napi_value process_runner_call_off(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct runner *r;
  uint32_t token;
  if (!get_args(env, info, 2, argv, NULL, "futex") || napi_get_value_external(env, argv[0], (void **)&r) != napi_ok || !arg_u32(env, argv[1], &token))
    return throw_message(env, "futex", "bad arguments");
  pthread_mutex_lock(&r->mu);
  if (r->token == token) r->watching = false;
  pthread_mutex_unlock(&r->mu);
  if (r->tsfn) napi_unref_threadsafe_function(env, r->tsfn);
  return make_undefined(env);
}

/* processRunnerStop(runner): ends the runner thread; a run in progress must be about to end (its child killed). */
static napi_value process_runner_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct runner *r;
  if (!get_args(env, info, 1, argv, NULL, "pthread_join") || napi_get_value_external(env, argv[0], (void **)&r) != napi_ok)
    return throw_message(env, "pthread_join", "bad arguments");
  runner_join(r);
  if (r->tsfn) napi_unref_threadsafe_function(env, r->tsfn); /* a run it watched keeps Node alive no more */
  return make_undefined(env);
}

/* processInterrupt(mailbox, pidfd): interrupt flag, then the interrupt signal (pidfd_send_signal). */
static napi_value process_interrupt(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct mailbox *mb;
  int32_t pidfd;
  if (!get_args(env, info, 2, argv, NULL, "pidfd_send_signal") || !arg_mailbox(env, argv[0], &mb) || !arg_i32(env, argv[1], &pidfd))
    return throw_message(env, "pidfd_send_signal", "bad arguments");
  atomic_store_explicit((_Atomic uint32_t *)&mb->interrupt, 1, memory_order_release);
  send_signal(pidfd, MB_INTERRUPT_SIGNAL);
  return make_undefined(env);
}

/* processKill(pidfd): SIGKILL, reap (waitid P_PIDFD), close; returns the exit status, or 128 + the signal. */
static napi_value process_kill(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t pidfd;
  if (!get_args(env, info, 1, argv, NULL, "waitid") || !arg_i32(env, argv[0], &pidfd))
    return throw_message(env, "waitid", "bad arguments");
  process_disown(env, pidfd);
  siginfo_t status = {0};
  if (kill_and_reap(pidfd, &status) < 0) return make_i32(env, -1);
  return make_i32(env, status.si_code == CLD_EXITED ? status.si_status : 128 + status.si_status);
}

/* processSetSpin(ns): how long every wait spins before it sleeps on the futex. */
static napi_value process_set_spin(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  uint32_t ns;
  if (!get_args(env, info, 1, argv, NULL, "spin") || !arg_u32(env, argv[0], &ns)) return throw_message(env, "spin", "bad arguments");
  spin_ns = ns;
  return make_undefined(env);
}

/* processTerminate(pidfd): SIGKILL, without reaping (a runner may still be waiting for the child). */
static napi_value process_terminate(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t pidfd;
  if (!get_args(env, info, 1, argv, NULL, "pidfd_send_signal") || !arg_i32(env, argv[0], &pidfd))
    return throw_message(env, "pidfd_send_signal", "bad arguments");
  send_signal(pidfd, SIGKILL);
  return make_undefined(env);
}

/* processCpuTimeNs(pid): clock_gettime of the child's process CPU clock (clock_getcpuclockid), ns; -1 once it is gone. */
static napi_value process_cpu_time(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  int32_t pid;
  if (!get_args(env, info, 1, argv, NULL, "clock_gettime") || !arg_i32(env, argv[0], &pid) || pid <= 0)
    return throw_message(env, "clock_gettime", "bad arguments");
  clockid_t clock;
  struct timespec ts;
  double ns = -1;
  if (clock_getcpuclockid(pid, &clock) == 0 && clock_gettime(clock, &ts) == 0) ns = (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
  napi_create_double(env, ns, &out);
  return out;
}

void register_process_child(napi_env env, napi_value exports) {
  NAPI_EXPORT_FN(env, exports, "processSpawn", process_spawn);
  NAPI_EXPORT_FN(env, exports, "processHandOver", process_hand_over);
  NAPI_EXPORT_FN(env, exports, "processResume", process_resume);
  NAPI_EXPORT_FN(env, exports, "processRunner", process_runner);
  NAPI_EXPORT_FN(env, exports, "processRunnerPost", process_runner_post);
  NAPI_EXPORT_FN(env, exports, "processRunnerCallOff", process_runner_call_off);
  NAPI_EXPORT_FN(env, exports, "processRunnerStop", process_runner_stop);
  NAPI_EXPORT_FN(env, exports, "processInterrupt", process_interrupt);
  NAPI_EXPORT_FN(env, exports, "processKill", process_kill);
  NAPI_EXPORT_FN(env, exports, "processTerminate", process_terminate);
  NAPI_EXPORT_FN(env, exports, "processSetSpin", process_set_spin);
  NAPI_EXPORT_FN(env, exports, "processCpuTimeNs", process_cpu_time);
  NAPI_EXPORT_FN(env, exports, "processInitFrame", process_init_frame);
  NAPI_EXPORT_FN(env, exports, "processWriteFrame", process_write_frame);
}

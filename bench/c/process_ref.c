/*
 * process_ref: raw-C reference figures for vmlet's process backend.
 *
 * Does what vmlet's process backend does for a call, with no vmlet code (no JS, no N-API)
 * in the way: it starts vmlet's own child, build/Release/vmlet-process-helper (the same
 * freestanding, seccomp-confined program, speaking native/process/mailbox.h), with guest
 * memory a memfd mapped at the guest's addresses. The guest is a two-instruction loop on
 * an R-X page at 0x100000, `1: out %al,$0x10; jmp 1b`: the `out` faults at CPL 3, the
 * child's SIGSEGV handler posts registers and FPU state in the mailbox, wakes the host
 * (futex) and parks; the host builds the rt_sigreturn frame from the mailbox (RIP + 2,
 * as vmlet advances past an `out`), sets the state to "resume" and wakes the child, which
 * sigreturns into the guest. Both sides spin before they sleep on the futex, as vmlet
 * does: the host --host-spin-ns (vmlet: 20000), the child --child-spin pause loops
 * (vmlet: 2000; the helper reads it from the frame).
 *
 * Prints one JSON object on stdout; errors go to stderr with a non-zero exit.
 * CPU placement: none by default (as vmlet's bench runs); --pin same|split puts host and
 * child on one core or on cores 0 and 1, for context.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../native/process/mailbox.h"
#include "checksum.h"

#define PAGE 4096ull
#define CODE_ADDR 0x100000ull
#define GUEST_EXIT_SIGNAL 11 /* SIGSEGV: `out` at CPL 3 is a #GP */
#define HELPER_FIRST_SIGNAL 5 /* SIGTRAP: the helper's int3 once it is sealed */
#define OUT_LENGTH 2
#define WAIT_LIMIT_NS 5000000000ll

static const uint8_t code_roundtrip[] = {
    0xe6, 0x10, /* 1: out %al,$0x10 */
    0xeb, 0xfc, /*    jmp 1b        */
};

struct stats { double median, p90; int n; };

struct options {
    size_t mem_size;
    int64_t host_spin_ns;
    uint32_t child_spin;
    enum { PIN_NONE, PIN_SAME, PIN_SPLIT } pin;
    const char *helper;
};

struct child {
    int memfd, ctlfd, pidfd;
    pid_t pid;
    uint8_t *mem;
    struct mailbox *mb;
};

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "process_ref: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static int64_t clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}
static int64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static struct stats summarize(double *us, int n)
{
    qsort(us, n, sizeof *us, cmp_double);
    double median = n % 2 ? us[n / 2] : (us[n / 2 - 1] + us[n / 2]) / 2;
    int p90 = (int)((n * 9 + 9) / 10) - 1; /* nearest rank */
    return (struct stats){median, us[p90 < 0 ? 0 : p90], n};
}

static double *alloc_samples(int n)
{
    double *s = calloc(n, sizeof *s);
    if (!s) die("out of memory");
    return s;
}

/* ---- the exit path, as native/process_child.c does it ---- */

static _Atomic uint32_t *state_of(struct child *c) { return (_Atomic uint32_t *)&c->mb->state; }

static struct resume_frame *frame_of(struct child *c) { return (struct resume_frame *)((uint8_t *)c->mb + FRAME_OFFSET); }

/* Until the child posts an exit: a bounded spin, then futex sleeps. */
static void wait_for_exit(struct child *c, const struct options *o)
{
    int64_t start = now_ns();
    for (int64_t until = start + o->host_spin_ns; now_ns() < until;) {
        if (atomic_load_explicit(state_of(c), memory_order_acquire) == MB_EXIT_POSTED) return;
        for (int i = 0; i < 16; i++) __builtin_ia32_pause();
    }
    for (;;) {
        uint32_t seen = atomic_load_explicit(state_of(c), memory_order_acquire);
        if (seen == MB_EXIT_POSTED) return;
        if (now_ns() - start > WAIT_LIMIT_NS) die("the child posted no exit within 5 s");
        struct timespec slice = {0, 20000000};
        syscall(SYS_futex, &c->mb->state, FUTEX_WAIT, seen, &slice, NULL, 0); /* futex(2): sleep while unchanged */
    }
}

/* Resume (state = MB_RESUME, FUTEX_WAKE) and wait for the next exit. */
static void resume_and_wait(struct child *c, const struct options *o)
{
    atomic_store_explicit(state_of(c), MB_RESUME, memory_order_release);
    syscall(SYS_futex, &c->mb->state, FUTEX_WAKE, 1, NULL, NULL, 0); /* futex(2): wake the parked child */
    wait_for_exit(c, o);
}

static uint32_t frame_xstate_size(const struct resume_frame *f)
{
    uint32_t size;
    memcpy(&size, f->fpstate + 464 + 16, 4);
    return size;
}

static void frame_registers(struct resume_frame *f, const uint64_t *r, uint64_t rip_advance)
{
    struct frame_sigcontext *sc = &f->mcontext;
    sc->rax = r[0]; sc->rbx = r[1]; sc->rcx = r[2]; sc->rdx = r[3];
    sc->rsi = r[4]; sc->rdi = r[5]; sc->rsp = r[6]; sc->rbp = r[7];
    sc->r8 = r[8]; sc->r9 = r[9]; sc->r10 = r[10]; sc->r11 = r[11];
    sc->r12 = r[12]; sc->r13 = r[13]; sc->r14 = r[14]; sc->r15 = r[15];
    sc->rip = r[16] + rip_advance; sc->eflags = r[17] | 0x202;
    sc->cs = 0x33;
    sc->ss = 0x2b;
    sc->gs = sc->fs = 0;
    sc->err = sc->trapno = sc->oldmask = sc->cr2 = 0;
}

/* The guest's XSAVE image into the frame, keeping the frame's own words (as vmlet's frame_fpu). */
static void frame_fpu(struct resume_frame *f, const uint8_t *image, size_t image_len)
{
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
    memset(f->fpstate + 520, 0, 56);
}

/* The next resume continues the guest from its last exit, past the `out`. */
static void frame_from_mailbox(struct child *c)
{
    struct resume_frame *f = frame_of(c);
    uint64_t regs[18];
    memcpy(regs, (const void *)c->mb->regs, sizeof regs);
    frame_registers(f, regs, OUT_LENGTH);
    frame_fpu(f, c->mb->xsave, MB_XSAVE_SIZE);
    f->fs_base = c->mb->fs_base;
    f->gs_base = c->mb->gs_base;
}

/* The frame's fixed parts, from what the child's first signal frame said (as processInitFrame). */
static void frame_init(struct child *c, uint32_t child_spin)
{
    uint64_t xfeatures = c->mb->frame_xfeatures;
    uint32_t size = c->mb->frame_xstate_size;
    if ((size != 512 && size < 576) || size > FRAME_SIZE - FRAME_FPSTATE_OFFSET - 4) die("unexpected XSAVE size %u", size);
    struct resume_frame *f = frame_of(c);
    memset(f, 0, sizeof *f);
    f->uc_flags = 1 | 2 | 4; /* UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS */
    f->ss_sp = CONTROL_ADDR + SIGNAL_STACK_OFFSET;
    f->ss_size = SIGNAL_STACK_SIZE;
    f->fsgsbase = 0;
    f->spin_loops = child_spin;
    f->mcontext.fpstate = CONTROL_ADDR + FRAME_OFFSET + FRAME_FPSTATE_OFFSET;
    uint32_t sw[12] = {0x46505853u, size + 4, (uint32_t)xfeatures, (uint32_t)(xfeatures >> 32), size};
    memcpy(f->fpstate + 464, sw, sizeof sw);
    uint32_t magic2 = 0x46505845u;
    memcpy(f->fpstate + size, &magic2, 4);
    /* The guest's first state: RIP at the loop, the reset FPU state. */
    uint64_t regs[18] = {0};
    regs[16] = CODE_ADDR;
    uint8_t image[MB_XSAVE_SIZE] = {0};
    uint16_t fcw = 0x37f;
    uint32_t mxcsr[2] = {0x1f80, 0xffff};
    memcpy(image, &fcw, 2);
    memcpy(image + 24, mxcsr, 8);
    frame_registers(f, regs, 0);
    frame_fpu(f, image, sizeof image);
}

/* ---- a child: guest memory, control memory, the helper ---- */

static int memfd_sized(const char *name, size_t size)
{
    int fd = memfd_create(name, MFD_CLOEXEC); /* memfd_create(2) */
    if (fd < 0) die("memfd_create: %s", strerror(errno));
    if (ftruncate(fd, (off_t)size) != 0) die("ftruncate: %s", strerror(errno)); /* ftruncate(2) */
    return fd;
}

static void *map_shared(int fd, size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0); /* mmap(2) */
    if (p == MAP_FAILED) die("mmap: %s", strerror(errno));
    return p;
}

static void pin(pid_t pid, int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(pid, sizeof set, &set) != 0) die("sched_setaffinity: %s", strerror(errno)); /* sched_setaffinity(2) */
}

/* The eventfd a helper writes after an async run's exit (fd 5 at its start): one per
 * process, as vmlet has one per thread; nothing here asks for notifications. */
static int notify_fd(void)
{
    static int fd = -1;
    if (fd < 0) fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); /* eventfd(2) */
    if (fd < 0) die("eventfd: %s", strerror(errno));
    return fd;
}

/* posix_spawn of the helper with guest memory as fd 3, control memory as fd 4 and the notify eventfd as fd 5 (as processSpawn). */
static void spawn_helper(struct child *c, const char *helper)
{
    char parent[24];
    snprintf(parent, sizeof parent, "%d", (int)getpid());
    char *argv[] = {(char *)helper, parent, NULL}, *envp[] = {NULL};
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_adddup2(&actions, c->memfd, 3);
    posix_spawn_file_actions_adddup2(&actions, c->ctlfd, 4);
    posix_spawn_file_actions_adddup2(&actions, notify_fd(), 5);
    posix_spawn_file_actions_addclosefrom_np(&actions, 6);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSID);
    int err = posix_spawn(&c->pid, helper, &actions, &attr, argv, envp); /* posix_spawn(3): clone + exec */
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (err) die("posix_spawn %s: %s", helper, strerror(err));
    c->pidfd = (int)syscall(SYS_pidfd_open, c->pid, 0); /* pidfd_open(2) */
    if (c->pidfd < 0) die("pidfd_open: %s", strerror(errno));
}

/* Guest memory with the loop at CODE_ADDR, the control memfd with the mappings listed, the
 * helper started and stopped at its first exit (SIGTRAP), the frame set up. Times the spawn. */
static void child_create(struct child *c, const struct options *o, double *spawn_us)
{
    c->memfd = memfd_sized("process_ref-guest", o->mem_size);
    c->mem = map_shared(c->memfd, o->mem_size);
    memcpy(c->mem + CODE_ADDR, code_roundtrip, sizeof code_roundtrip);
    c->ctlfd = memfd_sized("process_ref-control", CONTROL_SIZE);
    c->mb = map_shared(c->ctlfd, CONTROL_SIZE);
    c->mb->memory_size_pages = (uint32_t)(o->mem_size / PAGE);
    c->mb->map_count = 2;
    c->mb->maps[0] = (struct mb_map){CODE_ADDR, PAGE, PROT_READ | PROT_EXEC, 0};
    c->mb->maps[1] = (struct mb_map){CODE_ADDR + PAGE, o->mem_size - CODE_ADDR - PAGE, PROT_READ | PROT_WRITE, 0};
    int64_t t0 = now_ns();
    spawn_helper(c, o->helper);
    if (o->pin == PIN_SAME) pin(c->pid, 0);
    if (o->pin == PIN_SPLIT) pin(c->pid, 1);
    wait_for_exit(c, o);
    if (spawn_us) *spawn_us = (now_ns() - t0) / 1e3;
    if (c->mb->signo != HELPER_FIRST_SIGNAL) die("the helper did not start (first signal %d)", c->mb->signo);
    frame_init(c, o->child_spin);
}

/* The guest's first `out`, from the frame frame_init wrote. */
static void child_first_exit(struct child *c, const struct options *o)
{
    resume_and_wait(c, o);
    if (c->mb->signo != GUEST_EXIT_SIGNAL || c->mb->regs[16] != CODE_ADDR) die("unexpected exit: signal %d at %#llx", c->mb->signo, (unsigned long long)c->mb->regs[16]);
}

static void child_destroy(struct child *c, size_t mem_size)
{
    syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0); /* pidfd_send_signal(2) */
    siginfo_t info;
    while (waitid((idtype_t)P_PIDFD, (id_t)c->pidfd, &info, WEXITED) != 0 && errno == EINTR) {} /* waitid(2): reap */
    close(c->pidfd);
    munmap(c->mb, CONTROL_SIZE);
    munmap(c->mem, mem_size);
    close(c->ctlfd);
    close(c->memfd);
}

/* ---- measurements ---- */

/* spawn_us: posix_spawn to the helper's first exit. create_us: memfds, mappings, spawn,
 * frame and the guest's first exit (what build + first call needs). destroy_us: SIGKILL,
 * reap, unmap, close. */
static void measure_create(const struct options *o, int iters, struct stats *spawn, struct stats *create, struct stats *destroy)
{
    double *s = alloc_samples(iters), *c = alloc_samples(iters), *d = alloc_samples(iters);
    for (int i = -2; i < iters; i++) {
        struct child ch;
        double spawn_us;
        int64_t t0 = now_ns();
        child_create(&ch, o, &spawn_us);
        child_first_exit(&ch, o);
        int64_t t1 = now_ns();
        child_destroy(&ch, o->mem_size);
        int64_t t2 = now_ns();
        if (i < 0) continue;
        s[i] = spawn_us;
        c[i] = (t1 - t0) / 1e3;
        d[i] = (t2 - t1) / 1e3;
    }
    *spawn = summarize(s, iters);
    *create = summarize(c, iters);
    *destroy = summarize(d, iters);
    free(s);
    free(c);
    free(d);
}

struct roundtrip { struct stats single; double mean_us, host_cpu_us, child_cpu_us; };

/* roundtrip_us: one exit to the next, the guest's state carried over from the mailbox
 * (frame_from_mailbox, as a vmlet resume after an `out`). Also the wall and CPU time
 * per round trip over the whole loop: host (this process) and child. */
static struct roundtrip measure_roundtrip(const struct options *o, int iters)
{
    struct child ch;
    child_create(&ch, o, NULL);
    child_first_exit(&ch, o);
    clockid_t child_clock;
    if (clock_getcpuclockid(ch.pid, &child_clock) != 0) die("clock_getcpuclockid: %s", strerror(errno));
    double *s = alloc_samples(iters);
    int warmup = iters / 10 < 1000 ? iters / 10 : 1000;
    int64_t wall0 = 0, host0 = 0, child0 = 0;
    for (int i = -warmup; i < iters; i++) {
        if (i == 0) {
            wall0 = now_ns();
            host0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
            child0 = clock_ns(child_clock);
        }
        int64_t t0 = now_ns();
        frame_from_mailbox(&ch);
        resume_and_wait(&ch, o);
        int64_t t1 = now_ns();
        if (i >= 0) s[i] = (t1 - t0) / 1e3;
    }
    struct roundtrip r = {
        .mean_us = (now_ns() - wall0) / 1e3 / iters,
        .host_cpu_us = (clock_ns(CLOCK_PROCESS_CPUTIME_ID) - host0) / 1e3 / iters,
        .child_cpu_us = (clock_ns(child_clock) - child0) / 1e3 / iters,
    };
    if (ch.mb->signo != GUEST_EXIT_SIGNAL) die("unexpected exit: signal %d", ch.mb->signo);
    child_destroy(&ch, o->mem_size);
    r.single = summarize(s, iters);
    free(s);
    return r;
}

/* compute_us: checksum.h's kernel run natively, `rounds` rounds per sample. */
static struct stats measure_compute(int iters, uint32_t rounds, uint32_t seed, uint64_t *result)
{
    static uint64_t buffer[CHECKSUM_BUFFER_BYTES / 8];
    double *s = alloc_samples(iters);
    for (int i = -1; i < iters; i++) {
        int64_t t0 = now_ns();
        *result = bench_checksum(buffer, rounds, seed);
        __asm__ volatile("" : : "r"(*result) : "memory");
        int64_t t1 = now_ns();
        if (i >= 0) s[i] = (t1 - t0) / 1e3;
    }
    struct stats st = summarize(s, iters);
    free(s);
    return st;
}

/* ---- command line ---- */

static void usage(void)
{
    fprintf(stderr,
            "usage: process_ref [--mem-mib N] [--iters N] [--only NAME[,NAME...]] [--host-spin-ns N] [--child-spin N]\n"
            "                   [--pin none|same|split] [--helper PATH] [--rounds N] [--seed N]\n"
            "  NAME: spawn_us create_us destroy_us (one loop) roundtrip_us compute_us\n"
            "  defaults: --mem-mib 16, --host-spin-ns 20000, --child-spin 2000 (vmlet's), --pin none,\n"
            "            --iters 50 (create), 20000 (roundtrip), 20 (compute; --rounds 400 --seed 1)\n"
            "            --helper <this program's dir>/../../../build/Release/vmlet-process-helper\n");
    exit(2);
}

static long parse_count(const char *s, const char *flag, long min)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < min) die("%s: expected an integer >= %ld, got '%s'", flag, min, s);
    return v;
}

static const char *default_helper(void)
{
    static char path[4096];
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) die("readlink /proc/self/exe: %s", strerror(errno));
    exe[n] = 0;
    snprintf(path, sizeof path, "%s/../../../build/Release/vmlet-process-helper", dirname(exe));
    return path;
}

enum { M_SPAWN, M_CREATE, M_DESTROY, M_ROUNDTRIP, M_COMPUTE, M_COUNT };
static const char *const names[] = {"spawn_us", "create_us", "destroy_us", "roundtrip_us", "compute_us"};

int main(int argc, char **argv)
{
    struct options o = {.mem_size = 16ull << 20, .host_spin_ns = 20000, .child_spin = 2000, .pin = PIN_NONE, .helper = NULL};
    long iters = 0, rounds = 400, seed = 1, mem_mib = 16;
    int want[M_COUNT] = {0}, any_only = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) usage();
        const char *flag = argv[i], *value = argv[++i];
        if (!strcmp(flag, "--mem-mib")) mem_mib = parse_count(value, flag, 2);
        else if (!strcmp(flag, "--iters")) iters = parse_count(value, flag, 1);
        else if (!strcmp(flag, "--host-spin-ns")) o.host_spin_ns = parse_count(value, flag, 0);
        else if (!strcmp(flag, "--child-spin")) o.child_spin = (uint32_t)parse_count(value, flag, 0);
        else if (!strcmp(flag, "--rounds")) rounds = parse_count(value, flag, 1);
        else if (!strcmp(flag, "--seed")) seed = parse_count(value, flag, 0);
        else if (!strcmp(flag, "--helper")) o.helper = value;
        else if (!strcmp(flag, "--pin")) {
            if (!strcmp(value, "none")) o.pin = PIN_NONE;
            else if (!strcmp(value, "same")) o.pin = PIN_SAME;
            else if (!strcmp(value, "split")) o.pin = PIN_SPLIT;
            else usage();
        } else if (!strcmp(flag, "--only")) {
            char *list = strdup(value), *save = NULL;
            for (char *n = strtok_r(list, ",", &save); n; n = strtok_r(NULL, ",", &save)) {
                int found = -1;
                for (int m = 0; m < M_COUNT; m++) if (!strcmp(n, names[m])) found = m;
                if (found < 0) die("--only: unknown measurement '%s'", n);
                want[found] = any_only = 1;
            }
            free(list);
        } else usage();
    }
    if (mem_mib > 4096) die("--mem-mib must be 2..4096");
    if (!any_only) for (int m = 0; m < M_COUNT; m++) want[m] = 1;
    o.mem_size = (size_t)mem_mib << 20;
    if (!o.helper) o.helper = default_helper();
    if (access(o.helper, X_OK) != 0) die("%s: %s (build it with `npm run build`)", o.helper, strerror(errno));
    if (o.pin == PIN_SAME) pin(0, 0);
    if (o.pin == PIN_SPLIT) pin(0, 0);

    struct stats r[M_COUNT];
    struct roundtrip rt = {0};
    uint64_t checksum = 0;
    if (want[M_SPAWN] || want[M_CREATE] || want[M_DESTROY]) measure_create(&o, iters ? iters : 50, &r[M_SPAWN], &r[M_CREATE], &r[M_DESTROY]);
    if (want[M_ROUNDTRIP]) r[M_ROUNDTRIP] = (rt = measure_roundtrip(&o, iters ? iters : 20000)).single;
    if (want[M_COMPUTE]) r[M_COMPUTE] = measure_compute(iters ? iters : 20, (uint32_t)rounds, (uint32_t)seed, &checksum);

    static const char *const pins[] = {"none", "same", "split"};
    printf("{\"backend\":\"process\",\"mem_mib\":%ld,\"host_spin_ns\":%lld,\"child_spin\":%u,\"pin\":\"%s\"", mem_mib,
           (long long)o.host_spin_ns, o.child_spin, pins[o.pin]);
    for (int m = 0; m < M_COUNT; m++)
        if (want[m]) printf(",\"%s\":{\"median\":%.2f,\"p90\":%.2f,\"n\":%d}", names[m], r[m].median, r[m].p90, r[m].n);
    if (want[M_ROUNDTRIP])
        printf(",\"roundtrip_mean_us\":%.2f,\"roundtrip_host_cpu_us\":%.2f,\"roundtrip_child_cpu_us\":%.2f", rt.mean_us, rt.host_cpu_us, rt.child_cpu_us);
    if (want[M_COMPUTE]) printf(",\"compute_rounds\":%ld,\"compute_seed\":%ld,\"checksum\":\"%llu\"", rounds, seed, (unsigned long long)checksum);
    printf("}\n");
    return 0;
}

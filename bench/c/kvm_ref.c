/*
 * kvm_ref: raw-C reference figures for vmlet's benchmarks.
 *
 * Builds a guest of the same shape as vmlet's (identity-mapped 4-level page
 * tables with 4 KiB pages, GDT/IDT/TSS/page tables on supervisor-only pages,
 * CPL-3 code on a user page at 0x100000, leaving only via `out`) and times the
 * primitive KVM operations with nothing else in the way. Prints one JSON
 * object on stdout; errors go to stderr with a non-zero exit.
 *
 * Restore measurements (--only restore_us etc., --pages k): a guest loop writes k
 * scratch pages and exits; the host puts the memory back from a snapshot taken
 * at the guest's first exit, using KVM's dirty log to find the pages: either by
 * copying them from a snapshot copy (restore_*) or by dropping them from a
 * MAP_PRIVATE mapping of a snapshot file so they fault back in (restore_madvise_*).
 *
 * Why CPL 3: under PVM (the nested /dev/kvm on our CI machines) CPL-0 guest
 * code is emulated instruction by instruction, CPL-3 code runs natively. On
 * hardware KVM both run natively, so the same setup is valid everywhere.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- Guest physical layout (guest virtual = guest physical) ---- */
#define PAGE 0x1000ull
#define GDT_ADDR 0x1000ull      /* supervisor */
#define IDT_ADDR 0x2000ull      /* supervisor */
#define TSS_ADDR 0x3000ull      /* supervisor */
#define STUBS_ADDR 0x4000ull    /* supervisor: ring-0 fault stubs */
#define RSP0_TOP 0x6000ull      /* supervisor: stack for faults from CPL 3 */
#define IST1_TOP 0x7000ull      /* supervisor: separate stack for #DF */
#define SYS_END 0x10000ull
#define MAILBOX_ADDR 0x10000ull /* user: host-call request/reply (vmlet's control block address) */
#define PML4_ADDR 0x20000ull    /* supervisor: paging structures up to PAGING_END */
#define PDPT_ADDR 0x21000ull
#define PD_ADDR 0x22000ull
#define PT_ADDR 0x23000ull      /* one page table per 2 MiB of guest memory */
#define LOW_PT_MAX_MIB 256      /* up to 128 page tables fit at PT_ADDR .. PAGING_END */
#define PAGING_END (PT_ADDR + LOW_PT_MAX_MIB / 2 * PAGE)
#define MAX_MEM_MIB 1024        /* one page directory; larger guests' page tables go at the top of memory */
#define USER_STACK_TOP 0x100000ull /* user: grows down towards PAGING_END */
#define CODE_ADDR 0x100000ull   /* user */
#define IMAGE_END (CODE_ADDR + PAGE) /* everything the host writes at creation is below here (or in high page tables) */
#define SCRATCH_ADDR 0x200000ull /* user: pages the restore guest dirties */
#define MAX_PAGES 256

/* PTE bits */
#define PTE_P 1ull
#define PTE_RW 2ull
#define PTE_US 4ull
#define PTE_A 0x20ull /* accessed, dirty: preset so the CPU never writes the page tables, */
#define PTE_D 0x40ull /* which keeps them out of the dirty log (as vmlet does) */

/* GDT selectors: Linux's layout (kernel CS 0x10, user DS 0x2b, user CS64 0x33). */
#define SEL_KCS 0x10
#define SEL_UDS 0x2b
#define SEL_UCS 0x33
#define SEL_TSS 0x38
#define GDT_ENTRIES 9 /* null, unused, kCS, kDS, uCS32, uDS, uCS64, TSS (2 slots) */

/* Ports: 0x10 = call returned, 0x11 = host call, 0x20+v = fault stub for vector v. */
#define PORT_READY 0x10
#define PORT_HOST_CALL 0x11
#define PORT_FAULT_BASE 0x20
#define N_VECTORS 32

/* I/O permission bitmap covering ports 0..255, then the 0xff terminator. */
#define IOMAP_OFFSET 104
#define IOMAP_BYTES 32
#define TSS_LIMIT (IOMAP_OFFSET + IOMAP_BYTES + 1 - 1)

/* Guest entry points: hand-assembled loops on the code page. */
#define ENTRY_ROUNDTRIP (CODE_ADDR + 0x00)
#define ENTRY_HOST_CALL (CODE_ADDR + 0x10)
#define ENTRY_SPIN (CODE_ADDR + 0x30)
#define ENTRY_DIRTY (CODE_ADDR + 0x40) /* rdi = first page, ecx = pages (>= 1) */

static const uint8_t code_roundtrip[] = {
    0xe6, PORT_READY, /* 1: out %al,$0x10 */
    0xeb, 0xfc,       /*    jmp 1b        */
};
static const uint8_t code_host_call[] = {
    0x48, 0xff, 0x04, 0x25, 0x00, 0x00, 0x01, 0x00, /* 1: incq 0x10000 (request) */
    0xe6, PORT_HOST_CALL,                           /*    out %al,$0x11          */
    0x48, 0x8b, 0x04, 0x25, 0x08, 0x00, 0x01, 0x00, /*    mov 0x10008,%rax (reply) */
    0xe6, PORT_READY,                               /*    out %al,$0x10          */
    0xeb, 0xea,                                     /*    jmp 1b                 */
};
static const uint8_t code_spin[] = {0xeb, 0xfe}; /* jmp . */
static const uint8_t code_dirty[] = {
    0x48, 0xff, 0x07,                         /* 1: incq (%rdi)      */
    0x48, 0x81, 0xc7, 0x00, 0x10, 0x00, 0x00, /*    add $0x1000,%rdi */
    0xff, 0xc9,                               /*    dec %ecx         */
    0x75, 0xf2,                               /*    jnz 1b           */
    0xe6, PORT_READY,                         /* 2: out %al,$0x10    */
    0xeb, 0xfc,                               /*    jmp 2b           */
};

struct vm {
    int vm_fd, vcpu_fd;
    uint8_t *mem;
    size_t mem_size;
    struct kvm_run *run;
};

struct stats { double median, p90; int n; };

static int kvm_fd = -1;
static size_t run_size;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kvm_ref: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void put64(uint8_t *mem, uint64_t addr, uint64_t v) { memcpy(mem + addr, &v, 8); }
static uint64_t get64(const uint8_t *mem, uint64_t addr) { uint64_t v; memcpy(&v, mem + addr, 8); return v; }

/* ---- Guest image ---- */

/* Where the page tables (the last level) live: at PT_ADDR for guests up to
 * LOW_PT_MAX_MIB, otherwise in the top pages of guest memory. */
static uint64_t n_page_tables(size_t mem_size) { return (mem_size / PAGE + 511) / 512; }
static uint64_t pt_base(size_t mem_size)
{
    return mem_size <= (size_t)LOW_PT_MAX_MIB << 20 ? PT_ADDR : mem_size - n_page_tables(mem_size) * PAGE;
}

/* Identity map with 4 KiB pages. Only the PTEs decide user vs supervisor, so the
 * upper levels carry U/S=1. Page 0 stays unmapped to catch null pointers.
 * Accessed/dirty bits are preset at every level. */
static void write_page_tables(uint8_t *mem, size_t mem_size)
{
    uint64_t pages = mem_size / PAGE, n_pt = n_page_tables(mem_size), pt = pt_base(mem_size);
    put64(mem, PML4_ADDR, PDPT_ADDR | PTE_P | PTE_RW | PTE_US | PTE_A);
    put64(mem, PDPT_ADDR, PD_ADDR | PTE_P | PTE_RW | PTE_US | PTE_A);
    for (uint64_t i = 0; i < n_pt; i++)
        put64(mem, PD_ADDR + i * 8, (pt + i * PAGE) | PTE_P | PTE_RW | PTE_US | PTE_A);
    for (uint64_t p = 1; p < pages; p++) {
        uint64_t a = p * PAGE;
        int supervisor = a < SYS_END || (a >= PML4_ADDR && a < PAGING_END) || (a >= pt && a < pt + n_pt * PAGE);
        put64(mem, pt + p * 8, a | PTE_P | PTE_RW | PTE_A | PTE_D | (supervisor ? 0 : PTE_US));
    }
}

static void write_gdt(uint8_t *mem)
{
    static const uint64_t seg[] = {
        0, 0,                  /* null; slot 1 unused (keeps Linux's selector values) */
        0x00af9b000000ffffull, /* 0x10 kernel CS64 (IDT gates) */
        0x00cf93000000ffffull, /* 0x18 kernel DS */
        0x00cffb000000ffffull, /* 0x23 user CS32 */
        0x00cff3000000ffffull, /* 0x2b user DS/SS */
        0x00affb000000ffffull, /* 0x33 user CS64: the guest code */
    };
    for (unsigned i = 0; i < sizeof seg / sizeof seg[0]; i++)
        put64(mem, GDT_ADDR + i * 8, seg[i]);
    /* 0x38: 16-byte 64-bit TSS descriptor, type 9 (available), present. */
    uint64_t b = TSS_ADDR, lim = TSS_LIMIT;
    uint64_t lo = (lim & 0xffff) | (b & 0xffffff) << 16 | 0x89ull << 40 |
                  ((lim >> 16) & 0xf) << 48 | ((b >> 24) & 0xff) << 56;
    put64(mem, GDT_ADDR + 7 * 8, lo);
    put64(mem, GDT_ADDR + 8 * 8, b >> 32);
}

/* TSS: stacks for entering ring 0, and the I/O permission bitmap. The bitmap
 * is what lets CPL-3 code execute `out` at all: with IOPL 0 the CPU checks the
 * port's bit in the TSS, and a missing bitmap means #GP. Zero bits = allowed. */
static void write_tss(uint8_t *mem)
{
    uint8_t *tss = mem + TSS_ADDR;
    put64(mem, TSS_ADDR + 4, RSP0_TOP);   /* RSP0 */
    put64(mem, TSS_ADDR + 36, IST1_TOP);  /* IST1 (#DF) */
    uint16_t iomap = IOMAP_OFFSET;
    memcpy(tss + 102, &iomap, 2);
    memset(tss + IOMAP_OFFSET, 0xff, IOMAP_BYTES + 1); /* deny all + terminator */
    tss[IOMAP_OFFSET + PORT_READY / 8] &= ~(1u << (PORT_READY % 8));
    tss[IOMAP_OFFSET + PORT_HOST_CALL / 8] &= ~(1u << (PORT_HOST_CALL % 8));
}

/* One ring-0 stub per exception vector: `out` to its own port so the host can
 * tell vectors apart without reading anything. Stubs run emulated under PVM,
 * so they are as short as possible. (CPL 0 <= IOPL 0: no bitmap check.) */
static void write_idt_and_stubs(uint8_t *mem)
{
    for (unsigned v = 0; v < N_VECTORS; v++) {
        uint64_t stub = STUBS_ADDR + v * 8;
        const uint8_t s[] = {0xe6, (uint8_t)(PORT_FAULT_BASE + v), 0xeb, 0xfc};
        memcpy(mem + stub, s, sizeof s);
        uint64_t lo = (stub & 0xffff) | (uint64_t)SEL_KCS << 16 |
                      (uint64_t)(v == 8 ? 1 : 0) << 32 | /* IST1 for #DF */
                      0x8eull << 40 |                   /* present, DPL 0, interrupt gate */
                      ((stub >> 16) & 0xffff) << 48;
        put64(mem, IDT_ADDR + v * 16, lo);
        put64(mem, IDT_ADDR + v * 16 + 8, stub >> 32);
    }
}

static void write_guest_image(uint8_t *mem, size_t mem_size)
{
    write_page_tables(mem, mem_size);
    write_gdt(mem);
    write_tss(mem);
    write_idt_and_stubs(mem);
    memcpy(mem + ENTRY_ROUNDTRIP, code_roundtrip, sizeof code_roundtrip);
    memcpy(mem + ENTRY_HOST_CALL, code_host_call, sizeof code_host_call);
    memcpy(mem + ENTRY_SPIN, code_spin, sizeof code_spin);
    memcpy(mem + ENTRY_DIRTY, code_dirty, sizeof code_dirty);
}

/* ---- vCPU state ---- */

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, uint8_t dpl, uint8_t l, uint8_t db)
{
    *s = (struct kvm_segment){.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
                              .present = 1, .dpl = dpl, .db = db, .s = 1, .l = l, .g = 1};
}

static void set_regs(struct vm *vm, uint64_t rip)
{
    struct kvm_regs regs = {.rip = rip, .rsp = USER_STACK_TOP, .rflags = 0x202};
    if (ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS: %s", strerror(errno));
}

/* Start directly in 64-bit mode at CPL 3. KVM_GET_SREGS first keeps fields we
 * do not care about (APIC base etc.) at KVM's defaults on every KVM flavour. */
static void set_sregs(struct vm *vm)
{
    struct kvm_sregs s;
    if (ioctl(vm->vcpu_fd, KVM_GET_SREGS, &s) < 0) die("KVM_GET_SREGS: %s", strerror(errno));
    seg(&s.cs, SEL_UCS, 0xb, 3, 1, 0);
    seg(&s.ss, SEL_UDS, 0x3, 3, 0, 1);
    s.ds = s.es = s.fs = s.gs = s.ss;
    s.tr = (struct kvm_segment){.base = TSS_ADDR, .limit = TSS_LIMIT, .selector = SEL_TSS,
                                .type = 11, .present = 1}; /* busy 64-bit TSS */
    s.ldt = (struct kvm_segment){.unusable = 1};
    s.gdt.base = GDT_ADDR, s.gdt.limit = GDT_ENTRIES * 8 - 1;
    s.idt.base = IDT_ADDR, s.idt.limit = N_VECTORS * 16 - 1;
    s.cr0 = 0x80050033; /* PG AM WP NE ET MP PE */
    s.cr3 = PML4_ADDR;
    s.cr4 = 0x620;      /* OSXMMEXCPT OSFXSR PAE */
    s.efer = 0xd01;     /* NXE LMA LME SCE */
    if (ioctl(vm->vcpu_fd, KVM_SET_SREGS, &s) < 0) die("KVM_SET_SREGS: %s", strerror(errno));
}

/* ---- VM lifecycle ---- */

static void vm_create(struct vm *vm, size_t mem_size, uint64_t rip)
{
    vm->mem_size = mem_size;
    vm->vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0) die("KVM_CREATE_VM: %s", strerror(errno));
    vm->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (vm->mem == MAP_FAILED) die("mmap guest memory: %s", strerror(errno));
    madvise(vm->mem, mem_size, MADV_HUGEPAGE); /* fewer host faults; THP is in madvise mode */
    struct kvm_userspace_memory_region r = {.slot = 0, .guest_phys_addr = 0, .memory_size = mem_size,
                                            .userspace_addr = (uintptr_t)vm->mem};
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) die("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
    vm->vcpu_fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, 0);
    if (vm->vcpu_fd < 0) die("KVM_CREATE_VCPU: %s", strerror(errno));
    vm->run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu_fd, 0);
    if (vm->run == MAP_FAILED) die("mmap kvm_run: %s", strerror(errno));
    write_guest_image(vm->mem, mem_size);
    set_sregs(vm);
    set_regs(vm, rip);
}

static void vm_destroy(struct vm *vm)
{
    munmap(vm->run, run_size);
    close(vm->vcpu_fd);
    close(vm->vm_fd);
    munmap(vm->mem, vm->mem_size);
}

/* Report a fault that reached a ring-0 stub: the CPU pushed the frame on RSP0. */
static void die_guest_fault(struct vm *vm, unsigned vector)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    ioctl(vm->vcpu_fd, KVM_GET_REGS, &regs);
    ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sregs);
    int has_error = (1u << vector) & 0x60227d00u; /* #DF #TS #NP #SS #GP #PF #AC #CP #VC #SX */
    uint64_t frame = regs.rsp < vm->mem_size - 16 ? regs.rsp : 0;
    uint64_t error = has_error ? get64(vm->mem, frame) : 0;
    uint64_t rip = get64(vm->mem, frame + (has_error ? 8 : 0));
    die("guest fault: vector %u, error 0x%llx, rip 0x%llx, cr2 0x%llx", vector,
        (unsigned long long)error, (unsigned long long)rip, (unsigned long long)sregs.cr2);
}

/* KVM_RUN until the guest's next `out`; dies unless it is on the expected port. */
static void run_to_port(struct vm *vm, unsigned port)
{
    if (ioctl(vm->vcpu_fd, KVM_RUN, 0) < 0) die("KVM_RUN: %s", strerror(errno));
    struct kvm_run *run = vm->run;
    if (run->exit_reason == KVM_EXIT_IO && run->io.direction == KVM_EXIT_IO_OUT) {
        if (run->io.port == port) return;
        if (run->io.port >= PORT_FAULT_BASE && run->io.port < PORT_FAULT_BASE + N_VECTORS)
            die_guest_fault(vm, run->io.port - PORT_FAULT_BASE);
        die("guest wrote port 0x%x, expected 0x%x", run->io.port, port);
    }
    if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
        die("KVM_EXIT_INTERNAL_ERROR, suberror %u", run->internal.suberror);
    die("unexpected exit reason %u", run->exit_reason);
}

/* ---- Statistics ---- */

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

/* ---- Measurements ---- */

/* create_us: everything from KVM_CREATE_VM to the guest's first exit.
 * destroy_us: tearing the same VM down. Measured in the same loop. */
static void measure_create_destroy(size_t mem_size, int iters, struct stats *create, struct stats *destroy)
{
    double *c = alloc_samples(iters), *d = alloc_samples(iters);
    for (int i = 0; i < iters; i++) {
        struct vm vm;
        uint64_t t0 = now_ns();
        vm_create(&vm, mem_size, ENTRY_ROUNDTRIP);
        run_to_port(&vm, PORT_READY);
        uint64_t t1 = now_ns();
        vm_destroy(&vm);
        uint64_t t2 = now_ns();
        c[i] = (t1 - t0) / 1e3;
        d[i] = (t2 - t1) / 1e3;
    }
    *create = summarize(c, iters);
    *destroy = summarize(d, iters);
    free(c);
    free(d);
}

/* roundtrip_us: one KVM_RUN per call. After an `out` exit PVM has already
 * advanced RIP past it and hardware KVM advances it on the next KVM_RUN, so
 * the guest's `jmp` brings it back to the `out` with no register writes.
 * With setregs, KVM_SET_REGS puts RIP at the entry before every call, as a
 * host that starts each call afresh would. */
static struct stats measure_roundtrip(size_t mem_size, int iters, int setregs)
{
    struct vm vm;
    double *s = alloc_samples(iters);
    vm_create(&vm, mem_size, ENTRY_ROUNDTRIP);
    run_to_port(&vm, PORT_READY);
    int warmup = iters / 10 < 1000 ? iters / 10 : 1000;
    for (int i = -warmup; i < iters; i++) {
        uint64_t t0 = now_ns();
        if (setregs) set_regs(&vm, ENTRY_ROUNDTRIP);
        run_to_port(&vm, PORT_READY);
        uint64_t t1 = now_ns();
        if (i >= 0) s[i] = (t1 - t0) / 1e3;
    }
    vm_destroy(&vm);
    struct stats st = summarize(s, iters);
    free(s);
    return st;
}

/* host_call_us: exit-to-exit time of one guest->host call. The guest bumps a
 * request counter in the mailbox and exits on PORT_HOST_CALL; the host reads
 * it, writes a reply, resumes; the guest loads the reply and exits on
 * PORT_READY. The second KVM_RUN per iteration (back to the next host call)
 * is not timed. */
static struct stats measure_host_call(size_t mem_size, int iters)
{
    struct vm vm;
    double *s = alloc_samples(iters);
    vm_create(&vm, mem_size, ENTRY_HOST_CALL);
    int warmup = iters / 10 < 1000 ? iters / 10 : 1000;
    uint64_t reply = 0;
    for (int i = -warmup; i < iters; i++) {
        run_to_port(&vm, PORT_HOST_CALL);
        uint64_t t0 = now_ns();
        uint64_t req = get64(vm.mem, MAILBOX_ADDR);
        if (req != (uint64_t)(i + warmup + 1)) die("host call: request %llu, expected %d", (unsigned long long)req, i + warmup + 1);
        reply = req * 3 + 1;
        put64(vm.mem, MAILBOX_ADDR + 8, reply);
        run_to_port(&vm, PORT_READY);
        uint64_t t1 = now_ns();
        if (i >= 0) s[i] = (t1 - t0) / 1e3;
    }
    struct kvm_regs regs; /* the guest must have seen the last reply */
    if (ioctl(vm.vcpu_fd, KVM_GET_REGS, &regs) < 0) die("KVM_GET_REGS: %s", strerror(errno));
    if (regs.rax != reply) die("host call: guest rax 0x%llx, reply 0x%llx", (unsigned long long)regs.rax, (unsigned long long)reply);
    vm_destroy(&vm);
    struct stats st = summarize(s, iters);
    free(s);
    return st;
}

/* cancel_us: a guest spinning in `jmp .` on its own thread is stopped by a
 * signal. Setting immediate_exit alone does not kick a running vCPU; the
 * signal does, and the handler's immediate_exit = 1 covers a signal that lands
 * just before KVM_RUN. No SA_RESTART, so KVM_RUN returns EINTR. */
enum { C_IDLE, C_GO, C_RUNNING, C_DONE, C_QUIT };
struct cancel_ctx { struct vm *vm; _Atomic int state; uint64_t t_end; };
static struct kvm_run *volatile cancel_run;

static void cancel_handler(int sig) { (void)sig; if (cancel_run) cancel_run->immediate_exit = 1; }

static void futex_wait(_Atomic int *addr, int val) { syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0); }
static void futex_wake(_Atomic int *addr) { syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }

static void *cancel_vcpu_thread(void *arg)
{
    struct cancel_ctx *c = arg;
    for (;;) {
        int st;
        while ((st = atomic_load(&c->state)) != C_GO && st != C_QUIT) futex_wait(&c->state, st);
        if (st == C_QUIT) return NULL;
        c->vm->run->immediate_exit = 0;
        atomic_store(&c->state, C_RUNNING);
        int r = ioctl(c->vm->vcpu_fd, KVM_RUN, 0);
        c->t_end = now_ns();
        if (r == 0) die("cancel: guest exited (reason %u) instead of spinning", c->vm->run->exit_reason);
        if (errno != EINTR) die("cancel: KVM_RUN: %s", strerror(errno));
        atomic_store(&c->state, C_DONE);
        futex_wake(&c->state);
    }
}

static struct stats measure_cancel(size_t mem_size, int iters)
{
    struct vm vm;
    vm_create(&vm, mem_size, ENTRY_SPIN);
    cancel_run = vm.run;
    struct sigaction sa = {.sa_handler = cancel_handler}; /* sa_flags 0: no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGRTMIN, &sa, NULL) < 0) die("sigaction: %s", strerror(errno));
    struct cancel_ctx c = {.vm = &vm, .state = C_IDLE};
    pthread_t tid;
    if (pthread_create(&tid, NULL, cancel_vcpu_thread, &c)) die("pthread_create failed");
    double *s = alloc_samples(iters);
    int warmup = 5;
    for (int i = -warmup; i < iters; i++) {
        atomic_store(&c.state, C_GO);
        futex_wake(&c.state);
        /* Let the vCPU get into the guest before kicking it. */
        do nanosleep(&(struct timespec){0, 200000}, NULL); while (atomic_load(&c.state) != C_RUNNING);
        uint64_t t0 = now_ns();
        pthread_kill(tid, SIGRTMIN);
        int st;
        while ((st = atomic_load(&c.state)) != C_DONE) futex_wait(&c.state, st);
        if (i >= 0) s[i] = (c.t_end - t0) / 1e3;
    }
    atomic_store(&c.state, C_QUIT);
    futex_wake(&c.state);
    pthread_join(tid, NULL);
    cancel_run = NULL;
    vm_destroy(&vm);
    struct stats st = summarize(s, iters);
    free(s);
    return st;
}

/* ---- Restore ---- */

/* Ranges of guest memory that write_guest_image fills: the snapshot needs only these
 * (the rest is zero), so a 1 GiB snapshot does not copy or touch 1 GiB. */
static void image_ranges(size_t mem_size, uint64_t r[2][2])
{
    r[0][0] = 0, r[0][1] = IMAGE_END;
    r[1][0] = pt_base(mem_size), r[1][1] = pt_base(mem_size) + n_page_tables(mem_size) * PAGE;
    if (r[1][0] < IMAGE_END) r[1][0] = r[1][1] = 0; /* low page tables: inside range 0 */
}

static void set_regs_dirty(struct vm *vm, int pages)
{
    struct kvm_regs regs = {.rip = ENTRY_DIRTY, .rsp = USER_STACK_TOP, .rflags = 0x202,
                            .rdi = SCRATCH_ADDR, .rcx = (uint64_t)pages};
    if (ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS: %s", strerror(errno));
}

static void set_dirty_logging(struct vm *vm, int on)
{
    struct kvm_userspace_memory_region r = {.slot = 0, .flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0, .guest_phys_addr = 0,
                                            .memory_size = vm->mem_size, .userspace_addr = (uintptr_t)vm->mem};
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) die("KVM_SET_USER_MEMORY_REGION (dirty log): %s", strerror(errno));
}

static void get_dirty_log(struct vm *vm, uint64_t *bitmap)
{
    struct kvm_dirty_log log = {.slot = 0, .dirty_bitmap = bitmap};
    if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) die("KVM_GET_DIRTY_LOG: %s", strerror(errno));
}

enum restore_method { RESTORE_COPY, RESTORE_MADVISE };

/* One restore: fetch (and re-arm) the dirty log, put every dirty page back, reset
 * the registers to the snapshot's. COPY: memcpy each dirty page from the snapshot
 * copy. MADVISE: MADV_DONTNEED each run of dirty pages of the private file mapping,
 * so they read the snapshot file again and fault back in on the next touch.
 * Returns the number of dirty pages. */
static int restore(struct vm *vm, enum restore_method method, uint64_t *bitmap, size_t words, const uint8_t *snap)
{
    get_dirty_log(vm, bitmap);
    int dirty = 0;
    uint64_t run_start = 0, run_len = 0; /* MADVISE: the current run of consecutive dirty pages */
    for (size_t w = 0; w < words; w++) {
        uint64_t bits = bitmap[w];
        while (bits) {
            uint64_t page = w * 64 + (uint64_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            dirty++;
            if (method == RESTORE_COPY) {
                memcpy(vm->mem + page * PAGE, snap + page * PAGE, PAGE);
            } else if (run_len && page == run_start + run_len) {
                run_len++;
            } else {
                if (run_len && madvise(vm->mem + run_start * PAGE, run_len * PAGE, MADV_DONTNEED) < 0) die("madvise: %s", strerror(errno));
                run_start = page, run_len = 1;
            }
        }
    }
    if (run_len && madvise(vm->mem + run_start * PAGE, run_len * PAGE, MADV_DONTNEED) < 0) die("madvise: %s", strerror(errno));
    set_regs(vm, ENTRY_ROUNDTRIP);
    return dirty;
}

/* restore[_madvise]_us: the restore after the guest wrote `pages` scratch pages.
 * restore[_madvise]_next_us: that restore plus the next round trip (KVM_RUN of the
 * plain `out` loop at ENTRY_ROUNDTRIP, which touches no data).
 * restore[_madvise]_cycle_us: the call that writes the pages (KVM_SET_REGS + KVM_RUN
 * of the dirtying loop) plus the restore: what each request costs when every request
 * writes the same pages again. It shows where each method pays: COPY on the writes
 * (dirty logging write-protects the pages again), MADVISE on the faults that bring
 * the dropped pages back.
 * The snapshot is taken at the guest's first exit. */
static void measure_restore(size_t mem_size, int pages, int iters, enum restore_method method, struct stats out[3])
{
    if (SCRATCH_ADDR + (uint64_t)pages * PAGE > pt_base(mem_size) && pt_base(mem_size) > IMAGE_END)
        die("--pages %d does not fit below the page tables", pages);
    if (SCRATCH_ADDR + (uint64_t)pages * PAGE > mem_size) die("--pages %d needs more than --mem-mib %zu", pages, mem_size >> 20);
    struct vm vm;
    vm_create(&vm, mem_size, ENTRY_ROUNDTRIP);
    run_to_port(&vm, PORT_READY);

    uint64_t ranges[2][2];
    image_ranges(mem_size, ranges);
    uint8_t *snap = NULL;
    int memfd = -1;
    if (method == RESTORE_COPY) {
        snap = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (snap == MAP_FAILED) die("mmap snapshot: %s", strerror(errno));
        for (int i = 0; i < 2; i++) memcpy(snap + ranges[i][0], vm.mem + ranges[i][0], ranges[i][1] - ranges[i][0]);
    } else {
        memfd = memfd_create("kvm_ref-snapshot", MFD_CLOEXEC);
        if (memfd < 0 || ftruncate(memfd, (off_t)mem_size) < 0) die("memfd: %s", strerror(errno));
        for (int i = 0; i < 2; i++) {
            size_t len = ranges[i][1] - ranges[i][0];
            if (len && pwrite(memfd, vm.mem + ranges[i][0], len, (off_t)ranges[i][0]) != (ssize_t)len) die("pwrite snapshot: %s", strerror(errno));
        }
        /* Guest memory becomes a private mapping of the snapshot; the memslot follows the new mapping. */
        if (mmap(vm.mem, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, memfd, 0) == MAP_FAILED)
            die("mmap snapshot file over guest memory: %s", strerror(errno));
    }
    set_dirty_logging(&vm, 1);
    size_t words = (mem_size / PAGE + 63) / 64;
    uint64_t *bitmap = calloc(words, sizeof *bitmap);
    if (!bitmap) die("out of memory");
    get_dirty_log(&vm, bitmap); /* start clean */

    double *r = alloc_samples(iters), *n = alloc_samples(iters), *c = alloc_samples(iters);
    int warmup = iters / 10 < 20 ? 20 : iters / 10;
    for (int i = -warmup; i < iters; i++) {
        uint64_t t0 = now_ns();
        set_regs_dirty(&vm, pages);
        run_to_port(&vm, PORT_READY);
        uint64_t t1 = now_ns();
        int dirty = restore(&vm, method, bitmap, words, snap);
        uint64_t t2 = now_ns();
        run_to_port(&vm, PORT_READY);
        uint64_t t3 = now_ns();
        if (dirty != pages) die("restore: %d dirty pages, expected %d", dirty, pages);
        if (i >= 0) r[i] = (t2 - t1) / 1e3, n[i] = (t3 - t1) / 1e3, c[i] = (t2 - t0) / 1e3;
    }
    /* The pages read as the snapshot again (checked once at the end: a read here would map
     * dropped pages back in and change what the next iteration measures). */
    for (int p = 0; p < pages; p++)
        if (vm.mem[SCRATCH_ADDR + (uint64_t)p * PAGE] != 0) die("restore: scratch page %d not restored", p);
    out[0] = summarize(r, iters);
    out[1] = summarize(n, iters);
    out[2] = summarize(c, iters);
    free(r), free(n), free(c), free(bitmap);
    if (snap) munmap(snap, mem_size);
    if (memfd >= 0) close(memfd);
    vm_destroy(&vm);
}

/* ---- Main ---- */

static const char *const names[] = {
    "create_us", "destroy_us", "roundtrip_us", "roundtrip_setregs_us", "host_call_us", "cancel_us",
    "restore_us", "restore_next_us", "restore_cycle_us",
    "restore_madvise_us", "restore_madvise_next_us", "restore_madvise_cycle_us",
};
enum {
    M_CREATE, M_DESTROY, M_ROUNDTRIP, M_SETREGS, M_HOST_CALL, M_CANCEL,
    M_RESTORE, M_RESTORE_NEXT, M_RESTORE_CYCLE,
    M_MADVISE, M_MADVISE_NEXT, M_MADVISE_CYCLE,
    M_COUNT
};

static void usage(void)
{
    fprintf(stderr, "usage: kvm_ref [--mem-mib N] [--iters N] [--pages K] [--only NAME[,NAME...]]\n"
                    "  defaults: --mem-mib 16; --pages 16; --iters 50 (create/destroy), 20000 (calls), 2000 (cancel), 500 (restore)\n"
                    "  NAME: create_us destroy_us roundtrip_us roundtrip_setregs_us host_call_us cancel_us\n"
                    "        restore_us restore_next_us restore_cycle_us (copy dirty pages back; K dirty pages per restore)\n"
                    "        restore_madvise_us restore_madvise_next_us restore_madvise_cycle_us (drop dirty pages instead)\n");
    exit(2);
}

static long parse_int(const char *s, const char *flag)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v <= 0) die("%s: expected a positive integer, got '%s'", flag, s);
    return v;
}

int main(int argc, char **argv)
{
    long mem_mib = 16, iters = 0, pages = 16;
    int want[M_COUNT] = {0}, any_only = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) usage();
        if (!strcmp(argv[i], "--mem-mib")) mem_mib = parse_int(argv[++i], "--mem-mib");
        else if (!strcmp(argv[i], "--iters")) iters = parse_int(argv[++i], "--iters");
        else if (!strcmp(argv[i], "--pages")) pages = parse_int(argv[++i], "--pages");
        else if (!strcmp(argv[i], "--only")) {
            char *list = strdup(argv[++i]), *save = NULL;
            for (char *n = strtok_r(list, ",", &save); n; n = strtok_r(NULL, ",", &save)) {
                int found = -1;
                for (int m = 0; m < M_COUNT; m++) if (!strcmp(n, names[m])) found = m;
                if (found < 0) die("--only: unknown measurement '%s'", n);
                want[found] = any_only = 1;
            }
            free(list);
        } else usage();
    }
    if (mem_mib < 2 || mem_mib > MAX_MEM_MIB) die("--mem-mib must be 2..%d", MAX_MEM_MIB);
    if (pages > MAX_PAGES) die("--pages must be 1..%d", MAX_PAGES);
    /* Without --only: everything but the restore measurements (as before they existed). */
    if (!any_only) for (int m = 0; m < M_RESTORE; m++) want[m] = 1;
    size_t mem_size = (size_t)mem_mib << 20;

    kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm_fd < 0) die("open /dev/kvm: %s", strerror(errno));
    if (ioctl(kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) die("unexpected KVM API version");
    int sz = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (sz < (int)sizeof(struct kvm_run)) die("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
    run_size = (size_t)sz;

    struct stat st;
    const char *flavour = stat("/sys/module/kvm_pvm", &st) == 0 ? "pvm" : "hardware";
    struct stats r[M_COUNT];

    if (want[M_CREATE] || want[M_DESTROY]) measure_create_destroy(mem_size, iters ? iters : 50, &r[M_CREATE], &r[M_DESTROY]);
    if (want[M_ROUNDTRIP]) r[M_ROUNDTRIP] = measure_roundtrip(mem_size, iters ? iters : 20000, 0);
    if (want[M_SETREGS]) r[M_SETREGS] = measure_roundtrip(mem_size, iters ? iters : 20000, 1);
    if (want[M_HOST_CALL]) r[M_HOST_CALL] = measure_host_call(mem_size, iters ? iters : 20000);
    if (want[M_CANCEL]) r[M_CANCEL] = measure_cancel(mem_size, iters ? iters : 2000);
    if (want[M_RESTORE] || want[M_RESTORE_NEXT] || want[M_RESTORE_CYCLE])
        measure_restore(mem_size, (int)pages, iters ? iters : 500, RESTORE_COPY, &r[M_RESTORE]);
    if (want[M_MADVISE] || want[M_MADVISE_NEXT] || want[M_MADVISE_CYCLE])
        measure_restore(mem_size, (int)pages, iters ? iters : 500, RESTORE_MADVISE, &r[M_MADVISE]);

    printf("{\"flavour\":\"%s\",\"mem_mib\":%ld", flavour, mem_mib);
    if (want[M_RESTORE] || want[M_RESTORE_NEXT] || want[M_RESTORE_CYCLE] || want[M_MADVISE] || want[M_MADVISE_NEXT] || want[M_MADVISE_CYCLE])
        printf(",\"pages\":%ld", pages);
    for (int m = 0; m < M_COUNT; m++)
        if (want[m]) printf(",\"%s\":{\"median\":%.2f,\"p90\":%.2f,\"n\":%d}", names[m], r[m].median, r[m].p90, r[m].n);
    printf("}\n");
    return 0;
}

/*
 * The guest SDK's libc against musl's, function by function, on the host (guest compute runs
 * at the host's speed, so this stands for both). The SDK's sources are compiled with their
 * names prefixed (memcpy -> g_memcpy) and linked beside musl's libc.a by musl-gcc; every call
 * goes through a volatile function pointer so neither side is inlined. Prints one JSON object:
 * ns per call for each operation, SDK and musl. Built and run by bench/libc-compare.ts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void *g_memcpy(void *restrict d, const void *restrict s, size_t n);
void *g_memset(void *d, int c, size_t n);
int g_memcmp(const void *a, const void *b, size_t n);
size_t g_strlen(const char *s);
char *g_strchr(const char *s, int c);
int g_snprintf(char *buf, size_t size, const char *fmt, ...);
double g_strtod(const char *s, char **end);
long g_strtol(const char *s, char **end, int base);
void g_qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));
void *g_malloc(size_t n);
void g_free(void *p);
void vmlet_heap_init(void *base, size_t size);

/* The SDK's panic path, which its sources call on a broken invariant: never reached here. */
_Noreturn void vmlet_panic_at(const char *file, int line, const char *fmt, ...) {
  fprintf(stderr, "SDK panic at %s:%d (%s)\n", file, line, fmt);
  abort();
}

/* The SDK keeps errno in its runtime (not compiled here). */
int g_errno;

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static volatile uint64_t sink;
static uint8_t src[65536], dst[65536], same[65536];
static char text[1025];
static int ints[10000], work[10000];

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* One operation, run through `impl` (an SDK or a musl function behind a volatile pointer). */
typedef void (*op_fn)(const void *impl, uint32_t i);

static void op_memcpy64(const void *impl, uint32_t i) { ((void *(*)(void *, const void *, size_t))impl)(dst + (i & 63), src, 64); }
static void op_memcpy4k(const void *impl, uint32_t i) { (void)i; ((void *(*)(void *, const void *, size_t))impl)(dst, src, 4096); }
static void op_memcpy64k(const void *impl, uint32_t i) { (void)i; ((void *(*)(void *, const void *, size_t))impl)(dst, src, 65536); }
static void op_memset4k(const void *impl, uint32_t i) { ((void *(*)(void *, int, size_t))impl)(dst, (int)i, 4096); }
static void op_memcmp4k(const void *impl, uint32_t i) { (void)i; sink += (uint64_t)((int (*)(const void *, const void *, size_t))impl)(src, same, 4096); }
static void op_strlen1k(const void *impl, uint32_t i) { (void)i; sink += ((size_t (*)(const char *))impl)(text); }
static void op_strchr1k(const void *impl, uint32_t i) { (void)i; sink += (uintptr_t)((char *(*)(const char *, int))impl)(text, '!'); }
static void op_snprintf_int(const void *impl, uint32_t i) {
  char buf[64];
  sink += (uint64_t)((int (*)(char *, size_t, const char *, ...))impl)(buf, sizeof buf, "%d %s %x", (int)i * 7919, "row", i);
}
static void op_snprintf_float(const void *impl, uint32_t i) {
  char buf[64];
  sink += (uint64_t)((int (*)(char *, size_t, const char *, ...))impl)(buf, sizeof buf, "%.6f %g", i * 0.37, i / 3.0);
}
static void op_strtod(const void *impl, uint32_t i) {
  static const char *inputs[] = { "3.14159265358979", "-2.5e-10", "123456789.125", "6.02214076e23" };
  sink += (uint64_t)((double (*)(const char *, char **))impl)(inputs[i & 3], NULL);
}
static void op_strtol(const void *impl, uint32_t i) {
  static const char *inputs[] = { "123456789", "-42", "0x7fffffff", "  9001" };
  sink += (uint64_t)((long (*)(const char *, char **, int))impl)(inputs[i & 3], NULL, 0);
}
static void op_qsort10k(const void *impl, uint32_t i) {
  (void)i;
  memcpy(work, ints, sizeof ints);
  ((void (*)(void *, size_t, size_t, int (*)(const void *, const void *)))impl)(work, 10000, sizeof(int), cmp_int);
}
/* malloc/free of mixed sizes: both allocators keep 64 blocks live. */
static void *live[2][64];
static void op_malloc(const void *impl, uint32_t i) {
  void *(*const *fns)(size_t) = impl;
  int side = fns[2] != NULL;
  void **slot = &live[side][i & 63];
  ((void (*)(void *))(void *)fns[1])(*slot);
  *slot = fns[0](16 + (i * 37) % 700);
}

struct pair { const char *name; op_fn op; const void *sdk, *musl; uint32_t reps; };

static double time_op(op_fn op, const void *impl, uint32_t reps) {
  double best = 1e300;
  for (int round = 0; round < 7; round++) {
    double t0 = now_ns();
    for (uint32_t i = 0; i < reps; i++) op(impl, i);
    double per = (now_ns() - t0) / reps;
    if (per < best) best = per;
  }
  return best;
}

int main(void) {
  static uint8_t heap[64 << 20];
  vmlet_heap_init(heap, sizeof heap);
  for (size_t i = 0; i < sizeof src; i++) same[i] = src[i] = (uint8_t)(i * 131 + 7);
  memset(text, 'a', 1024);
  uint32_t seed = 12345;
  for (int i = 0; i < 10000; i++) ints[i] = (int)((seed = seed * 1103515245u + 12345u) >> 1);

  static void *(*const sdk_alloc[3])(size_t) = { g_malloc, (void *(*)(size_t))(void *)g_free, NULL };
  static void *(*const musl_alloc[3])(size_t) = { malloc, (void *(*)(size_t))(void *)free, (void *(*)(size_t))(void *)malloc };
  const struct pair pairs[] = {
    { "memcpy 64 B", op_memcpy64, (const void *)g_memcpy, (const void *)memcpy, 2000000 },
    { "memcpy 4 KiB", op_memcpy4k, (const void *)g_memcpy, (const void *)memcpy, 200000 },
    { "memcpy 64 KiB", op_memcpy64k, (const void *)g_memcpy, (const void *)memcpy, 10000 },
    { "memset 4 KiB", op_memset4k, (const void *)g_memset, (const void *)memset, 200000 },
    { "memcmp 4 KiB (equal)", op_memcmp4k, (const void *)g_memcmp, (const void *)memcmp, 100000 },
    { "strlen 1 KiB", op_strlen1k, (const void *)g_strlen, (const void *)strlen, 200000 },
    { "strchr 1 KiB (absent)", op_strchr1k, (const void *)g_strchr, (const void *)strchr, 200000 },
    { "snprintf %d %s %x", op_snprintf_int, (const void *)g_snprintf, (const void *)snprintf, 500000 },
    { "snprintf %.6f %g", op_snprintf_float, (const void *)g_snprintf, (const void *)snprintf, 200000 },
    { "strtod", op_strtod, (const void *)g_strtod, (const void *)strtod, 500000 },
    { "strtol", op_strtol, (const void *)g_strtol, (const void *)strtol, 2000000 },
    { "qsort 10,000 ints", op_qsort10k, (const void *)g_qsort, (const void *)qsort, 100 },
    { "malloc + free, 16–716 B", op_malloc, (const void *)sdk_alloc, (const void *)musl_alloc, 2000000 },
  };
  printf("[");
  for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
    const struct pair *p = &pairs[k];
    /* Alternate the order per operation, so neither side always runs on a warmer cache. */
    double sdk, musl;
    if (k & 1) { musl = time_op(p->op, p->musl, p->reps); sdk = time_op(p->op, p->sdk, p->reps); }
    else { sdk = time_op(p->op, p->sdk, p->reps); musl = time_op(p->op, p->musl, p->reps); }
    printf("%s{\"name\":\"%s\",\"sdkNs\":%.3f,\"muslNs\":%.3f}", k ? "," : "", p->name, sdk, musl);
  }
  printf("]\n");
  return 0;
}

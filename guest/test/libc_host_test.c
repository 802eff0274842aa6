/*
 * Host-side unit test for the guest libc (guest/src/string.c, alloc.c,
 * format.c). The Makefile compiles those files natively with their symbols
 * renamed (memcpy -> g_memcpy, ...), and this file checks them against the
 * host libc. Exit status is non-zero on any failure.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HARNESS_SEED 0x9e3779b97f4a7c15ull
#include "harness.h"

/* ---- the guest functions under test ---------------------------------------- */
void *g_memcpy(void *restrict d, const void *restrict s, size_t n);
void *g_memmove(void *d, const void *s, size_t n);
void *g_memset(void *d, int c, size_t n);
int g_memcmp(const void *a, const void *b, size_t n);
void *g_memchr(const void *s, int c, size_t n);
size_t g_strlen(const char *s);
size_t g_strnlen(const char *s, size_t max);
int g_strcmp(const char *a, const char *b);
int g_strncmp(const char *a, const char *b, size_t n);
char *g_strcpy(char *restrict d, const char *restrict s);
char *g_strncpy(char *restrict d, const char *restrict s, size_t n);
char *g_strcat(char *restrict d, const char *restrict s);
char *g_strchr(const char *s, int c);
char *g_strrchr(const char *s, int c);
char *g_strstr(const char *h, const char *n);
char *g_strdup(const char *s);
void vmlet_heap_init(void *base, size_t size);
void *g_malloc(size_t n);
void *g_calloc(size_t count, size_t size);
void *g_realloc(void *p, size_t n);
void g_free(void *p);
size_t vmlet_heap_used(void);
size_t vmlet_heap_capacity(void);
int g_snprintf(char *buf, size_t size, const char *fmt, ...);

/* ---- harness ----------------------------------------------------------------- */

static int sgn(int x) { return (x > 0) - (x < 0); }

/* vmlet_panic stub: records the message and jumps back to EXPECT_PANIC. */
static jmp_buf panic_jmp;
static volatile int panic_armed;
static char panic_msg[256];
_Noreturn void vmlet_panic_at(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(panic_msg, sizeof panic_msg, fmt, ap);
  va_end(ap);
  if (panic_armed) longjmp(panic_jmp, 1);
  printf("unexpected panic at %s:%d: %s\n", file, line, panic_msg);
  exit(2);
}
#define EXPECT_PANIC(stmt, what)                                      \
  do {                                                                \
    panic_armed = 1;                                                  \
    if (setjmp(panic_jmp) == 0) {                                     \
      stmt;                                                           \
      panic_armed = 0;                                                \
      CHECK(0, "%s did not panic", what);                             \
    } else {                                                          \
      panic_armed = 0;                                                \
      CHECK(1, "%s", what);                                         \
      printf("  %-28s -> panic: %s\n", what, panic_msg);              \
    }                                                                 \
  } while (0)

/* ---- formatting -------------------------------------------------------------- */
enum { A_NONE, A_I, A_L, A_LL, A_U, A_UL, A_ULL, A_D, A_S, A_P, A_WI, A_PI, A_WPD, A_WPS };
typedef struct {
  const char *fmt;
  int kind;
  long long i;
  unsigned long long u;
  double d;
  const char *s;
  int w, p;
} fcase;
#define I(f, v) {f, A_I, .i = (v)}
#define L(f, v) {f, A_L, .i = (v)}
#define LL(f, v) {f, A_LL, .i = (v)}
#define U(f, v) {f, A_U, .u = (v)}
#define UL(f, v) {f, A_UL, .u = (v)}
#define ULL(f, v) {f, A_ULL, .u = (v)}
#define D(f, v) {f, A_D, .d = (v)}
#define S(f, v) {f, A_S, .s = (v)}
#define P(f, v) {f, A_P, .u = (v)}

static const fcase cases[] = {
    {"plain text", A_NONE, .i = 0}, {"a%%b", A_NONE, .i = 0}, I("%d", 0), I("%d", 42), I("%d", -42), I("%d", INT_MAX),
    I("%d", INT_MIN), I("%i", 7), I("[%5d]", 42), I("[%-5d]", 42), I("[%05d]", -42), I("%+d", 5),
    I("% d", 5), I("%+d", -5), I("%.3d", 7), I("[%.0d]", 0), I("[%5.0d]", 0), I("[%08.3d]", 7),
    I("[%-08d]", 3), I("%+05d", 12), I("[% 05d]", 12), U("%x", 255), U("%X", 0xabcdef), U("%#x", 255),
    U("%#X", 255), U("%#x", 0), U("%#o", 8), U("%#o", 0), U("%o", 0777), U("[%#.0o]", 0), U("[%.0x]", 0),
    U("%#08x", 255), U("[%-#8x]", 255), U("%#.5o", 8), U("%u", UINT_MAX), I("%c%c", 'o'), I("%hhd", 300),
    I("%hhu", 511), I("%hd", 70000), I("%hu", -1), I("%hhx", -1), L("%ld", LONG_MIN), UL("%lu", ULONG_MAX),
    LL("%lld", LLONG_MIN), LL("%lld", LLONG_MAX), ULL("%llx", ULLONG_MAX), ULL("%llo", ULLONG_MAX),
    UL("%zu", SIZE_MAX), UL("%zx", 4096), L("%zd", -5), L("%jd", -9), L("%td", -3), UL("%jX", 0xdeadbeef),
    {"[%*d]", A_WI, .i = 42, .w = 6}, {"[%-*d]", A_WI, .i = 42, .w = 6}, {"[%*d]", A_WI, .i = 42, .w = -6},
    {"[%.*d]", A_PI, .i = 42, .p = 4}, {"[%.*d]", A_PI, .i = 42, .p = -1},
    {"[%*.*f]", A_WPD, .d = 3.14159, .w = 10, .p = 3}, {"[%.*f]", A_WPD, .d = 2.5, .w = 0, .p = -2},
    {"[%*.*s]", A_WPS, .s = "abcdef", .w = 5, .p = 3}, {"[%*s]", A_WPS, .s = "hi", .w = -8, .p = 0},
    S("%s", "hello"), S("[%10s]", "hello"), S("[%-10s]", "hello"), S("[%.2s]", "hello"), S("%s", NULL),
    S("[%.3s]", NULL), S("[%8s]", NULL), S("%s|%s", ""), I("%c", 'x'), I("[%3c]", 'y'), I("[%-3c]", 'z'),
    P("%p", 0x1234), P("%p", 0), P("[%20p]", 0xdeadbeefcafe), P("[%-20p]", 0xff), P("[%8p]", 0),
    D("%f", 0.0), D("%f", -0.0), D("%f", 1.0), D("%f", 3.14159265358979), D("%.0f", 0.5), D("%.0f", 1.5),
    D("%.0f", 2.5), D("%.0f", -3.5), D("%.1f", 0.25), D("%.1f", 0.35), D("%.2f", 1.005), D("%.3f", 1e-10),
    D("%f", 1e20), D("%f", 1e300), D("%.20f", 0.1), D("[%10.3f]", -3.14159), D("[%-10.2f]", 3.14159),
    D("[%010.2f]", -3.14159), D("%+.2f", 2.0), D("% .2f", 2.0), D("%#.0f", 3.0), D("%.0f", 0.4),
    D("%.60f", 1.0 / 3), D("%.1074f", 4.9406564584124654e-324), D("%f", 999999.9999999),
    D("%e", 0.0), D("%e", 1.0), D("%e", 123456.789), D("%.3e", 1e-300), D("%E", 1.5e+100), D("%.0e", 5.0),
    D("%.0e", 2.5e10), D("%#.0e", 3.0), D("%e", DBL_MAX), D("%e", DBL_MIN), D("%e", 4.9406564584124654e-324),
    D("%.800e", 4.9406564584124654e-324), D("%.17e", 0.1), D("%e", 9.9999999), D("[%+015.4e]", -1234.5),
    D("%g", 0.0), D("%g", 100000.0), D("%g", 1000000.0), D("%g", 1e-4), D("%g", 1e-5), D("%g", 123.456),
    D("%g", 0.0001234), D("%.3g", 3.14159), D("%.0g", 1.5), D("%#g", 1.0), D("%#.3g", 100.0),
    D("%G", 1e-10), D("%g", 1e100), D("%.10g", 1.0 / 3), D("%.17g", 0.1), D("[%10.4g]", 3.14159),
    D("[%-12g]", 2.5), D("[%012g]", -1.5), D("%g", 999999.5), D("%g", 9.9999996e-5), D("%.20g", 1e23),
    D("%f", INFINITY), D("%f", -INFINITY), D("%e", NAN), D("%G", NAN), D("%F", INFINITY), D("%f", -NAN),
    D("[%5f]", INFINITY), D("[%-6f]", -INFINITY), D("[%06f]", INFINITY), D("%+f", INFINITY), D("% g", NAN),
};

/* Formats case c with the guest (guest != 0) or host snprintf. */
static int run_case(const fcase *c, char *buf, size_t n, int guest) {
  int (*f)(char *, size_t, const char *, ...) = guest ? g_snprintf : snprintf;
  switch (c->kind) {
  case A_I: return f(buf, n, c->fmt, (int)c->i, (int)(c->i + 1));
  case A_L: return f(buf, n, c->fmt, (long)c->i);
  case A_LL: return f(buf, n, c->fmt, (long long)c->i);
  case A_U: return f(buf, n, c->fmt, (unsigned)c->u);
  case A_UL: return f(buf, n, c->fmt, (unsigned long)c->u);
  case A_ULL: return f(buf, n, c->fmt, (unsigned long long)c->u);
  case A_D: return f(buf, n, c->fmt, c->d);
  case A_S: return f(buf, n, c->fmt, c->s, c->s);
  case A_P: return f(buf, n, c->fmt, (void *)(uintptr_t)c->u);
  case A_WI: return f(buf, n, c->fmt, c->w, (int)c->i);
  case A_PI: return f(buf, n, c->fmt, c->p, (int)c->i);
  case A_WPD: return f(buf, n, c->fmt, c->w, c->p, c->d);
  case A_WPS: return f(buf, n, c->fmt, c->w, c->p, c->s);
  default: return f(buf, n, c->fmt);
  }
}

static void compare_case(const fcase *c) {
  static char want[4096], got[4096];
  int nw = run_case(c, want, sizeof want, 0), ng = run_case(c, got, sizeof got, 1);
  CHECK(nw == ng && strcmp(want, got) == 0, "format \"%.20s\": want \"%.60s\" (%d), got \"%.60s\" (%d)",
        c->fmt, want, nw, got, ng);
  /* Truncated output: same return value, same prefix, always NUL-terminated. */
  size_t sizes[] = {0, 1, (size_t)nw / 2 + 1};
  for (int k = 0; k < 3; k++) {
    memset(want, 'W', 64), memset(got, 'G', 64);
    nw = run_case(c, want, sizes[k], 0), ng = run_case(c, got, sizes[k], 1);
    int same = nw == ng && (sizes[k] == 0 ? got[0] == 'G' : strcmp(want, got) == 0);
    CHECK(same, "format \"%.20s\" size %zu: want \"%.40s\" (%d) got \"%.40s\" (%d)", c->fmt, sizes[k],
          sizes[k] ? want : "", nw, sizes[k] ? got : "", ng);
  }
}

static void test_format(void) {
  size_t n = sizeof cases / sizeof cases[0];
  for (size_t i = 0; i < n; i++) compare_case(&cases[i]);
  char buf[128];
  g_snprintf(buf, sizeof buf, "x=%d s=%s f=%.2f c=%c %5.1e|%-4u|%llx", -3, "str", 2.675, 'q', 1234.5, 7u, 0xffull);
  CHECK(strcmp(buf, "x=-3 s=str f=2.67 c=q 1.2e+03|7   |ff") == 0, "mixed: %s", buf);
  CHECK(g_snprintf(NULL, 0, "%d", 12345) == 5, "NULL buffer with size 0");
  printf("format: %zu table cases\n", n);

  /* Random flags/width/precision/conversions against the host. */
  static const char *conv_int = "diuxXo", *conv_fp = "feEgG";
  int fuzz = 0;
  for (int i = 0; i < 60000; i++, fuzz++) {
    char fmt[32], *f = fmt;
    int fp = i % 2, conv = fp ? conv_fp[rndn(5)] : conv_int[rndn(6)];
    *f++ = '%';
    for (const char *fl = "-+ #0"; *fl; fl++) {
      int ok = fp || (*fl == '#' ? strchr("oxX", conv) != NULL : *fl == '+' || *fl == ' ' ? strchr("di", conv) != NULL : 1);
      if (ok && rndn(4) == 0) *f++ = *fl;
    }
    if (rndn(2)) f += sprintf(f, "%zu", rndn(30));
    if (rndn(2)) f += sprintf(f, ".%zu", rndn(fp ? 25 : 12));
    fcase c = {.fmt = fmt, .kind = fp ? A_D : A_LL};
    if (fp) {
      union { double d; uint64_t u; } v;
      switch (i / 2 % 3) {
      case 0: do v.u = rnd(); while (isnan(v.d) || isinf(v.d)); break; /* any bit pattern */
      case 1: v.d = (double)(int64_t)rnd() / pow(10, (double)rndn(30)) / (double)(1 + rndn(1000)); break;
      default: v.d = (double)(int64_t)(rnd() >> rndn(64)) / (double)(1ull << rndn(40)); break; /* exact ties */
      }
      c.d = v.d;
      *f++ = (char)conv;
    } else {
      c.i = (long long)(rnd() >> rndn(64));
      if (rndn(2)) c.i = -c.i;
      *f++ = 'l', *f++ = 'l', *f++ = (char)conv;
    }
    *f = 0;
    compare_case(&c);
  }
  printf("format: %d random format/value cases\n", fuzz);
}

/* ---- strings ----------------------------------------------------------------- */
static void random_bytes(unsigned char *p, size_t n, const char *alphabet) {
  size_t k = strlen(alphabet);
  for (size_t i = 0; i < n; i++) p[i] = k ? (unsigned char)alphabet[rndn(k)] : (unsigned char)rnd();
}

/* memcpy's word-moving path (1 KiB and up): every alignment and tail length. */
static void test_large_memcpy(void) {
  static unsigned char src[9000], dst[9000], ref[9000];
  for (int it = 0; it < 3000; it++) {
    size_t len = 1000 + rndn(8000 - 1000), x = rndn(16), y = rndn(16);
    random_bytes(src, sizeof src, ""), random_bytes(dst, sizeof dst, ""), memcpy(ref, dst, sizeof dst);
    CHECK(g_memcpy(dst + x, src + y, len) == dst + x, "memcpy return (large)");
    memcpy(ref + x, src + y, len);
    CHECK(memcmp(dst, ref, sizeof dst) == 0, "memcpy len %zu (large, dst+%zu src+%zu)", len, x, y);
  }
}

static void test_strings(void) {
  static unsigned char a[700], b[700], c[700];
  const char *alpha = "ab\x80\xff";
  for (int it = 0; it < 20000; it++) {
    size_t len = rndn(it % 10 ? 40 : 300), x = rndn(16), y = rndn(16);
    random_bytes(a, sizeof a, ""), memcpy(b, a, sizeof a), memcpy(c, a, sizeof a);
    CHECK(g_memcpy(b + x, a + 300 + y, len) == b + x, "memcpy return");
    memcpy(c + x, a + 300 + y, len);
    CHECK(memcmp(b, c, sizeof b) == 0, "memcpy len %zu", len);
    memcpy(b, a, sizeof a), memcpy(c, a, sizeof a);
    size_t s = 20 + rndn(260), d = s + rndn(41) - 20; /* overlapping, either direction */
    CHECK(g_memmove(b + d, b + s, len) == b + d, "memmove return");
    memmove(c + d, c + s, len);
    CHECK(memcmp(b, c, sizeof b) == 0, "memmove %zu->%zu len %zu", s, d, len);
    int v = (int)rnd();
    CHECK(g_memset(b + x, v, len) == b + x, "memset return");
    memset(c + x, v, len);
    CHECK(memcmp(b, c, sizeof b) == 0, "memset len %zu", len);
    memcpy(b, a, sizeof a);
    if (len && rndn(2)) b[x + rndn(len)] ^= (unsigned char)(1 + rndn(255));
    CHECK(sgn(g_memcmp(a + x, b + x, len)) == sgn(memcmp(a + x, b + x, len)), "memcmp len %zu", len);
    random_bytes(a, len + 32, alpha);
    a[x + len] = 0;
    CHECK(g_memchr(a + x, a[y], len) == memchr(a + x, a[y], len), "memchr");
    CHECK(g_memchr(a + x, 0x61 + 0x300, len) == memchr(a + x, 0x61 + 0x300, len), "memchr int c");
    const char *sa = (const char *)a + x;
    CHECK(g_strlen(sa) == len, "strlen %zu", len);
    CHECK(g_strnlen(sa, y) == strnlen(sa, y), "strnlen");
    CHECK(g_strchr(sa, a[y]) == strchr(sa, a[y]), "strchr");
    CHECK(g_strchr(sa, 0) == sa + len, "strchr NUL");
    CHECK(g_strrchr(sa, a[y]) == strrchr(sa, a[y]), "strrchr");
    CHECK(g_strrchr(sa, 0) == sa + len, "strrchr NUL");
    random_bytes(b, 64, alpha);
    memcpy(b, sa, rndn(len + 1)); /* share a random prefix */
    b[rndn(48)] = 0;
    const char *sb = (const char *)b;
    CHECK(sgn(g_strcmp(sa, sb)) == sgn(strcmp(sa, sb)), "strcmp");
    CHECK(sgn(g_strncmp(sa, sb, y)) == sgn(strncmp(sa, sb, y)), "strncmp");
    random_bytes(c, 8, "ab");
    c[rndn(6)] = 0;
    random_bytes(a, 64, "ab");
    a[rndn(60)] = 0;
    CHECK(g_strstr((char *)a, (char *)c) == strstr((char *)a, (char *)c), "strstr \"%s\" in \"%s\"", c, a);
  }
  char buf[32];
  memset(buf, 'x', sizeof buf);
  CHECK(g_strcpy(buf, "hello") == buf && strcmp(buf, "hello") == 0 && buf[6] == 'x', "strcpy");
  CHECK(g_strcat(buf, ", world") == buf && strcmp(buf, "hello, world") == 0, "strcat");
  memset(buf, 'x', sizeof buf);
  g_strncpy(buf, "abc", 8);
  CHECK(memcmp(buf, "abc\0\0\0\0\0x", 9) == 0, "strncpy pads");
  g_strncpy(buf, "abcdefgh", 4);
  CHECK(memcmp(buf, "abcd\0", 5) == 0, "strncpy truncates without NUL");
  CHECK(g_strstr("aaaaaaaaaaaaaaab", "aaab") != NULL && g_strstr("abc", "") != NULL, "strstr edge");
  char *dup = g_strdup("duplicate me");
  CHECK(dup && strcmp(dup, "duplicate me") == 0, "strdup");
  g_free(dup);
  printf("strings: 20000 randomized rounds\n");
}

/* ---- allocator --------------------------------------------------------------- */
#define HEAP_SIZE (32u << 20)
static unsigned char heap_mem[HEAP_SIZE + 64] __attribute__((aligned(16)));
typedef struct { unsigned char *p; size_t n; uint64_t seed; } slot;

static unsigned char pat(const slot *s, size_t i) { return (unsigned char)(s->seed + i + (i >> 8) * 31); }
static void fill(slot *s) { for (size_t i = 0; i < s->n; i++) s->p[i] = pat(s, i); }
static int intact(const slot *s, size_t n) {
  for (size_t i = 0; i < n; i++) if (s->p[i] != pat(s, i)) return 0;
  return 1;
}
static int by_addr(const void *x, const void *y) {
  const slot *a = x, *b = y;
  return (a->p > b->p) - (a->p < b->p);
}
static size_t random_size(void) {
  size_t r = rndn(100);
  return r < 70 ? rndn(129) : r < 95 ? rndn(4097) : r < 99 ? rndn(65537) : rndn(1u << 18);
}
static int placed_ok(const unsigned char *p) {
  return ((uintptr_t)p & 15) == 0 && p >= heap_mem && p < heap_mem + sizeof heap_mem;
}

/* Live blocks must not overlap, and heap_used must cover them. */
static void check_live(const slot *live, int n) {
  static slot sorted[4096];
  int k = 0;
  size_t sum = 0;
  for (int i = 0; i < n; i++)
    if (live[i].p) sorted[k++] = live[i], sum += live[i].n;
  qsort(sorted, (size_t)k, sizeof *sorted, by_addr);
  for (int i = 1; i < k; i++)
    CHECK(sorted[i - 1].p + (sorted[i - 1].n ? sorted[i - 1].n : 1) <= sorted[i].p, "overlap at %p",
          (void *)sorted[i].p);
  CHECK(vmlet_heap_used() >= sum && vmlet_heap_used() <= vmlet_heap_capacity(), "heap_used %zu",
        vmlet_heap_used());
}

static void test_alloc_stress(void) {
  enum { SLOTS = 2000, OPS = 100000 };
  static slot live[SLOTS];
  int nulls = 0;
  vmlet_heap_init(heap_mem + 3, HEAP_SIZE); /* misaligned base on purpose */
  clock_t t0 = clock();
  for (int op = 1; op <= OPS; op++) {
    if (op % 1000 == 0) check_live(live, SLOTS);
    slot *s = &live[rndn(SLOTS)];
    if (!s->p) {
      s->n = random_size(), s->seed = rnd();
      int zeroed = rndn(10) == 0;
      s->p = zeroed ? g_calloc(1, s->n) : g_malloc(s->n);
      if (!s->p) { nulls++; continue; }
      CHECK(placed_ok(s->p), "bad block address %p", (void *)s->p);
      size_t nz = 0;
      while (zeroed && nz < s->n && !s->p[nz]) nz++;
      CHECK(!zeroed || nz == s->n, "calloc not zeroed");
      fill(s);
      continue;
    }
    CHECK(intact(s, s->n), "block %p (%zu bytes) damaged", (void *)s->p, s->n);
    if (rndn(2)) {
      g_free(s->p), s->p = NULL;
    } else {
      size_t n = random_size();
      unsigned char *q = g_realloc(s->p, n);
      if (!q) { nulls++; continue; }
      CHECK(placed_ok(q), "bad realloc address");
      s->p = q;
      CHECK(intact(s, n < s->n ? n : s->n), "realloc lost contents");
      s->n = n, s->seed = rnd();
      fill(s);
    }
  }
  double ms = (double)(clock() - t0) * 1000 / CLOCKS_PER_SEC;
  for (int i = 0; i < SLOTS; i++) {
    if (live[i].p) CHECK(intact(&live[i], live[i].n), "damaged at end");
    g_free(live[i].p), live[i].p = NULL;
  }
  CHECK(vmlet_heap_used() == 0, "heap_used %zu after freeing everything", vmlet_heap_used());
  void *all = g_malloc(vmlet_heap_capacity() - 16); /* everything coalesced back into one block */
  CHECK(all != NULL, "heap did not coalesce back into one block");
  g_free(all);
  printf("alloc: %d random malloc/calloc/realloc/free ops in %.0f ms (%d NULL when full), capacity %zu\n",
         OPS, ms, nulls, vmlet_heap_capacity());

  /* Many small blocks freed in random order: must stay fast (no quadratic scans). */
  enum { SMALL = 200000 };
  static void *ptrs[SMALL];
  t0 = clock();
  for (int i = 0; i < SMALL; i++) CHECK((ptrs[i] = g_malloc(16 + rndn(48))) != NULL, "small malloc");
  for (int i = SMALL - 1; i > 0; i--) {
    size_t j = rndn((size_t)i + 1);
    void *t = ptrs[i]; ptrs[i] = ptrs[j], ptrs[j] = t;
  }
  for (int i = 0; i < SMALL; i++) g_free(ptrs[i]);
  CHECK(vmlet_heap_used() == 0, "small blocks leaked");
  printf("alloc: %d small blocks allocated and freed in random order in %.0f ms\n", SMALL,
         (double)(clock() - t0) * 1000 / CLOCKS_PER_SEC);
}

static void test_alloc_edges(void) {
  vmlet_heap_init(heap_mem, 1 << 20);
  size_t cap = vmlet_heap_capacity();
  void *a = g_malloc(0), *b = g_malloc(0);
  CHECK(a && b && a != b, "malloc(0) must return unique pointers");
  g_free(a), g_free(b), g_free(NULL);
  CHECK(!g_malloc(SIZE_MAX) && !g_malloc(SIZE_MAX - 15) && !g_malloc(cap) && !g_malloc(cap - 15), "huge malloc");
  CHECK(!g_calloc(SIZE_MAX / 2 + 1, 2) && !g_calloc(1ull << 33, 1ull << 33) && !g_calloc(cap, 1), "calloc overflow");
  CHECK(vmlet_heap_used() == 0, "failed requests must not allocate");
  char *p = g_realloc(NULL, 100), *q = g_malloc(100);
  memset(p, 'p', 100);
  g_free(q);
  CHECK(g_realloc(p, 180) == p, "realloc should grow into the free neighbour");
  CHECK(g_realloc(p, 10) == p && memcmp(p, "pppppppppp", 10) == 0, "realloc should shrink in place");
  CHECK(g_realloc(p, SIZE_MAX) == NULL && p[0] == 'p', "failed realloc must keep the block");
  char *r = g_malloc(5000);
  memset(r, 0xff, 5000);
  g_free(r);
  unsigned char *z = g_calloc(1000, 5);
  int zero = 1;
  for (int i = 0; i < 5000; i++) zero &= z[i] == 0;
  CHECK(zero, "calloc must zero recycled memory");
  g_free(z), g_free(p);
  CHECK(vmlet_heap_used() == 0, "heap_used not 0");

  static char *volatile v; /* survives longjmp */
  v = g_malloc(40);
  g_free(v);
  EXPECT_PANIC(g_free(v), "double free");
  EXPECT_PANIC(g_realloc(v, 80), "realloc of freed block");
  EXPECT_PANIC(g_free(&cap), "free of stack pointer");
  v = g_calloc(1, 64);
  EXPECT_PANIC(g_free(v + 16), "free of interior pointer");
  memset(v - 16, 'A', 16);
  EXPECT_PANIC(g_free(v), "free with damaged header");
  vmlet_heap_init(heap_mem, 1 << 20);
  v = g_malloc(24);
  char *w = g_malloc(24);
  memset(v, 'B', 48); /* overflow into w's header */
  EXPECT_PANIC(g_free(w), "free after overflow");
  EXPECT_PANIC(g_free(v), "free before damaged block");
  vmlet_heap_init(heap_mem, 1 << 20);
}

int main(void) {
  CHECK(g_malloc(16) == NULL, "malloc before vmlet_heap_init must return NULL");
  test_format();
  test_alloc_edges();
  test_strings();
  test_large_memcpy();
  test_alloc_stress();
  printf("%d checks, %d failures\n", checks, failures);
  if (failures) printf("FAILED\n");
  else printf("PASSED\n");
  return failures != 0;
}

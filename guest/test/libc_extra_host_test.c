/*
 * Host-side test of the rest of the guest libc: conversions (strtod, strtof,
 * strtol family), the string/strings additions, ctype, qsort/bsearch, the
 * calendar functions and setjmp/longjmp. The Makefile compiles the guest's
 * files natively with their names renamed (strtod -> g_strtod, ...), and
 * each is compared with glibc on random and edge-case inputs. Exit status is
 * non-zero on any failure.
 */
#define _GNU_SOURCE
#pragma GCC diagnostic ignored "-Wstringop-truncation"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int g_errno;
double g_strtod(const char *, char **);
float g_strtof(const char *, char **);
long g_strtol(const char *, char **, int);
unsigned long g_strtoul(const char *, char **, int);
long long g_strtoll(const char *, char **, int);
unsigned long long g_strtoull(const char *, char **, int);
int g_atoi(const char *);
size_t g_strspn(const char *, const char *);
size_t g_strcspn(const char *, const char *);
char *g_strpbrk(const char *, const char *);
char *g_strtok_r(char *, const char *, char **);
int g_strcasecmp(const char *, const char *);
int g_strncasecmp(const char *, const char *, size_t);
char *g_strndup(const char *, size_t);
void *g_memmem(const void *, size_t, const void *, size_t);
void *g_memrchr(const void *, int, size_t);
size_t g_strlcpy(char *, const char *, size_t);
char *g_strncat(char *, const char *, size_t);
void g_qsort(void *, size_t, size_t, int (*)(const void *, const void *));
void *g_bsearch(const void *, const void *, size_t, size_t, int (*)(const void *, const void *));
struct tm *g_gmtime_r(const time_t *, struct tm *);
time_t g_timegm(struct tm *);
size_t g_strftime(char *, size_t, const char *, const struct tm *);
typedef long g_jmp_buf[8];
int g_setjmp(g_jmp_buf) __attribute__((returns_twice));
_Noreturn void g_longjmp(g_jmp_buf, int);
#define CTYPE(X) X(isalnum) X(isalpha) X(isblank) X(iscntrl) X(isdigit) X(isgraph) X(islower) X(isprint) \
  X(ispunct) X(isspace) X(isupper) X(isxdigit) X(tolower) X(toupper)
#define DECLARE(f) int g_##f(int);
CTYPE(DECLARE)

#include "../include/vmlet.h"

#define HARNESS_SEED 0x853c49e6748fea9bull
#include "harness.h"
int g_clock_gettime(int, struct timespec *);
time_t g_time(time_t *);

/* Stubs for what the guest files call into elsewhere in the SDK. The host clock:
 * present or missing, as a sandbox with or without vmlet_clock_gettime. */
static int clock_present;
static int32_t clock_asked;
int vmlet_host_call(const char *name, uint32_t ret_type, vmlet_value *result, uint32_t argc, const vmlet_value *argv) {
  if (!clock_present || strcmp(name, "vmlet_clock_gettime") != 0 || ret_type != VMLET_T_I64 || argc != 1) return VMLET_HOST_MISSING;
  clock_asked = argv[0].as.i32;
  *result = vmlet_i64(-1500000001); /* 1.5 s before the epoch, minus 1 ns */
  return VMLET_HOST_OK;
}
void *g_malloc(size_t n) { return malloc(n); }
void g_free(void *p) { free(p); }
_Noreturn void vmlet_panic_at(const char *file, int line, const char *fmt, ...) {
  printf("unexpected panic at %s:%d: %s\n", file, line, fmt);
  exit(2);
}



/* A random decimal number string: digits, point, exponent, from tiny to huge and long. */
static void random_decimal(char *buf) {
  char *p = buf;
  if (rnd() % 4 == 0) *p++ = rnd() % 2 ? '-' : '+';
  int digits = 1 + (int)(rnd() % (rnd() % 8 == 0 ? 40 : 20)), point = (int)(rnd() % (digits + 1));
  for (int i = 0; i < digits; i++) {
    if (i == point && rnd() % 2) *p++ = '.';
    *p++ = (char)('0' + rnd() % 10);
  }
  if (rnd() % 2) p += sprintf(p, "e%d", (int)(rnd() % 700) - 350);
  *p = '\0';
}

static void conversions(void) {
  char buf[128], *e1, *e2;
  for (int i = 0; i < 200000; i++) {
    if (i % 3 == 0) { /* a random double printed exactly enough to round-trip, or at halfway points */
      uint64_t u = rnd();
      double d;
      memcpy(&d, &u, 8);
      if (!isfinite(d)) continue;
      snprintf(buf, sizeof buf, "%.*g", 1 + (int)(rnd() % 25), d);
    } else {
      random_decimal(buf);
    }
    g_errno = 0, errno = 0;
    double a = g_strtod(buf, &e1), b = strtod(buf, &e2);
    CHECK(memcmp(&a, &b, 8) == 0 && e1 == e2, "strtod(\"%s\") = %a, glibc %a", buf, a, b);
    CHECK((g_errno == ERANGE) == (errno == ERANGE), "strtod(\"%s\") errno %d, glibc %d", buf, g_errno, errno);
    float fa = g_strtof(buf, &e1), fb = strtof(buf, &e2);
    CHECK(memcmp(&fa, &fb, 4) == 0 && e1 == e2, "strtof(\"%s\") = %a, glibc %a", buf, fa, fb);
  }
  static const char *edge[] = {"", " ", "+", "-", ".", "e5", "0x", "0x1p3", "0X1.8P-3", "0x.8", "0x1p-1074", "0x1p-1075",
                               "0x1.000001p-1075", "inf", "-INFINITY", "infinit", "nan", "NAN(123)", "nan(", "1e", "1e+",
                               "4.9e-324", "2.4703282292062327e-324", "2.4703282292062328e-324", "1.7976931348623157e308",
                               "1.7976931348623158e308", "1.7976931348623159e308", "1e-400", "0.000", "-0", "  \t12abc",
                               "123456789012345678901234567890e-30", "9007199254740993", "3.4028235677973366e38"};
  for (size_t i = 0; i < sizeof edge / sizeof *edge; i++) {
    double a = g_strtod(edge[i], &e1), b = strtod(edge[i], &e2);
    CHECK((memcmp(&a, &b, 8) == 0 || (isnan(a) && isnan(b))) && e1 == e2, "strtod(\"%s\") = %a end %td, glibc %a end %td",
          edge[i], a, e1 - edge[i], b, e2 - edge[i]);
    float fa = g_strtof(edge[i], &e1), fb = strtof(edge[i], &e2);
    CHECK((memcmp(&fa, &fb, 4) == 0 || (isnan(fa) && isnan(fb))) && e1 == e2, "strtof(\"%s\")", edge[i]);
  }
  static const char *ints[] = {"0", "-0", "42", "  -17xyz", "0x1F", "0X", "0x", "0xg", "077", "09", "z", "-", "+5",
                               "9223372036854775807", "9223372036854775808", "-9223372036854775808",
                               "-9223372036854775809", "18446744073709551615", "18446744073709551616", "-1",
                               "99999999999999999999999", "2147483648", "  +0x7fffffff"};
  int bases[] = {0, 2, 8, 10, 16, 36};
  for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
    for (size_t b = 0; b < sizeof bases / sizeof *bases; b++) {
      int base = bases[b];
      g_errno = 0, errno = 0;
      long x = g_strtol(ints[i], &e1, base), y = strtol(ints[i], &e2, base);
      CHECK(x == y && e1 == e2 && (g_errno == errno), "strtol(\"%s\", %d)", ints[i], base);
      g_errno = 0, errno = 0;
      unsigned long ux = g_strtoul(ints[i], &e1, base), uy = strtoul(ints[i], &e2, base);
      CHECK(ux == uy && e1 == e2 && (g_errno == errno), "strtoul(\"%s\", %d)", ints[i], base);
      CHECK(g_strtoll(ints[i], NULL, base) == strtoll(ints[i], NULL, base), "strtoll(\"%s\", %d)", ints[i], base);
      CHECK(g_strtoull(ints[i], NULL, base) == strtoull(ints[i], NULL, base), "strtoull(\"%s\", %d)", ints[i], base);
    }
    CHECK(g_atoi(ints[i]) == atoi(ints[i]), "atoi(\"%s\")", ints[i]);
  }
}

static void random_word(char *buf, int n, const char *alphabet) {
  size_t k = strlen(alphabet);
  for (int i = 0; i < n; i++) buf[i] = alphabet[rnd() % k];
  buf[n] = '\0';
}

static int sgn(int x) { return (x > 0) - (x < 0); }

static void strings(void) {
  char s[64], set[16], t[64];
  for (int i = 0; i < 50000; i++) {
    random_word(s, (int)(rnd() % 40), "abcdeABCDE ,;\t\x80\xff");
    random_word(set, (int)(rnd() % 6), "abcAB ,\xff");
    CHECK(g_strspn(s, set) == strspn(s, set), "strspn");
    CHECK(g_strcspn(s, set) == strcspn(s, set), "strcspn");
    CHECK(g_strpbrk(s, set) == strpbrk(s, set), "strpbrk");
    random_word(t, (int)(rnd() % 40), "abcdeABCDE ,;");
    CHECK(sgn(g_strcasecmp(s, t)) == sgn(strcasecmp(s, t)), "strcasecmp(\"%s\", \"%s\")", s, t);
    size_t n = rnd() % 10;
    CHECK(sgn(g_strncasecmp(s, t, n)) == sgn(strncasecmp(s, t, n)), "strncasecmp");
    CHECK(g_memmem(s, strlen(s), set, strlen(set)) == memmem(s, strlen(s), set, strlen(set)), "memmem");
    CHECK(g_memrchr(s, 'a', strlen(s)) == memrchr(s, 'a', strlen(s)), "memrchr");
    char a[64], b[64], *sa, *sb;
    strcpy(a, s), strcpy(b, s);
    char *x = g_strtok_r(a, ", ", &sa), *y = strtok_r(b, ", ", &sb);
    while (x && y && x - a == y - b && strcmp(x, y) == 0) x = g_strtok_r(NULL, ", ", &sa), y = strtok_r(NULL, ", ", &sb);
    CHECK(!x && !y, "strtok_r(\"%s\")", s);
    char *d = g_strndup(s, n);
    CHECK(strcmp(d, strndup(s, n)) == 0, "strndup");
    free(d);
    char small[8];
    CHECK(g_strlcpy(small, s, sizeof small) == strlen(s) && strncmp(small, s, 7) == 0 && small[strlen(small)] == 0, "strlcpy");
    strcpy(a, "xy"), strcpy(b, "xy");
    CHECK(strcmp(g_strncat(a, s, n), strncat(b, s, n)) == 0, "strncat");
  }
  for (int c = -1; c < 256; c++) {
#define SAME(f) CHECK(!g_##f(c) == !f(c) && (#f[0] != 't' || g_##f(c) == f(c)), #f "(%d)", c);
    CTYPE(SAME)
  }
}

static int cmp_int(const void *a, const void *b) { return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b); }

typedef struct {
  int key;
  char pad[13];
} record;

static int cmp_record(const void *a, const void *b) { return cmp_int(&((const record *)a)->key, &((const record *)b)->key); }

static void sorting(void) {
  for (int round = 0; round < 300; round++) {
    size_t n = rnd() % (round < 10 ? 100000 : 2000);
    int *a = malloc(n * sizeof *a + 1), *b = malloc(n * sizeof *b + 1);
    int spread = (int)(rnd() % 5 == 0 ? 3 : 1000000);
    for (size_t i = 0; i < n; i++) a[i] = round % 7 == 0 ? (int)i : round % 7 == 1 ? (int)(n - i) : (int)(rnd() % spread);
    memcpy(b, a, n * sizeof *a);
    g_qsort(a, n, sizeof *a, cmp_int);
    qsort(b, n, sizeof *b, cmp_int);
    CHECK(memcmp(a, b, n * sizeof *a) == 0, "qsort of %zu ints (round %d)", n, round);
    for (int k = 0; k < 20 && n; k++) {
      int key = (int)(rnd() % spread);
      int *found = g_bsearch(&key, a, n, sizeof *a, cmp_int);
      CHECK(found ? *found == key : bsearch(&key, b, n, sizeof *b, cmp_int) == NULL, "bsearch %d", key);
    }
    free(a), free(b);
  }
  record r[300];
  for (int i = 0; i < 300; i++) r[i].key = (int)(rnd() % 1000), memset(r[i].pad, i, sizeof r[i].pad);
  g_qsort(r, 300, sizeof *r, cmp_record);
  int sorted = 1;
  for (int i = 1; i < 300; i++) sorted &= r[i - 1].key <= r[i].key && r[i].pad[12] == r[i].pad[0];
  CHECK(sorted, "qsort of 17-byte records keeps each record whole and sorts them");
}

static void calendar(void) {
  static const char *formats[] = {"%Y-%m-%d %H:%M:%S", "%a %A %b %B %c", "%C %d %D %e %F %I %j %p %r %R %T %u %w %x %X %y %Z %z %%",
                                  "%s", "%n%t%h"};
  for (int i = 0; i < 100000; i++) {
    time_t t = (time_t)(rnd() % 40000000000ull) - 20000000000ll;
    if (i % 10 == 0) t = (time_t)(rnd() % 200000) - 100000;
    struct tm a, b;
    g_gmtime_r(&t, &a);
    gmtime_r(&t, &b);
    CHECK(a.tm_year == b.tm_year && a.tm_mon == b.tm_mon && a.tm_mday == b.tm_mday && a.tm_hour == b.tm_hour &&
              a.tm_min == b.tm_min && a.tm_sec == b.tm_sec && a.tm_wday == b.tm_wday && a.tm_yday == b.tm_yday,
          "gmtime_r(%lld)", (long long)t);
    struct tm skew = a;
    skew.tm_mon += (int)(rnd() % 40) - 20, skew.tm_mday += (int)(rnd() % 100) - 50, skew.tm_sec += (int)(rnd() % 10000) - 5000;
    struct tm skew2 = skew;
    CHECK(g_timegm(&skew) == timegm(&skew2) && skew.tm_mday == skew2.tm_mday && skew.tm_wday == skew2.tm_wday,
          "timegm near %lld", (long long)t);
    const char *f = formats[i % 5];
    char x[128], y[128];
    size_t nx = g_strftime(x, sizeof x, f, &a), ny = strftime(y, sizeof y, f, &a); /* one tm: glibc names UTC "GMT" */
    CHECK(nx == ny && strcmp(x, y) == 0, "strftime(\"%s\") = \"%s\", glibc \"%s\"", f, x, y);
  }
}

static void clocks(void) {
  struct timespec ts;
  clock_present = 0;
  g_errno = 0;
  CHECK(g_clock_gettime(CLOCK_REALTIME, &ts) == -1 && g_errno == ENOSYS, "no host clock: ENOSYS");
  CHECK(g_time(NULL) == -1, "no host clock: time() is -1");
  clock_present = 1;
  CHECK(g_clock_gettime(CLOCK_MONOTONIC, &ts) == 0 && clock_asked == 1, "monotonic clock asked as 1");
  CHECK(ts.tv_sec == -2 && ts.tv_nsec == 499999999, "negative times: %lld s %ld ns", (long long)ts.tv_sec, ts.tv_nsec);
  time_t t = 0;
  CHECK(g_time(&t) == -2 && t == -2 && clock_asked == 0, "time() reads the realtime clock");
  g_errno = 0;
  CHECK(g_clock_gettime(7, &ts) == -1 && g_errno == EINVAL, "unknown clock: EINVAL");
}

static g_jmp_buf jump;
static int depth_reached;

static void dive(int depth) {
  volatile char frame[256];
  frame[0] = (char)depth;
  depth_reached = depth + frame[0] - (char)depth;
  if (depth >= 50) g_longjmp(jump, depth);
  if (depth < 1000) dive(depth + 1);
}

static void jumps(void) {
  volatile int calls = 0;
  int r = g_setjmp(jump);
  calls++;
  if (r == 0) dive(0);
  CHECK(r == 50 && calls == 2 && depth_reached == 50, "setjmp returned %d after %d calls", r, calls);
  r = g_setjmp(jump);
  if (r == 0) g_longjmp(jump, 0);
  CHECK(r == 1, "longjmp(env, 0) makes setjmp return 1, got %d", r);
}

int main(void) {
  setenv("TZ", "UTC", 1);
  conversions();
  strings();
  sorting();
  calendar();
  jumps();
  clocks();
  printf("libc extras: %d checks, %d failures\n", checks, failures);
  return failures != 0;
}

/* The small parts of <stdlib.h>, <assert.h>, <errno.h> and <locale.h>. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <locale.h>
#include <stdlib.h>

#include "vmlet.h"

int errno;

_Noreturn void abort(void) { vmlet_abort_at(VMLET_ABORT_PANIC, "abort", 0, "abort() called"); }

_Noreturn void __assert_fail(const char *expr, const char *file, unsigned int line, const char *func) {
  vmlet_panic_at(file, (int)line, "assertion failed in %s: %s", func, expr);
}

#define MAX_ATEXIT 32
static void (*at_exit[MAX_ATEXIT])(void);
static int n_at_exit;

int atexit(void (*fn)(void)) {
  if (n_at_exit == MAX_ATEXIT) return -1;
  at_exit[n_at_exit++] = fn;
  return 0;
}

_Noreturn void _Exit(int status) { vmlet_panic_at("exit", 0, "the guest called exit(%d)", status); }

_Noreturn void exit(int status) {
  while (n_at_exit > 0) at_exit[--n_at_exit]();
  _Exit(status);
}

/* A guest has no environment. */
char *getenv(const char *name) {
  (void)name;
  return NULL;
}

int abs(int x) { return x < 0 ? -x : x; }
long labs(long x) { return x < 0 ? -x : x; }
long long llabs(long long x) { return x < 0 ? -x : x; }
intmax_t imaxabs(intmax_t x) { return x < 0 ? -x : x; }
div_t div(int a, int b) { return (div_t){a / b, a % b}; }
ldiv_t ldiv(long a, long b) { return (ldiv_t){a / b, a % b}; }
lldiv_t lldiv(long long a, long long b) { return (lldiv_t){a / b, a % b}; }
imaxdiv_t imaxdiv(intmax_t a, intmax_t b) { return (imaxdiv_t){a / b, a % b}; }

void *reallocarray(void *p, size_t count, size_t size) {
  size_t n;
  if (__builtin_mul_overflow(count, size, &n)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, n);
}

/* rand(): a 64-bit LCG (Knuth's MMIX constants), top 31 bits; srand(1) is the default. */
static uint64_t rand_state = 1;
void srand(unsigned seed) { rand_state = seed; }
int rand(void) {
  rand_state = rand_state * 6364136223846793005ull + 1442695040888963407ull;
  return (int)(rand_state >> 33);
}

char *setlocale(int category, const char *locale) {
  (void)category;
  if (!locale || !*locale || (locale[0] == 'C' && !locale[1]) || strcmp(locale, "POSIX") == 0) return "C";
  return NULL;
}

struct lconv *localeconv(void) {
  static struct lconv c = {".", "", "", "", "", "", "", "", "", "", CHAR_MAX, CHAR_MAX, CHAR_MAX, CHAR_MAX,
                           CHAR_MAX, CHAR_MAX, CHAR_MAX, CHAR_MAX, CHAR_MAX, CHAR_MAX, CHAR_MAX, CHAR_MAX,
                           CHAR_MAX, CHAR_MAX};
  return &c;
}

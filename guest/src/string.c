/*
 * Memory and string functions for the freestanding guest.
 *
 * Bulk copies and fills use `rep movsb`/`rep stosb`, which are fast on every
 * CPU with ERMS (all current x86-64 hosts). Scans read aligned 8-byte words,
 * which never cross a page boundary and so cannot fault past the end of a
 * string. Functions containing plain loops carry NO_PATTERNS so gcc cannot
 * "optimise" them into calls to memcpy/memset, which would recurse.
 */
#include "vmlet.h"

#define NO_PATTERNS __attribute__((optimize("no-tree-loop-distribute-patterns")))

/* Word types that may alias anything, so word-at-a-time access is legal;
 * uword also tells gcc the address may be unaligned. */
typedef uint64_t __attribute__((may_alias)) word;
typedef uint64_t __attribute__((may_alias, aligned(1))) uword;

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
/* Non-zero iff some byte of w is zero (exact: no false positives for the test). */
#define HAS_ZERO(w) (((w) - ONES) & ~(w) & HIGHS)

/* Large copies move 8-byte words (`rep movsq`): on CPUs without fast short `rep movsb`
 * (AMD Zen 2/3, say) byte moves run at about 60% of the speed for 64 KiB (npm run bench:libc). */
void *memcpy(void *restrict d, const void *restrict s, size_t n) {
  void *ret = d;
  if (n >= 1024) {
    size_t words = n / 8;
    __asm__ volatile("rep movsq" : "+D"(d), "+S"(s), "+c"(words) : : "memory");
    n &= 7;
  }
  __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
  return ret;
}

NO_PATTERNS void *memmove(void *d, const void *s, size_t n) {
  unsigned char *dp = d;
  const unsigned char *sp = s;
  /* Forward copying is safe unless the destination starts inside the source. */
  if ((uintptr_t)dp - (uintptr_t)sp >= n) return memcpy(d, s, n);
  /* Backward `rep movsb` is slow on most CPUs, so copy words from the end. */
  while (n >= 8) {
    n -= 8;
    *(uword *)(dp + n) = *(const uword *)(sp + n);
  }
  while (n--) dp[n] = sp[n];
  return d;
}

void *memset(void *d, int c, size_t n) {
  void *ret = d;
  __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
  return ret;
}

NO_PATTERNS int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *p = a, *q = b;
  /* Skip equal words quickly; the differing word is then compared bytewise. */
  while (n >= 8 && *(const uword *)p == *(const uword *)q) p += 8, q += 8, n -= 8;
  for (; n; n--, p++, q++)
    if (*p != *q) return *p - *q;
  return 0;
}

NO_PATTERNS void *memchr(const void *s, int c, size_t n) {
  const unsigned char *p = s;
  unsigned char ch = (unsigned char)c;
  for (; n && ((uintptr_t)p & 7); n--, p++)
    if (*p == ch) return (void *)p;
  uint64_t pattern = ch * ONES;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w = *(const word *)p ^ pattern;
    if (HAS_ZERO(w)) break;
  }
  for (; n; n--, p++)
    if (*p == ch) return (void *)p;
  return NULL;
}

NO_PATTERNS size_t strlen(const char *s) {
  const char *p = s;
  for (; (uintptr_t)p & 7; p++)
    if (!*p) return (size_t)(p - s);
  const word *w = (const word *)p;
  while (!HAS_ZERO(*w)) w++;
  for (p = (const char *)w; *p; p++) {
  }
  return (size_t)(p - s);
}

size_t strnlen(const char *s, size_t max) {
  const char *z = memchr(s, 0, max);
  return z ? (size_t)(z - s) : max;
}

NO_PATTERNS int strcmp(const char *a, const char *b) {
  const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;
  while (*p && *p == *q) p++, q++;
  return *p - *q;
}

NO_PATTERNS int strncmp(const char *a, const char *b, size_t n) {
  const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;
  for (; n; n--, p++, q++) {
    if (*p != *q) return *p - *q;
    if (!*p) break;
  }
  return 0;
}

char *strcpy(char *restrict d, const char *restrict s) {
  memcpy(d, s, strlen(s) + 1);
  return d;
}

char *strncpy(char *restrict d, const char *restrict s, size_t n) {
  size_t len = strnlen(s, n);
  memcpy(d, s, len);
  memset(d + len, 0, n - len); /* strncpy pads the rest with NULs */
  return d;
}

char *strcat(char *restrict d, const char *restrict s) {
  strcpy(d + strlen(d), s);
  return d;
}

/* A word at a time once aligned: a word with neither a NUL nor `c` is passed whole. */
NO_PATTERNS char *strchr(const char *s, int c) {
  char ch = (char)c;
  for (; (uintptr_t)s & 7; s++) {
    if (*s == ch) return (char *)s;
    if (!*s) return NULL;
  }
  const uint64_t spread = ONES * (unsigned char)ch;
  const word *w = (const word *)s;
  while (!HAS_ZERO(*w) && !HAS_ZERO(*w ^ spread)) w++;
  for (s = (const char *)w;; s++) {
    if (*s == ch) return (char *)s;
    if (!*s) return NULL;
  }
}

NO_PATTERNS char *strrchr(const char *s, int c) {
  char ch = (char)c;
  const char *last = NULL;
  for (;; s++) {
    if (*s == ch) last = s;
    if (!*s) return (char *)last;
  }
}

/*
 * Rabin-Karp: a rolling hash over the haystack, verified with memcmp on a
 * match, so the expected cost is linear instead of the naive O(n*m).
 */
NO_PATTERNS char *strstr(const char *h, const char *n) {
  const unsigned char *hs, *ns = (const unsigned char *)n;
  size_t m = strlen(n), i;
  if (m == 0) return (char *)h;
  hs = (const unsigned char *)strchr(h, ns[0]);
  if (!hs || m == 1) return (char *)hs;
  const uint32_t base = 257; /* hashes wrap modulo 2^32 */
  uint32_t hn = 0, hh = 0, top = 1;
  for (i = 0; i < m; i++) {
    if (!hs[i]) return NULL; /* haystack shorter than needle */
    hn = hn * base + ns[i];
    hh = hh * base + hs[i];
    if (i) top *= base;
  }
  for (i = 0;; i++) {
    if (hh == hn && memcmp(hs + i, ns, m) == 0) return (char *)(hs + i);
    if (!hs[i + m]) return NULL;
    hh = (hh - hs[i] * top) * base + hs[i + m];
  }
}

char *strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  return d ? memcpy(d, s, n) : NULL;
}

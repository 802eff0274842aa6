/*
 * The rest of <string.h> and <strings.h>: span/token functions, case-insensitive
 * comparison, bounded copies and strerror. The hot functions are in string.c.
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "vmlet.h"

#define NO_PATTERNS __attribute__((optimize("no-tree-loop-distribute-patterns")))

/* A 256-bit membership set of the bytes of `chars`. */
typedef struct {
  uint64_t bits[4];
} byteset;

NO_PATTERNS static void byteset_of(byteset *set, const char *chars) {
  set->bits[0] = set->bits[1] = set->bits[2] = set->bits[3] = 0;
  for (const unsigned char *p = (const unsigned char *)chars; *p; p++) set->bits[*p >> 6] |= 1ull << (*p & 63);
}

static int in_set(const byteset *set, unsigned char c) { return (set->bits[c >> 6] >> (c & 63)) & 1; }

NO_PATTERNS size_t strspn(const char *s, const char *accept) {
  byteset set;
  byteset_of(&set, accept);
  const unsigned char *p = (const unsigned char *)s;
  while (*p && in_set(&set, *p)) p++;
  return (size_t)((const char *)p - s);
}

NO_PATTERNS size_t strcspn(const char *s, const char *reject) {
  byteset set;
  byteset_of(&set, reject);
  const unsigned char *p = (const unsigned char *)s;
  while (*p && !in_set(&set, *p)) p++;
  return (size_t)((const char *)p - s);
}

char *strpbrk(const char *s, const char *accept) {
  s += strcspn(s, accept);
  return *s ? (char *)s : NULL;
}

char *strtok_r(char *restrict s, const char *restrict delim, char **restrict save) {
  if (!s) s = *save;
  if (!s) return NULL;
  s += strspn(s, delim);
  if (!*s) {
    *save = NULL;
    return NULL;
  }
  char *end = s + strcspn(s, delim);
  *save = *end ? end + 1 : NULL;
  *end = '\0';
  return s;
}

char *strtok(char *restrict s, const char *restrict delim) {
  static char *save;
  return strtok_r(s, delim, &save);
}

char *strsep(char **sp, const char *delim) {
  char *s = *sp;
  if (!s) return NULL;
  char *end = s + strcspn(s, delim);
  *sp = *end ? end + 1 : NULL;
  *end = '\0';
  return s;
}

NO_PATTERNS int strcasecmp(const char *a, const char *b) {
  const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;
  while (*p && tolower(*p) == tolower(*q)) p++, q++;
  return tolower(*p) - tolower(*q);
}

NO_PATTERNS int strncasecmp(const char *a, const char *b, size_t n) {
  const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;
  for (; n; n--, p++, q++) {
    int d = tolower(*p) - tolower(*q);
    if (d || !*p) return d;
  }
  return 0;
}

char *strcasestr(const char *h, const char *n) {
  size_t m = strlen(n);
  for (; *h; h++)
    if (strncasecmp(h, n, m) == 0) return (char *)h;
  return m ? NULL : (char *)h;
}

NO_PATTERNS void *memrchr(const void *s, int c, size_t n) {
  const unsigned char *p = (const unsigned char *)s + n;
  while (n--)
    if (*--p == (unsigned char)c) return (void *)p;
  return NULL;
}

void *mempcpy(void *restrict d, const void *restrict s, size_t n) { return (char *)memcpy(d, s, n) + n; }

void *memmem(const void *h, size_t hn, const void *n, size_t nn) {
  const unsigned char *p = h, *end = p + hn, *np = n;
  if (nn == 0) return (void *)h;
  while ((size_t)(end - p) >= nn) {
    p = memchr(p, np[0], (size_t)(end - p) - nn + 1);
    if (!p) return NULL;
    if (memcmp(p, np, nn) == 0) return (void *)p;
    p++;
  }
  return NULL;
}

char *strchrnul(const char *s, int c) {
  char *p = strchr(s, c);
  return p ? p : (char *)s + strlen(s);
}

char *stpcpy(char *restrict d, const char *restrict s) {
  size_t n = strlen(s);
  memcpy(d, s, n + 1);
  return d + n;
}

char *stpncpy(char *restrict d, const char *restrict s, size_t n) {
  size_t len = strnlen(s, n);
  memcpy(d, s, len);
  memset(d + len, 0, n - len);
  return d + len;
}

size_t strlcpy(char *restrict d, const char *restrict s, size_t n) {
  size_t len = strlen(s);
  if (n) {
    size_t k = len < n - 1 ? len : n - 1;
    memcpy(d, s, k);
    d[k] = '\0';
  }
  return len;
}

size_t strlcat(char *restrict d, const char *restrict s, size_t n) {
  size_t used = strnlen(d, n);
  return used == n ? n + strlen(s) : used + strlcpy(d + used, s, n - used);
}

char *strncat(char *restrict d, const char *restrict s, size_t n) {
  char *end = d + strlen(d);
  size_t len = strnlen(s, n);
  memcpy(end, s, len);
  end[len] = '\0';
  return d;
}

char *strndup(const char *s, size_t n) {
  size_t len = strnlen(s, n);
  char *d = malloc(len + 1);
  if (!d) return NULL;
  memcpy(d, s, len);
  d[len] = '\0';
  return d;
}

/* The C locale collates by byte value. */
int strcoll(const char *a, const char *b) { return strcmp(a, b); }

size_t strxfrm(char *restrict d, const char *restrict s, size_t n) {
  size_t len = strlen(s);
  if (len < n) memcpy(d, s, len + 1);
  return len;
}

void bzero(void *d, size_t n) { memset(d, 0, n); }
int bcmp(const void *a, const void *b, size_t n) { return memcmp(a, b, n); }
int ffs(int i) { return i ? __builtin_ctz((unsigned)i) + 1 : 0; }

static const char *error_text(int e) {
  switch (e) {
  case 0: return "Success";
  case EPERM: return "Operation not permitted";
  case ENOENT: return "No such file or directory";
  case EINTR: return "Interrupted system call";
  case EIO: return "Input/output error";
  case EBADF: return "Bad file descriptor";
  case EAGAIN: return "Resource temporarily unavailable";
  case ENOMEM: return "Cannot allocate memory";
  case EACCES: return "Permission denied";
  case EEXIST: return "File exists";
  case EINVAL: return "Invalid argument";
  case ENOSPC: return "No space left on device";
  case EDOM: return "Numerical argument out of domain";
  case ERANGE: return "Numerical result out of range";
  case ENOSYS: return "Function not implemented";
  case EOVERFLOW: return "Value too large for defined data type";
  case EILSEQ: return "Invalid or incomplete multibyte or wide character";
  case ENOTSUP: return "Operation not supported";
  default: return NULL;
  }
}

char *strerror(int errnum) {
  static char unknown[32];
  const char *text = error_text(errnum);
  if (text) return (char *)text;
  snprintf(unknown, sizeof unknown, "Unknown error %d", errnum);
  return unknown;
}

int strerror_r(int errnum, char *buf, size_t n) {
  const char *text = strerror(errnum);
  if (strlen(text) >= n) return ERANGE;
  strcpy(buf, text);
  return 0;
}

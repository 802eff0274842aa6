/*
 * Integer conversions: strtol and relatives. One parser reads the magnitude as
 * an unsigned 64-bit number with overflow detection; each function then
 * applies its own range, setting errno to ERANGE and clamping as C requires.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>

typedef struct {
  uint64_t magnitude;
  int negative, overflow, parsed;
  const char *end; /* first character not part of the number */
} parsed_int;

static int digit_value(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return 99;
}

static parsed_int parse_int(const char *s, int base) {
  parsed_int r = {0, 0, 0, 0, s};
  if (base < 0 || base == 1 || base > 36) {
    errno = EINVAL;
    return r;
  }
  const char *p = s;
  while (isspace((unsigned char)*p)) p++;
  if (*p == '+' || *p == '-') r.negative = *p++ == '-';
  /* "0x" counts as a prefix only when a hex digit follows; else the number is "0". */
  if ((base == 0 || base == 16) && p[0] == '0' && (p[1] | 32) == 'x' && digit_value((unsigned char)p[2]) < 16) {
    p += 2;
    base = 16;
  } else if (base == 0) {
    base = *p == '0' ? 8 : 10;
  }
  for (int d; (d = digit_value((unsigned char)*p)) < base; p++) {
    r.parsed = 1;
    if (__builtin_mul_overflow(r.magnitude, (uint64_t)base, &r.magnitude) ||
        __builtin_add_overflow(r.magnitude, (uint64_t)d, &r.magnitude))
      r.overflow = 1;
  }
  if (r.parsed) r.end = p;
  return r;
}

static void set_end(char **end, const parsed_int *r) {
  if (end) *end = (char *)r->end;
}

static int64_t to_signed(const parsed_int *r, int64_t min, int64_t max) {
  uint64_t limit = r->negative ? (uint64_t)max + 1 : (uint64_t)max;
  if (r->overflow || r->magnitude > limit) {
    errno = ERANGE;
    return r->negative ? min : max;
  }
  return r->negative ? (int64_t)(0 - r->magnitude) : (int64_t)r->magnitude;
}

static uint64_t to_unsigned(const parsed_int *r, uint64_t max) {
  if (r->overflow || r->magnitude > max) {
    errno = ERANGE;
    return max;
  }
  return r->negative ? (0 - r->magnitude) & max : r->magnitude; /* C: "-1" is ULONG_MAX */
}

long strtol(const char *restrict s, char **restrict end, int base) {
  parsed_int r = parse_int(s, base);
  set_end(end, &r);
  return (long)to_signed(&r, LONG_MIN, LONG_MAX);
}

long long strtoll(const char *restrict s, char **restrict end, int base) {
  parsed_int r = parse_int(s, base);
  set_end(end, &r);
  return (long long)to_signed(&r, LLONG_MIN, LLONG_MAX);
}

unsigned long strtoul(const char *restrict s, char **restrict end, int base) {
  parsed_int r = parse_int(s, base);
  set_end(end, &r);
  return (unsigned long)to_unsigned(&r, ULONG_MAX);
}

unsigned long long strtoull(const char *restrict s, char **restrict end, int base) {
  parsed_int r = parse_int(s, base);
  set_end(end, &r);
  return (unsigned long long)to_unsigned(&r, ULLONG_MAX);
}

intmax_t strtoimax(const char *restrict s, char **restrict end, int base) { return strtoll(s, end, base); }
uintmax_t strtoumax(const char *restrict s, char **restrict end, int base) { return strtoull(s, end, base); }

/* atoi and friends: undefined on overflow in C; here they wrap like a cast. */
int atoi(const char *s) { return (int)strtol(s, NULL, 10); }
long atol(const char *s) { return strtol(s, NULL, 10); }
long long atoll(const char *s) { return strtoll(s, NULL, 10); }

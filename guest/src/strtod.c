/*
 * strtod and strtof, correctly rounded (round-half-even) like glibc's.
 *
 * A decimal input is kept as its first MAX_DIGITS significant digits D, a
 * power of ten, and a sticky flag for any non-zero digit beyond them. An
 * estimate from x87 extended precision is then corrected exactly: the
 * candidate moves to its neighbour while the input lies beyond the midpoint
 * between them, which is decided by comparing big integers
 * D * 10^e10 against mid * 2^j. Hex floats are exact in binary and only need
 * one rounding. Results are built from (m, k), meaning m * 2^k, for the
 * target format, so subnormals and overflow need no special cases.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vmlet.h"

#define MAX_DIGITS 800 /* a double's midpoints need at most 768 significant digits */
#define LIMBS 240      /* 7680 bits: D * 2^1076 or 2^55 * 10^1125, the largest products */

typedef struct {
  int precision; /* significand bits including the leading one */
  int min_k;     /* exponent k of the smallest subnormal, 1 * 2^k */
  int max_k;     /* exponent k of the largest finite value */
} format;

static const format DOUBLE = {53, -1074, 971};
static const format FLOAT = {24, -149, 104};

typedef struct {
  uint64_t m;
  int k;
} binary; /* m * 2^k; k > max_k means infinity */

/* ---- big integers: little-endian base-2^32 limbs -------------------------- */

typedef struct {
  uint32_t limb[LIMBS];
  int n;
} bigint;

static void big_set(bigint *a, uint64_t v) {
  a->n = 0;
  for (; v; v >>= 32) a->limb[a->n++] = (uint32_t)v;
}

static void big_mul_add(bigint *a, uint32_t f, uint32_t add) {
  uint64_t carry = add;
  for (int i = 0; i < a->n; i++) {
    carry += (uint64_t)a->limb[i] * f;
    a->limb[i] = (uint32_t)carry;
    carry >>= 32;
  }
  if (carry) {
    if (a->n == LIMBS) vmlet_panic("strtod: big integer overflow");
    a->limb[a->n++] = (uint32_t)carry;
  }
}

static void big_mul_pow10(bigint *a, int e) {
  for (; e >= 9; e -= 9) big_mul_add(a, 1000000000u, 0);
  static const uint32_t small[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};
  if (e) big_mul_add(a, small[e], 0);
}

static void big_shift_left(bigint *a, int bits) {
  if (a->n == 0) return;
  int words = bits / 32, rest = bits % 32;
  if (a->n + words + 1 > LIMBS) vmlet_panic("strtod: big integer overflow");
  a->limb[a->n + words] = 0;
  for (int i = a->n - 1; i >= 0; i--) {
    uint64_t v = (uint64_t)a->limb[i] << rest;
    a->limb[i + words + 1] |= (uint32_t)(v >> 32);
    a->limb[i + words] = (uint32_t)v;
  }
  for (int i = 0; i < words; i++) a->limb[i] = 0;
  a->n += words + 1;
  while (a->n && !a->limb[a->n - 1]) a->n--;
}

static int big_cmp(const bigint *a, const bigint *b) {
  if (a->n != b->n) return a->n < b->n ? -1 : 1;
  for (int i = a->n - 1; i >= 0; i--)
    if (a->limb[i] != b->limb[i]) return a->limb[i] < b->limb[i] ? -1 : 1;
  return 0;
}

/* ---- candidates and their neighbours -------------------------------------- */

static binary up(binary c, const format *f) {
  c.m++;
  if (c.m == 1ull << f->precision) c.m >>= 1, c.k++;
  return c;
}

static binary down(binary c, const format *f) {
  if (c.m == 1ull << (f->precision - 1) && c.k > f->min_k) return (binary){(1ull << f->precision) - 1, c.k - 1};
  c.m--;
  return c;
}

/* The midpoint of a and b as M * 2^j. */
static void midpoint(binary a, binary b, uint64_t *mid, int *j) {
  int k = a.k < b.k ? a.k : b.k;
  *mid = (a.m << (a.k - k)) + (b.m << (b.k - k));
  *j = k - 1;
}

typedef struct {
  char digits[MAX_DIGITS];
  int n;       /* digits kept, the first non-zero */
  int e10;     /* value = digits * 10^e10 (+ sticky) */
  int sticky;  /* a non-zero digit was dropped */
} decimal;

/* Compares the decimal with mid * 2^j exactly. */
static int compare(const decimal *d, uint64_t mid, int j) {
  static bigint a, b; /* 2 KB each: too big for comfort on the guest's stack */
  big_set(&a, 0);
  for (int i = 0; i < d->n; i += 9) {
    uint32_t chunk = 0, scale = 1;
    for (int t = i; t < d->n && t < i + 9; t++) chunk = chunk * 10 + (uint32_t)(d->digits[t] - '0'), scale *= 10;
    big_mul_add(&a, scale, chunk);
  }
  big_set(&b, mid);
  if (d->e10 >= 0) big_mul_pow10(&a, d->e10);
  else big_mul_pow10(&b, -d->e10);
  if (j >= 0) big_shift_left(&b, j);
  else big_shift_left(&a, -j);
  int c = big_cmp(&a, &b);
  return c == 0 && d->sticky ? 1 : c;
}

/* Rounds (mant + sticky) * 2^e, mant != 0, to the format: one exact rounding. */
static binary round_binary(uint64_t mant, int e, int sticky, const format *f) {
  int lead = 63 - __builtin_clzll(mant);
  int shift = lead + 1 - f->precision; /* bits to drop */
  if (e + shift < f->min_k) shift = f->min_k - e;
  if (shift <= 0) return (binary){mant << -shift, e + shift}; /* exact; may be non-canonical below */
  uint64_t kept = shift >= 64 ? 0 : mant >> shift;
  uint64_t rest = shift >= 64 ? mant : mant & ((1ull << shift) - 1);
  uint64_t half = shift > 64 ? 0 : 1ull << (shift - 1);
  int round_up = shift > 64 ? 0 : rest > half || (rest == half && (sticky || (kept & 1)));
  binary c = {kept, e + shift};
  if (round_up) c = up(c, f);
  return c;
}

/* Normalises an exact small value to the canonical (m, k) form. */
static binary canonical(binary c, const format *f) {
  if (c.m == 0) return (binary){0, f->min_k};
  while (c.m < 1ull << (f->precision - 1) && c.k > f->min_k) c.m <<= 1, c.k--;
  return c;
}

/* Extended-precision estimate of the decimal, truncated to the format. */
static binary estimate(const decimal *d, const format *f) {
  uint64_t top = 0;
  int used = d->n < 19 ? d->n : 19;
  for (int i = 0; i < used; i++) top = top * 10 + (uint64_t)(d->digits[i] - '0');
  int e = d->e10 + (d->n - used);
  long double x = (long double)top, p = 10.0L;
  for (int k = e < 0 ? -e : e; k; k >>= 1, p *= p)
    if (k & 1) x = e < 0 ? x / p : x * p;
  union { long double f; struct { uint64_t mant; uint16_t se; } p; } u = {x};
  return round_binary(u.p.mant, (u.p.se & 0x7fff) - 16383 - 63, 0, f);
}

static binary correct(const decimal *d, binary c, const format *f) {
  for (int guard = 0; guard < 64; guard++) {
    uint64_t mid;
    int j, cmp;
    binary hi = up(c, f);
    midpoint(c, hi, &mid, &j);
    cmp = compare(d, mid, j);
    if (cmp > 0 || (cmp == 0 && (c.m & 1))) {
      c = hi;
      if (c.k > f->max_k) return c;
      continue;
    }
    if (c.m == 0) return c;
    binary lo = down(c, f);
    midpoint(lo, c, &mid, &j);
    cmp = compare(d, mid, j);
    if (cmp < 0 || (cmp == 0 && (c.m & 1))) {
      c = lo;
      continue;
    }
    return c;
  }
  vmlet_panic("strtod: rounding did not converge");
}

/* ---- parsing ---------------------------------------------------------------- */

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  c |= 32;
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Reads an exponent ("e-12", "p+3") after p; returns p unchanged when there is none. */
static const char *parse_exponent(const char *p, char letter, long *exp) {
  const char *q = p;
  if ((*q | 32) != letter) return p;
  q++;
  int neg = *q == '-';
  if (*q == '+' || *q == '-') q++;
  if (!isdigit((unsigned char)*q)) return p;
  long v = 0;
  for (; isdigit((unsigned char)*q); q++)
    if (v < 100000000) v = v * 10 + (*q - '0');
  *exp = neg ? -v : v;
  return q;
}

/* Parses decimal digits at p; returns the end, or p if there were no digits. */
static const char *parse_decimal(const char *p, decimal *d) {
  const char *start = p;
  int any = 0, point = 0;
  d->n = 0, d->e10 = 0, d->sticky = 0;
  for (;; p++) {
    if (*p == '.' && !point) {
      point = 1;
      continue;
    }
    if (!isdigit((unsigned char)*p)) break;
    any = 1;
    if (*p == '0' && d->n == 0) {
      if (point) d->e10--;
      continue;
    }
    if (d->n < MAX_DIGITS) {
      d->digits[d->n++] = *p;
      if (point) d->e10--;
    } else {
      d->sticky |= *p != '0';
      if (!point) d->e10++;
    }
  }
  if (!any) return start;
  long exp = 0;
  p = parse_exponent(p, 'e', &exp);
  d->e10 = (int)(d->e10 + exp < -100000 ? -100000 : d->e10 + exp > 100000 ? 100000 : d->e10 + exp);
  return p;
}

/* Parses hex digits after "0x"; returns the end, or p if there were none. */
static const char *parse_hex(const char *p, uint64_t *mant, long *e2, int *sticky) {
  const char *start = p;
  int any = 0, point = 0;
  *mant = 0, *e2 = 0, *sticky = 0;
  for (;; p++) {
    if (*p == '.' && !point) {
      point = 1;
      continue;
    }
    int v = hexval((unsigned char)*p);
    if (v < 0) break;
    any = 1;
    if (*mant >> 60 == 0) {
      *mant = *mant << 4 | (uint64_t)v;
      if (point) *e2 -= 4;
    } else {
      *sticky |= v != 0;
      if (!point) *e2 += 4;
    }
  }
  if (!any) return start;
  long exp = 0;
  p = parse_exponent(p, 'p', &exp);
  *e2 += exp;
  return p;
}

static int match_word(const char *p, const char *word) { return strncasecmp(p, word, strlen(word)) == 0; }

typedef struct {
  enum { FINITE, INF, NOT_A_NUMBER } kind;
  binary value;
  int nonzero; /* the input was not zero: a zero or subnormal result is an underflow */
  const char *end;
} parsed;

static parsed parse(const char *s, const format *f, int *negative) {
  parsed r = {FINITE, {0, f->min_k}, 0, s};
  const char *p = s;
  while (isspace((unsigned char)*p)) p++;
  *negative = *p == '-';
  if (*p == '+' || *p == '-') p++;
  if (match_word(p, "inf")) {
    r.kind = INF;
    r.end = p + (match_word(p, "infinity") ? 8 : 3);
    return r;
  }
  if (match_word(p, "nan")) {
    r.kind = NOT_A_NUMBER;
    r.end = p + 3;
    const char *q = p + 3;
    if (*q == '(') {
      for (q++; isalnum((unsigned char)*q) || *q == '_'; q++) {
      }
      if (*q == ')') r.end = q + 1;
    }
    return r;
  }
  if (p[0] == '0' && (p[1] | 32) == 'x') {
    uint64_t mant;
    long e2;
    int sticky;
    const char *end = parse_hex(p + 2, &mant, &e2, &sticky);
    if (end != p + 2) {
      r.end = end;
      if (mant == 0) return r;
      r.nonzero = 1;
      if (e2 > 100000) e2 = 100000;
      if (e2 < -100000) e2 = -100000;
      r.value = canonical(round_binary(mant, (int)e2, sticky, f), f);
      return r;
    } /* "0x" without digits: the number is the "0" */
  }
  static decimal d; /* 800 bytes */
  const char *end = parse_decimal(p, &d);
  if (end == p) return r;
  r.end = end;
  if (d.n == 0) return r;
  r.nonzero = 1;
  int position = d.e10 + d.n; /* the value lies in [10^(position-1), 10^position) */
  if (position > 310) r.value.k = f->max_k + 1;
  else if (position >= -324) r.value = correct(&d, estimate(&d, f), f);
  return r;
}

static uint64_t to_bits(binary c, const format *f) {
  uint64_t hidden = 1ull << (f->precision - 1);
  if (c.m < hidden) return c.m; /* subnormal or zero */
  return ((uint64_t)(c.k - f->min_k + 1) << (f->precision - 1)) + (c.m - hidden);
}

/* The result as the format's bits; sets errno on overflow and underflow. */
static uint64_t result_bits(const parsed *r, const format *f) {
  uint64_t infinity = (uint64_t)((1 << (f->precision == 53 ? 11 : 8)) - 1) << (f->precision - 1);
  if (r->kind == INF) return infinity;
  if (r->value.k > f->max_k) {
    errno = ERANGE;
    return infinity;
  }
  if (r->nonzero && r->value.m < 1ull << (f->precision - 1)) errno = ERANGE;
  return to_bits(r->value, f);
}

double strtod(const char *restrict s, char **restrict end) {
  int negative;
  parsed r = parse(s, &DOUBLE, &negative);
  if (end) *end = (char *)r.end;
  if (r.end == s) return 0; /* no number: +0, whatever sign was read */
  if (r.kind == NOT_A_NUMBER) return negative ? -(double)NAN : (double)NAN;
  uint64_t bits = result_bits(&r, &DOUBLE) | (uint64_t)negative << 63;
  double x;
  memcpy(&x, &bits, sizeof x);
  return x;
}

float strtof(const char *restrict s, char **restrict end) {
  int negative;
  parsed r = parse(s, &FLOAT, &negative);
  if (end) *end = (char *)r.end;
  if (r.end == s) return 0;
  if (r.kind == NOT_A_NUMBER) return negative ? -NAN : NAN;
  uint32_t bits = (uint32_t)result_bits(&r, &FLOAT) | (uint32_t)negative << 31;
  float x;
  memcpy(&x, &bits, sizeof x);
  return x;
}

/* long double is double precision here: guests get no 80-bit conversions. */
long double strtold(const char *restrict s, char **restrict end) { return strtod(s, end); }

double atof(const char *s) { return strtod(s, NULL); }

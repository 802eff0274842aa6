/*
 * Trigonometric functions. sin, cos and tan first reduce x to r in
 * [-pi/4, pi/4] with x = n * pi/2 + r, exactly enough for every double: the
 * product of x's 53-bit significand with a 192-bit window of the bits of 2/pi
 * (Payne and Hanek's method) gives n mod 4 and 128 bits of the fraction.
 */
#include "math_x87.h"

/* Bits of 2/pi after the binary point, most significant first (computed from
 * Machin's formula for pi with exact integer arithmetic). */
static const uint64_t TWO_OVER_PI[24] = {
    0xa2f9836e4e441529ull, 0xfc2757d1f534ddc0ull, 0xdb6295993c439041ull, 0xfe5163abdebbc561ull,
    0xb7246e3a424dd2e0ull, 0x06492eea09d1921cull, 0xfe1deb1cb129a73eull, 0xe88235f52ebb4484ull,
    0xe99c7026b45f7e41ull, 0x3991d639835339f4ull, 0x9c845f8bbdf9283bull, 0x1ff897ffde05980full,
    0xef2f118b5a0a6d1full, 0x6d367ecf27cb09b7ull, 0x4f463f669e5fea2dull, 0x7527bac7ebe5f17bull,
    0x3d0739f78a5292eaull, 0x6bfb5fb11f8d5d08ull, 0x56033046fc7b6babull, 0xf0cfbc209af4361dull,
    0xa9e391615ee61b08ull, 0x6599855f14a06840ull, 0x8dffd8804d732731ull, 0x06061556ca73a8c9ull,
};

typedef unsigned __int128 u128;

/* 64 bits of 2/pi starting at bit `first` (0 = the first bit after the point). */
static uint64_t bits_at(int first) {
  int w = first / 64, s = first % 64;
  uint64_t hi = TWO_OVER_PI[w];
  return s ? hi << s | TWO_OVER_PI[w + 1] >> (64 - s) : hi;
}

/* Returns n mod 4 and sets *r so that x = n * pi/2 + r, |r| <= pi/4 (x finite). */
static int reduce(double x, ld *r) {
  if (__builtin_fabs(x) <= 0.78539816339744830962) {
    *r = x;
    return 0;
  }
  union { double f; uint64_t u; } v = {x};
  uint64_t m = (v.u & ((1ull << 52) - 1)) | (1ull << 52);
  int e = (int)(v.u >> 52 & 0x7ff) - 1075; /* |x| = m * 2^e, and |x| > pi/4 so x is normal */
  /* Bits of 2/pi with weight 2^-i, i <= e - 2, only add multiples of 4 to x * 2/pi. */
  int first = e - 2 > 0 ? e - 2 : 0;
  uint64_t w2 = bits_at(first), w1 = bits_at(first + 64), w0 = bits_at(first + 128);
  /* P = m * W, where W is the 192-bit window: 4 words, least significant first. */
  u128 p0 = (u128)m * w0, p1 = (u128)m * w1, p2 = (u128)m * w2;
  uint64_t q0 = (uint64_t)p0;
  u128 t = (p0 >> 64) + (uint64_t)p1;
  uint64_t q1 = (uint64_t)t;
  t = (t >> 64) + (p1 >> 64) + (uint64_t)p2;
  uint64_t q2 = (uint64_t)t;
  uint64_t q3 = (uint64_t)((t >> 64) + (p2 >> 64));
  /* x * 2/pi = P * 2^(e - first - 192): the binary point lies `point` bits up. */
  int point = first + 192 - e; /* between 130 and 244 */
  /* The 2 integer bits above the point and 128 fraction bits below it. */
  uint64_t words[4] = {q0, q1, q2, q3};
  int below = point - 128; /* bit index of the fraction's lowest bit */
  uint64_t lo = 0, hi = 0, n;
  for (int k = 0; k < 64; k++) {
    int b = below + k;
    lo |= (words[b / 64] >> (b % 64) & 1) << k;
    b = below + 64 + k;
    hi |= (words[b / 64] >> (b % 64) & 1) << k;
  }
  n = (words[point / 64] >> (point % 64) & 1) | (words[(point + 1) / 64] >> ((point + 1) % 64) & 1) << 1;
  u128 frac = (u128)hi << 64 | lo;
  int negative = 0;
  if (hi >> 63) { /* fraction >= 1/2: round n up, r becomes negative */
    n++;
    frac = -frac;
    negative = 1;
  }
  /* frac * 2^-128 as a long double: the top 64 bits after normalising. */
  int lz = frac >> 64 ? __builtin_clzll((uint64_t)(frac >> 64)) : 64 + __builtin_clzll((uint64_t)frac | 1);
  uint64_t top = (uint64_t)((frac << lz) >> 64);
  ld f = x87_scale((ld)top, -(ld)(lz + 64));
  ld rr = f * PI_2;
  if (negative) rr = -rr;
  if (x < 0) {
    rr = -rr;
    n = -n;
  }
  *r = rr;
  return (int)(n & 3);
}

double sin(double x) {
  if (!__builtin_isfinite(x)) return __builtin_isnan(x) ? x + x : domain_error();
  ld r;
  switch (reduce(x, &r)) {
  case 0: return (double)x87_sin(r);
  case 1: return (double)x87_cos(r);
  case 2: return (double)-x87_sin(r);
  default: return (double)-x87_cos(r);
  }
}

double cos(double x) {
  if (!__builtin_isfinite(x)) return __builtin_isnan(x) ? x + x : domain_error();
  ld r;
  switch (reduce(x, &r)) {
  case 0: return (double)x87_cos(r);
  case 1: return (double)-x87_sin(r);
  case 2: return (double)-x87_cos(r);
  default: return (double)x87_sin(r);
  }
}

double tan(double x) {
  if (!__builtin_isfinite(x)) return __builtin_isnan(x) ? x + x : domain_error();
  ld r;
  int n = reduce(x, &r);
  ld t = x87_tan(r);
  return (double)(n & 1 ? -1 / t : t);
}

double atan2(double y, double x) {
  if (__builtin_isnan(x) || __builtin_isnan(y)) return x + y;
  return to_double(x87_atan2(y, x));
}

double atan(double x) {
  if (__builtin_isnan(x)) return x + x;
  return to_double(x87_atan2(x, 1));
}

double asin(double x) {
  if (__builtin_isnan(x)) return x + x;
  if (__builtin_fabs(x) > 1) return domain_error();
  ld a = x;
  return to_double(x87_atan2(a, x87_sqrt((1 - a) * (1 + a))));
}

double acos(double x) {
  if (__builtin_isnan(x)) return x + x;
  if (__builtin_fabs(x) > 1) return domain_error();
  ld a = x;
  return (double)x87_atan2(x87_sqrt((1 - a) * (1 + a)), a);
}

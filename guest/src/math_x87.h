/*
 * Internal to the guest libm: x87 extended precision (64-bit significand)
 * building blocks. Each double function is computed in long double and
 * rounded once to double, so 11 spare bits absorb the errors of the steps
 * below and results stay within 1 ulp. The x87 precision-control field must
 * be "extended" (the x86-64 default, and what guests start with).
 */
#ifndef VMLET_MATH_X87_H
#define VMLET_MATH_X87_H

#include <errno.h>
#include <math.h>
#include <stdint.h>

typedef long double ld;

/* ln 2 = LN2_HI + LN2_LO to about 106 bits; LN2_HI has 40 bits so n * LN2_HI is exact. */
#define LN2_HI 0xb17217f7d2p-40L
#define LN2_LO (-0xc21950d871319ff0p-106L)
#define PI_2 0xc90fdaa22168c235p-63L /* pi/2 rounded to 64 bits */

static inline ld x87_ln2(void) { ld r; __asm__("fldln2" : "=t"(r)); return r; }
static inline ld x87_lg2(void) { ld r; __asm__("fldlg2" : "=t"(r)); return r; } /* log10(2) */
static inline ld x87_pi(void) { ld r; __asm__("fldpi" : "=t"(r)); return r; }

/* y * log2(x), x > 0 */
static inline ld x87_yl2x(ld x, ld y) { ld r; __asm__("fyl2x" : "=t"(r) : "0"(x), "u"(y) : "st(1)"); return r; }
/* y * log2(1 + x), |x| < 1 - sqrt(2)/2 */
static inline ld x87_yl2xp1(ld x, ld y) { ld r; __asm__("fyl2xp1" : "=t"(r) : "0"(x), "u"(y) : "st(1)"); return r; }
/* 2^x - 1, |x| <= 1 */
static inline ld x87_2xm1(ld x) { ld r; __asm__("f2xm1" : "=t"(r) : "0"(x)); return r; }
/* x * 2^trunc(n) */
static inline ld x87_scale(ld x, ld n) { ld r; __asm__("fscale" : "=t"(r) : "0"(x), "u"(n)); return r; }
/* x rounded to an integer, half to even */
static inline ld x87_rint(ld x) { ld r; __asm__("frndint" : "=t"(r) : "0"(x)); return r; }
static inline ld x87_sqrt(ld x) { ld r; __asm__("fsqrt" : "=t"(r) : "0"(x)); return r; }
/* sin, cos and tan are exact to the last bit only for |x| <= pi/4: callers reduce first. */
static inline ld x87_sin(ld x) { ld r; __asm__("fsin" : "=t"(r) : "0"(x)); return r; }
static inline ld x87_cos(ld x) { ld r; __asm__("fcos" : "=t"(r) : "0"(x)); return r; }
static inline ld x87_tan(ld x) { ld one, r; __asm__("fptan" : "=t"(one), "=u"(r) : "0"(x)); (void)one; return r; }
/* atan2(y, x) with the quadrant */
static inline ld x87_atan2(ld y, ld x) { ld r; __asm__("fpatan" : "=t"(r) : "0"(x), "u"(y) : "st(1)"); return r; }

static inline ld ld_fabs(ld x) { return x < 0 ? -x : x; }

/* ln(x), x > 0 finite; near 1 through log2(1 + (x - 1)), where x - 1 is exact. */
static inline ld ld_log(ld x) {
  ld d = x - 1;
  return ld_fabs(d) < 0.29L ? x87_yl2xp1(d, x87_ln2()) : x87_yl2x(x, x87_ln2());
}

/* ln(1 + x), x > -1 */
static inline ld ld_log1p(ld x) { return ld_fabs(x) < 0.29L ? x87_yl2xp1(x, x87_ln2()) : x87_yl2x(1 + x, x87_ln2()); }

/* 2^x for any x (overflows to inf, underflows to 0 in the long double range). */
static inline ld ld_exp2(ld x) {
  if (x > 20000) return (ld)INFINITY;
  if (x < -20000) return 0;
  ld n = x87_rint(x);
  return x87_scale(x87_2xm1(x - n) + 1, n);
}

/* e^x: x = n ln2 + r with the 106-bit ln 2, so r keeps its precision for large x. */
static inline ld ld_exp(ld x) {
  if (x > 12000) return (ld)INFINITY;
  if (x < -12000) return 0;
  static const ld log2e = 0xb8aa3b295c17f0bcp-63L;
  ld n = x87_rint(x * log2e);
  ld r = (x - n * LN2_HI) - n * LN2_LO;
  return x87_scale(x87_2xm1(r * log2e) + 1, n);
}

/* e^x - 1, accurate near 0 */
static inline ld ld_expm1(ld x) {
  static const ld log2e = 0xb8aa3b295c17f0bcp-63L;
  if (ld_fabs(x) < 0.5L) return x87_2xm1(x * log2e);
  return ld_exp(x) - 1;
}

/* The double result of a computation, with errno set for overflow and underflow. */
static inline double to_double(ld exact) {
  double r = (double)exact;
  if (__builtin_isinf(r) && !__builtin_isinf(exact)) errno = ERANGE;
  else if (r == 0 && exact != 0) errno = ERANGE;
  return r;
}

static inline double domain_error(void) {
  errno = EDOM;
  return (double)NAN;
}

static inline double pole_error(double inf) {
  errno = ERANGE;
  return inf;
}

#endif

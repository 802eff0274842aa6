/* Exponentials, logarithms, powers, roots and the hyperbolic functions (see math_x87.h). */
#include "math_x87.h"

double exp(double x) {
  if (__builtin_isnan(x)) return x + x;
  return to_double(ld_exp(x));
}

double exp2(double x) {
  if (__builtin_isnan(x)) return x + x;
  return to_double(ld_exp2(x));
}

double expm1(double x) {
  if (__builtin_isnan(x)) return x + x;
  if (x == -INFINITY) return -1;
  return to_double(ld_expm1(x));
}

/* scale * log2(x) for the log family, with C's special cases. */
static double log_scaled(double x, ld scale) {
  if (__builtin_isnan(x)) return x + x;
  if (x < 0) return domain_error();
  if (x == 0) return pole_error(-HUGE_VAL);
  if (x == INFINITY) return x;
  ld d = (ld)x - 1; /* exact */
  return (double)(ld_fabs(d) < 0.29L ? x87_yl2xp1(d, scale) : x87_yl2x(x, scale));
}

double log(double x) { return log_scaled(x, x87_ln2()); }
double log2(double x) { return log_scaled(x, 1); }
double log10(double x) { return log_scaled(x, x87_lg2()); }

double log1p(double x) {
  if (__builtin_isnan(x)) return x + x;
  if (x < -1) return domain_error();
  if (x == -1) return pole_error(-HUGE_VAL);
  if (x == INFINITY) return x;
  return (double)ld_log1p(x);
}

/* x = m * 2^e with m in [sqrt(1/2), sqrt(2)), for finite x > 0. */
static double split(double x, int *e) {
  union { double f; uint64_t u; } v = {x};
  int bias = 0;
  if (!(v.u >> 52)) { /* subnormal: make it normal first */
    v.f *= 0x1p64;
    bias = 64;
  }
  *e = (int)(v.u >> 52) - 1022 - bias;
  v.u = (v.u & ((1ull << 52) - 1)) | (1022ull << 52); /* [0.5, 1) */
  if (v.f < 0.70710678118654752440) v.f *= 2, --*e;
  return v.f;
}

static int is_integer(double y) { return __builtin_fabs(y) >= 0x1p52 || y == (double)(int64_t)y; }
static int is_odd_integer(double y) { return __builtin_fabs(y) < 0x1p53 && y == (double)(int64_t)y && ((int64_t)y & 1); }

/* x^y for finite x > 0: 2^(y*e + y*log2(m)), where y*e is exact in long double. */
static ld pow_positive(double x, double y) {
  int e;
  double m = split(x, &e);
  ld a = (ld)y * e;
  ld b = __builtin_fabs(m - 1) < 0.29 ? x87_yl2xp1(m - 1, y) : x87_yl2x(m, y);
  ld na = x87_rint(a), u = (a - na) + b, nb = x87_rint(u), n = na + nb;
  if (n > 20000) return (ld)INFINITY;
  if (n < -20000) return 0;
  return x87_scale(x87_2xm1(u - nb) + 1, n);
}

double pow(double x, double y) {
  if (y == 0 || x == 1) return 1;
  if (__builtin_isnan(x) || __builtin_isnan(y)) return x + y;
  if (__builtin_isinf(y)) {
    double ax = __builtin_fabs(x);
    if (ax == 1) return 1;
    return (ax < 1) == (y < 0) ? INFINITY : 0.0;
  }
  int odd = is_odd_integer(y);
  if (x == 0) {
    if (y < 0) return pole_error(odd ? __builtin_copysign(HUGE_VAL, x) : HUGE_VAL);
    return odd ? x : 0.0;
  }
  if (__builtin_isinf(x)) {
    double r = y < 0 ? 0.0 : INFINITY;
    return x < 0 && odd ? -r : r;
  }
  int negate = 0;
  if (x < 0) {
    if (!is_integer(y)) return domain_error();
    negate = odd;
    x = -x;
  }
  double r = to_double(pow_positive(x, y));
  return negate ? -r : r;
}

double cbrt(double x) {
  if (!__builtin_isfinite(x) || x == 0) return x + x;
  ld a = ld_fabs(x);
  ld y = ld_exp2(x87_yl2x(a, 1) / 3);
  y -= (y * y * y - a) / (3 * y * y); /* one Newton step: the estimate's error squared */
  return (double)(x < 0 ? -y : y);
}

double hypot(double x, double y) {
  if (__builtin_isinf(x) || __builtin_isinf(y)) return INFINITY;
  if (__builtin_isnan(x) || __builtin_isnan(y)) return x + y;
  return to_double(x87_sqrt((ld)x * x + (ld)y * y));
}

double sqrt(double x) {
  if (x < 0) return domain_error();
  __asm__("sqrtsd %1, %0" : "=x"(x) : "x"(x));
  return x;
}

double sinh(double x) {
  if (!__builtin_isfinite(x) || x == 0) return x + x;
  ld e = ld_expm1(ld_fabs(x));
  ld s = (e + e / (e + 1)) / 2;
  return to_double(x < 0 ? -s : s);
}

double cosh(double x) {
  if (__builtin_isnan(x)) return x + x;
  if (__builtin_isinf(x)) return INFINITY;
  ld e = ld_exp(ld_fabs(x));
  return to_double((e + 1 / e) / 2);
}

double tanh(double x) {
  if (__builtin_isnan(x) || x == 0) return x + x;
  if (__builtin_fabs(x) > 22) return x < 0 ? -1.0 : 1.0;
  ld e = ld_expm1(2 * ld_fabs(x));
  ld t = e / (e + 2);
  return to_double(x < 0 ? -t : t);
}

double asinh(double x) {
  if (!__builtin_isfinite(x) || x == 0) return x + x;
  ld a = ld_fabs(x), r;
  if (a > 0x1p32) r = ld_log(a) + x87_ln2();
  else r = ld_log1p(a + a * a / (1 + x87_sqrt(1 + a * a)));
  return (double)(x < 0 ? -r : r);
}

double acosh(double x) {
  if (__builtin_isnan(x)) return x + x;
  if (x < 1) return domain_error();
  if (x == INFINITY) return x;
  ld a = x, r;
  if (a > 0x1p32) r = ld_log(a) + x87_ln2();
  else r = ld_log1p((a - 1) + x87_sqrt((a - 1) * (a + 1)));
  return (double)r;
}

double atanh(double x) {
  if (__builtin_isnan(x) || x == 0) return x + x;
  double a = __builtin_fabs(x);
  if (a > 1) return domain_error();
  if (a == 1) return pole_error(__builtin_copysign(HUGE_VAL, x));
  ld r = ld_log1p(2 * (ld)a / (1 - (ld)a)) / 2;
  return to_double(x < 0 ? -r : r);
}

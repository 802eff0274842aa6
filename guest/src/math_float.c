/*
 * The float functions of <math.h>: each computes in double and rounds once
 * more. A double result within 1 ulp (2^-29 float ulps) rounds to within
 * half a float ulp plus that, and sqrt stays correctly rounded.
 */
#include <errno.h>
#include <math.h>

static float to_float(double r) {
  float f = (float)r;
  if ((__builtin_isinf(f) && !__builtin_isinf(r)) || (f == 0 && r != 0)) errno = ERANGE;
  return f;
}

#define FLOAT1(name) \
  float name##f(float x) { return to_float(name(x)); }
#define FLOAT2(name) \
  float name##f(float x, float y) { return to_float(name(x, y)); }

FLOAT1(acos) FLOAT1(asin) FLOAT1(atan) FLOAT2(atan2) FLOAT1(cos) FLOAT1(sin) FLOAT1(tan)
FLOAT1(acosh) FLOAT1(asinh) FLOAT1(atanh) FLOAT1(cosh) FLOAT1(sinh) FLOAT1(tanh)
FLOAT1(exp) FLOAT1(exp2) FLOAT1(expm1) FLOAT1(log) FLOAT1(log10) FLOAT1(log1p) FLOAT1(log2) FLOAT1(logb)
FLOAT1(cbrt) FLOAT1(fabs) FLOAT2(hypot) FLOAT2(pow) FLOAT1(sqrt)
FLOAT1(erf) FLOAT1(erfc) FLOAT1(lgamma) FLOAT1(tgamma)
FLOAT1(ceil) FLOAT1(floor) FLOAT1(nearbyint) FLOAT1(rint) FLOAT1(round) FLOAT1(trunc)
FLOAT2(fmod) FLOAT2(remainder) FLOAT2(copysign) FLOAT2(fdim) FLOAT2(fmax) FLOAT2(fmin)

/* nextafterf steps in float's own spacing. */
float nextafterf(float x, float y) {
  if (__builtin_isnan(x) || __builtin_isnan(y)) return x + y;
  if (x == y) return y;
  union { float f; unsigned u; } v = {x};
  if (x == 0) v.u = 1 | (((union { float f; unsigned u; }){y}.u) & 0x80000000u);
  else if ((x < y) == (x > 0)) v.u++;
  else v.u--;
  if (!__builtin_isfinite(v.f) || !__builtin_isnormal(v.f)) errno = ERANGE;
  return v.f;
}

float nexttowardf(float x, long double y) {
  if (__builtin_isnan(y)) return (float)y;
  return (long double)x == y ? (float)y : nextafterf(x, (long double)x < y ? INFINITY : -INFINITY);
}

float frexpf(float x, int *e) { return (float)frexp(x, e); }
float ldexpf(float x, int e) { return to_float(ldexp(x, e)); }
float scalbnf(float x, int e) { return to_float(scalbn(x, e)); }
float scalblnf(float x, long e) { return to_float(scalbln(x, e)); }
int ilogbf(float x) { return ilogb(x); }
float remquof(float x, float y, int *q) { return (float)remquo(x, y, q); }
long lroundf(float x) { return lround(x); }
long long llroundf(float x) { return llround(x); }
long lrintf(float x) { return lrint(x); }
long long llrintf(float x) { return llrint(x); }
float nanf(const char *tag) { return (float)nan(tag); }

float modff(float x, float *ip) {
  double i, r = modf(x, &i);
  *ip = (float)i;
  return (float)r;
}

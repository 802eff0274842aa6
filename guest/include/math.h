/*
 * The guest's libm (guest/src/math_*.c): every double function of C99 <math.h>
 * and its float variant. Results are within 1 ulp of glibc's on the inputs
 * guest/test/libm_host_test.c draws (100,000 per function). Errors are
 * reported in the result (NaN, +-HUGE_VAL, 0) and errno (EDOM, ERANGE), as
 * glibc does (math_errhandling includes MATH_ERRNO). long double variants are
 * not provided.
 */
#ifndef VMLET_MATH_H
#define VMLET_MATH_H

#include "vmlet_c_begin.h"

typedef float float_t;
typedef double double_t;

#define HUGE_VAL (__builtin_huge_val())
#define HUGE_VALF (__builtin_huge_valf())
#define INFINITY (__builtin_inff())
#define NAN (__builtin_nanf(""))
#define MATH_ERRNO 1
#define MATH_ERREXCEPT 2
#define math_errhandling MATH_ERRNO
#define FP_ILOGB0 (-2147483647 - 1)
#define FP_ILOGBNAN (-2147483647 - 1)

#define FP_NAN 0
#define FP_INFINITE 1
#define FP_ZERO 2
#define FP_SUBNORMAL 3
#define FP_NORMAL 4
#define fpclassify(x) __builtin_fpclassify(FP_NAN, FP_INFINITE, FP_NORMAL, FP_SUBNORMAL, FP_ZERO, x)
#define isfinite(x) __builtin_isfinite(x)
#define isinf(x) __builtin_isinf_sign(x)
#define isnan(x) __builtin_isnan(x)
#define isnormal(x) __builtin_isnormal(x)
#define signbit(x) __builtin_signbit(x)
#define isgreater(x, y) __builtin_isgreater(x, y)
#define isgreaterequal(x, y) __builtin_isgreaterequal(x, y)
#define isless(x, y) __builtin_isless(x, y)
#define islessequal(x, y) __builtin_islessequal(x, y)
#define islessgreater(x, y) __builtin_islessgreater(x, y)
#define isunordered(x, y) __builtin_isunordered(x, y)

#define M_E 2.7182818284590452354
#define M_LOG2E 1.4426950408889634074
#define M_LOG10E 0.43429448190325182765
#define M_LN2 0.69314718055994530942
#define M_LN10 2.30258509299404568402
#define M_PI 3.14159265358979323846
#define M_PI_2 1.57079632679489661923
#define M_PI_4 0.78539816339744830962
#define M_1_PI 0.31830988618379067154
#define M_2_PI 0.63661977236758134308
#define M_2_SQRTPI 1.12837916709551257390
#define M_SQRT2 1.41421356237309504880
#define M_SQRT1_2 0.70710678118654752440

#define VMLET__MATH1(name) double name(double x); float name##f(float x);
#define VMLET__MATH2(name) double name(double x, double y); float name##f(float x, float y);
VMLET__MATH1(acos) VMLET__MATH1(asin) VMLET__MATH1(atan) VMLET__MATH2(atan2)
VMLET__MATH1(cos) VMLET__MATH1(sin) VMLET__MATH1(tan)
VMLET__MATH1(acosh) VMLET__MATH1(asinh) VMLET__MATH1(atanh)
VMLET__MATH1(cosh) VMLET__MATH1(sinh) VMLET__MATH1(tanh)
VMLET__MATH1(exp) VMLET__MATH1(exp2) VMLET__MATH1(expm1)
VMLET__MATH1(log) VMLET__MATH1(log10) VMLET__MATH1(log1p) VMLET__MATH1(log2) VMLET__MATH1(logb)
VMLET__MATH1(cbrt) VMLET__MATH1(fabs) VMLET__MATH2(hypot) VMLET__MATH2(pow) VMLET__MATH1(sqrt)
VMLET__MATH1(erf) VMLET__MATH1(erfc) VMLET__MATH1(lgamma) VMLET__MATH1(tgamma)
VMLET__MATH1(ceil) VMLET__MATH1(floor) VMLET__MATH1(nearbyint) VMLET__MATH1(rint) VMLET__MATH1(round)
VMLET__MATH1(trunc)
VMLET__MATH2(fmod) VMLET__MATH2(remainder) VMLET__MATH2(copysign) VMLET__MATH2(nextafter)
VMLET__MATH2(fdim) VMLET__MATH2(fmax) VMLET__MATH2(fmin)
#undef VMLET__MATH1
#undef VMLET__MATH2

double frexp(double x, int *e);
float frexpf(float x, int *e);
double ldexp(double x, int e);
float ldexpf(float x, int e);
double scalbn(double x, int e);
float scalbnf(float x, int e);
double scalbln(double x, long e);
float scalblnf(float x, long e);
int ilogb(double x);
int ilogbf(float x);
double modf(double x, double *ip);
float modff(float x, float *ip);
double remquo(double x, double y, int *q);
float remquof(float x, float y, int *q);
double fma(double x, double y, double z);
float fmaf(float x, float y, float z);
long lround(double x);
long lroundf(float x);
long long llround(double x);
long long llroundf(float x);
long lrint(double x);
long lrintf(float x);
long long llrint(double x);
long long llrintf(float x);
double nan(const char *tag);
float nanf(const char *tag);
double nexttoward(double x, long double y);
float nexttowardf(float x, long double y);
long double fabsl(long double x);

#include "vmlet_c_end.h"

#endif

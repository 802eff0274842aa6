/*
 * Host-side test of the guest libm (guest/src/math_*.c): the Makefile compiles
 * those files natively with every function renamed (sin -> g_sin), and this
 * program compares each with the host's glibc libm on 100,000 random inputs:
 * half random bit patterns across the function's whole domain, half uniform
 * over the range where its values are interesting. Transcendental functions
 * must agree within 1 ulp, exact ones (floor, fmod, fma, ...) bit for bit.
 * Exit status is non-zero on any failure.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_INPUTS 100000

int g_errno;

#define DECL1(name) double g_##name(double); float g_##name##f(float);
#define DECL2(name) double g_##name(double, double); float g_##name##f(float, float);
DECL1(acos) DECL1(asin) DECL1(atan) DECL2(atan2) DECL1(cos) DECL1(sin) DECL1(tan)
DECL1(acosh) DECL1(asinh) DECL1(atanh) DECL1(cosh) DECL1(sinh) DECL1(tanh)
DECL1(exp) DECL1(exp2) DECL1(expm1) DECL1(log) DECL1(log10) DECL1(log1p) DECL1(log2) DECL1(logb)
DECL1(cbrt) DECL1(fabs) DECL2(hypot) DECL2(pow) DECL1(sqrt)
DECL1(erf) DECL1(erfc) DECL1(lgamma) DECL1(tgamma)
DECL1(ceil) DECL1(floor) DECL1(nearbyint) DECL1(rint) DECL1(round) DECL1(trunc)
DECL2(fmod) DECL2(remainder) DECL2(copysign) DECL2(nextafter) DECL2(fdim) DECL2(fmax) DECL2(fmin)
double g_fma(double, double, double);
float g_fmaf(float, float, float);
double g_remquo(double, double, int *);
double g_frexp(double, int *);
double g_ldexp(double, int);
double g_modf(double, double *);
int g_ilogb(double);
long g_lround(double);
long g_lrint(double);

/* ---- random inputs (splitmix64: seeded, so failures reproduce) ---------------- */
static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static double uniform(double lo, double hi) { return lo + (hi - lo) * ((double)(rnd() >> 11) * 0x1p-53); }

/* A random finite double with lo <= x <= hi, drawn from uniformly random bits. */
static double random_bits(double lo, double hi) {
  for (;;) {
    uint64_t u = rnd();
    double x;
    memcpy(&x, &u, sizeof x);
    if (isfinite(x) && x >= lo && x <= hi) return x;
  }
}

/* Distance in representable doubles (floats); 0 for two NaNs. */
static uint64_t ulps(double a, double b) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b) ? 0 : UINT64_MAX;
  int64_t i, j;
  memcpy(&i, &a, 8);
  memcpy(&j, &b, 8);
  if (i < 0) i = INT64_MIN - i;
  if (j < 0) j = INT64_MIN - j;
  return i > j ? (uint64_t)i - (uint64_t)j : (uint64_t)j - (uint64_t)i;
}
static uint64_t ulpsf(float a, float b) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b) ? 0 : UINT64_MAX;
  int32_t i, j;
  memcpy(&i, &a, 4);
  memcpy(&j, &b, 4);
  if (i < 0) i = INT32_MIN - i;
  if (j < 0) j = INT32_MIN - j;
  return i > j ? (uint64_t)(i - j) : (uint64_t)(j - i);
}

static int failures, functions, host_off;

typedef struct {
  const char *name;
  uint64_t worst;
  double wx, wy, got, want;
  int bad;
} tally;

static void record(tally *t, uint64_t d, uint64_t allowed, double x, double y, double got, double want) {
  if (d > allowed) t->bad++;
  if (d > t->worst || (t->worst == 0 && d)) t->worst = d, t->wx = x, t->wy = y, t->got = got, t->want = want;
}

/*
 * glibc's double functions are not all correctly rounded (its manual lists up
 * to 2-9 ulp for cbrt, log10, sinh, tanh, erfc, lgamma, tgamma, ...). Where
 * the guest is more than 1 ulp from glibc and glibc's result is not the
 * correctly rounded one, being within 1 ulp of glibc is not a meaningful
 * demand; the reference is then glibc's long double function (x87, 11 more
 * bits) rounded once, the guest must be within 1 ulp of that, and the case
 * is counted.
 */
static uint64_t judged(uint64_t d, uint64_t allowed, double got, double want, double reference,
                       uint64_t (*dist)(double, double)) {
  if (d <= allowed || dist(want, reference) == 0) return d;
  host_off++;
  return dist(got, reference);
}

static void report(const tally *t, uint64_t allowed) {
  functions++;
  if (t->bad) {
    failures++;
    printf("FAIL %-10s %d of %d inputs beyond %llu ulp; worst %llu ulp at (%a, %a): got %a, host %a\n", t->name,
           t->bad, N_INPUTS, (unsigned long long)allowed, (unsigned long long)t->worst, t->wx, t->wy, t->got, t->want);
  }
}

typedef long double (*fn1l)(long double);
typedef long double (*fn2l)(long double, long double);
typedef double (*fn1)(double);
typedef double (*fn2)(double, double);
typedef float (*fn1f)(float);
typedef float (*fn2f)(float, float);

/* One-argument function: half random bits in [lo, hi], half uniform in [ulo, uhi]. */
static void check1(const char *name, fn1 mine, fn1 host, fn1l exact, double lo, double hi, double ulo, double uhi,
                   uint64_t allowed) {
  tally t = {name, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < N_INPUTS; i++) {
    double x = i % 2 ? random_bits(lo, hi) : uniform(ulo, uhi);
    double got = mine(x), want = host(x);
    uint64_t d = ulps(got, want);
    if (d > allowed && exact) d = judged(d, allowed, got, want, (double)exact(x), ulps);
    record(&t, d, allowed, x, 0, got, want);
  }
  report(&t, allowed);
}

static uint64_t ulpsf_d(double a, double b) { return ulpsf((float)a, (float)b); }

static void check1f(const char *name, fn1f mine, fn1f host, fn1l exact, double lo, double hi, double ulo, double uhi,
                    uint64_t allowed) {
  tally t = {name, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < N_INPUTS; i++) {
    float x = (float)(i % 2 ? random_bits(lo, hi) : uniform(ulo, uhi));
    if (!isfinite(x)) x = (float)uniform(ulo, uhi);
    float got = mine(x), want = host(x);
    uint64_t d = ulpsf(got, want);
    if (d > allowed && exact) d = judged(d, allowed, got, want, (float)exact(x), ulpsf_d);
    record(&t, d, allowed, x, 0, got, want);
  }
  report(&t, allowed);
}

static void check2(const char *name, fn2 mine, fn2 host, fn2l exact, double lo, double hi, double ulo, double uhi,
                   double ylo, double yhi, uint64_t allowed) {
  tally t = {name, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < N_INPUTS; i++) {
    double x = i % 2 ? random_bits(lo, hi) : uniform(ulo, uhi);
    double y = i % 4 == 1 ? random_bits(ylo, yhi) : uniform(ylo, yhi);
    if (!isfinite(y)) y = uniform(-10, 10);
    double got = mine(x, y), want = host(x, y);
    uint64_t d = ulps(got, want);
    if (d > allowed && exact) d = judged(d, allowed, got, want, (double)exact(x, y), ulps);
    record(&t, d, allowed, x, y, got, want);
  }
  report(&t, allowed);
}

static void check2f(const char *name, fn2f mine, fn2f host, fn2l exact, double ulo, double uhi, double ylo,
                    double yhi, uint64_t allowed) {
  tally t = {name, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < N_INPUTS; i++) {
    float x = (float)uniform(ulo, uhi), y = (float)uniform(ylo, yhi);
    float got = mine(x, y), want = host(x, y);
    uint64_t d = ulpsf(got, want);
    if (d > allowed && exact) d = judged(d, allowed, got, want, (float)exact(x, y), ulpsf_d);
    record(&t, d, allowed, x, y, got, want);
  }
  report(&t, allowed);
}

#define BIG DBL_MAX
/* Transcendental functions are judged with the long double reference, exact ones without. */
#define C1(f, lo, hi, ulo, uhi, allowed) check1(#f, g_##f, f, allowed ? f##l : NULL, lo, hi, ulo, uhi, allowed)
#define C1F(fn, ulo, uhi, allowed) \
  check1f(#fn "f", g_##fn##f, fn##f, allowed ? fn##l : NULL, ulo, uhi, ulo, uhi, allowed)
#define C2(f, lo, hi, ulo, uhi, ylo, yhi, allowed) \
  check2(#f, g_##f, f, allowed ? f##l : NULL, lo, hi, ulo, uhi, ylo, yhi, allowed)
#define C2F(fn, ulo, uhi, ylo, yhi, allowed) \
  check2f(#fn "f", g_##fn##f, fn##f, allowed ? fn##l : NULL, ulo, uhi, ylo, yhi, allowed)

static void transcendental(void) {
  C1(sin, -BIG, BIG, -10, 10, 1);
  C1(cos, -BIG, BIG, -10, 10, 1);
  C1(tan, -BIG, BIG, -10, 10, 1);
  C1(asin, -1, 1, -1, 1, 1);
  C1(acos, -1, 1, -1, 1, 1);
  C1(atan, -BIG, BIG, -10, 10, 1);
  C2(atan2, -BIG, BIG, -10, 10, -10, 10, 1);
  C1(sinh, -720, 720, -5, 5, 1);
  C1(cosh, -720, 720, -5, 5, 1);
  C1(tanh, -BIG, BIG, -5, 5, 1);
  C1(asinh, -BIG, BIG, -5, 5, 1);
  C1(acosh, 1, BIG, 1, 5, 1);
  C1(atanh, -1, 1, -1, 1, 1);
  C1(exp, -750, 720, -20, 20, 1);
  C1(exp2, -1100, 1030, -20, 20, 1);
  C1(expm1, -750, 720, -2, 2, 1);
  C1(log, 0, BIG, 0, 4, 1);
  C1(log2, 0, BIG, 0, 4, 1);
  C1(log10, 0, BIG, 0, 4, 1);
  C1(log1p, -1, BIG, -1, 3, 1);
  C1(cbrt, -BIG, BIG, -10, 10, 1);
  C1(sqrt, 0, BIG, 0, 10, 0);
  C2(pow, 0, BIG, 0, 4, -100, 100, 1);
  C2(hypot, -BIG, BIG, -10, 10, -10, 10, 1);
  C1(erf, -BIG, BIG, -4, 4, 1);
  C1(erfc, -BIG, BIG, -2, 27, 1);
  C1(tgamma, -190, 172, -10, 10, 1);
  C1(lgamma, -BIG, BIG, -10, 10, 1);
}

static void exact(void) {
  C1(floor, -BIG, BIG, -10, 10, 0);
  C1(ceil, -BIG, BIG, -10, 10, 0);
  C1(trunc, -BIG, BIG, -10, 10, 0);
  C1(round, -BIG, BIG, -10, 10, 0);
  C1(rint, -BIG, BIG, -10, 10, 0);
  C1(nearbyint, -BIG, BIG, -10, 10, 0);
  C1(fabs, -BIG, BIG, -10, 10, 0);
  C1(logb, -BIG, BIG, -10, 10, 0);
  C2(fmod, -BIG, BIG, -100, 100, -10, 10, 0);
  C2(remainder, -BIG, BIG, -100, 100, -10, 10, 0);
  C2(copysign, -BIG, BIG, -10, 10, -1, 1, 0);
  C2(nextafter, -BIG, BIG, -10, 10, -10, 10, 0);
  C2(fdim, -BIG, BIG, -10, 10, -10, 10, 0);
  C2(fmax, -BIG, BIG, -10, 10, -10, 10, 0);
  C2(fmin, -BIG, BIG, -10, 10, -10, 10, 0);
}

static void floats(void) {
  C1F(sin, -1e6, 1e6, 1);
  C1F(cos, -1e6, 1e6, 1);
  C1F(tan, -1e3, 1e3, 1);
  C1F(asin, -1, 1, 1);
  C1F(acos, -1, 1, 1);
  C1F(atan, -100, 100, 1);
  C2F(atan2, -10, 10, -10, 10, 1);
  C1F(sinh, -90, 90, 1);
  C1F(cosh, -90, 90, 1);
  C1F(tanh, -10, 10, 1);
  C1F(asinh, -1e6, 1e6, 1);
  C1F(acosh, 1, 1e6, 1);
  C1F(atanh, -1, 1, 1);
  C1F(exp, -100, 90, 1);
  C1F(exp2, -150, 128, 1);
  C1F(expm1, -20, 90, 1);
  C1F(log, 0, 1e6, 1);
  C1F(log2, 0, 1e6, 1);
  C1F(log10, 0, 1e6, 1);
  C1F(log1p, -1, 1e6, 1);
  C1F(cbrt, -1e6, 1e6, 1);
  C1F(sqrt, 0, 1e6, 0);
  C2F(pow, 0, 10, -30, 30, 1);
  C2F(hypot, -1e6, 1e6, -1e6, 1e6, 1);
  C1F(erf, -5, 5, 1);
  C1F(erfc, -5, 12, 1);
  C1F(tgamma, -30, 35, 1);
  C1F(lgamma, -30, 1e6, 1);
  C1F(floor, -1e9, 1e9, 0);
  C1F(ceil, -1e9, 1e9, 0);
  C1F(round, -1e9, 1e9, 0);
  C2F(fmod, -1e6, 1e6, -100, 100, 0);
}

/* fma is exact but for one rounding: products of random bits plus values near -x*y. */
static void fused(void) {
  tally t = {"fma", 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < N_INPUTS; i++) {
    double x = random_bits(-1e150, 1e150), y = random_bits(-1e150, 1e150);
    double z = i % 2 ? random_bits(-BIG, BIG) : -(x * y) * (1 + uniform(-1e-15, 1e-15));
    double got = g_fma(x, y, z), want = fma(x, y, z);
    record(&t, ulps(got, want), 0, x, y, got, want);
  }
  report(&t, 0);
  tally tf = {"fmaf", 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < N_INPUTS; i++) {
    float x = (float)uniform(-1e10, 1e10), y = (float)uniform(-1e-10, 1e10);
    float z = i % 2 ? (float)uniform(-1e20, 1e20) : -(x * y);
    float got = g_fmaf(x, y, z), want = fmaf(x, y, z);
    record(&tf, ulpsf(got, want), 0, x, y, got, want);
  }
  report(&tf, 0);
}

/* The functions with more than one result, compared in full. */
static void decompositions(void) {
  tally t = {"frexp/modf/ilogb/ldexp/remquo/lround/lrint", 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < N_INPUTS; i++) {
    double x = random_bits(-BIG, BIG), y = uniform(-10, 10);
    int e1, e2, q1, q2;
    double i1, i2;
    uint64_t d = ulps(g_frexp(x, &e1), frexp(x, &e2)) + (uint64_t)(e1 != e2);
    d += ulps(g_modf(x, &i1), modf(x, &i2)) + ulps(i1, i2);
    d += (uint64_t)(g_ilogb(x) != ilogb(x));
    int k = (int)(rnd() % 4200) - 2100;
    d += ulps(g_ldexp(x, k), ldexp(x, k));
    double small = uniform(-1e6, 1e6);
    d += ulps(g_remquo(small, y, &q1), remquo(small, y, &q2)) + (uint64_t)((q1 & 7) != (q2 & 7));
    d += (uint64_t)(g_lround(small) != lround(small)) + (uint64_t)(g_lrint(small) != lrint(small));
    record(&t, d, 0, x, y, 0, 0);
  }
  report(&t, 0);
}

int main(void) {
  transcendental();
  exact();
  floats();
  fused();
  decompositions();
  printf("libm: %d functions, %d inputs each, %d failures (%d inputs judged by the long double reference because "
         "glibc's double result is not correctly rounded)\n", functions, N_INPUTS, failures, host_off);
  return failures != 0;
}

/*
 * The exact functions of <math.h>: rounding, remainders, decomposition,
 * scaling, comparison and fma. All work on the bits and never round twice.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>

typedef union {
  double f;
  uint64_t u;
} bits;

static const uint64_t FRAC = (1ull << 52) - 1;

static int exponent_of(double x) { return (int)((bits){x}.u >> 52 & 0x7ff) - 1023; }

double fabs(double x) { return (bits){.u = (bits){x}.u & ~(1ull << 63)}.f; }
long double fabsl(long double x) { return x < 0 ? -x : x == 0 ? 0.0L : x; }

double copysign(double x, double y) {
  return (bits){.u = ((bits){x}.u & ~(1ull << 63)) | ((bits){y}.u & (1ull << 63))}.f;
}

double trunc(double x) {
  int e = exponent_of(x);
  if (e >= 52) return x + 0.0 * x; /* integral, inf or nan (quieted) */
  if (e < 0) return copysign(0.0, x);
  return (bits){.u = (bits){x}.u & ~(FRAC >> e)}.f;
}

double floor(double x) {
  double t = trunc(x);
  return x < t ? t - 1 : t;
}

double ceil(double x) {
  double t = trunc(x);
  return x > t ? t + 1 : t;
}

double round(double x) {
  double t = trunc(x);
  if (fabs(x - t) >= 0.5) t += copysign(1.0, x);
  return t;
}

/* Round half to even (the default rounding mode, which guests never change). */
double rint(double x) {
  if (!(fabs(x) < 0x1p52)) return x + 0.0 * x;
  double r = fabs(x) + 0x1p52 - 0x1p52; /* adding 2^52 rounds away the fraction */
  return copysign(r, x);
}

double nearbyint(double x) { return rint(x); }

/* The long result of an integral double, or errno = EDOM and LONG_MIN as glibc does. */
static long to_long(double r) {
  if (!(r >= -0x1p63 && r < 0x1p63)) {
    errno = EDOM;
    return (long)0x8000000000000000ull;
  }
  return (long)r;
}

long lround(double x) { return to_long(round(x)); }
long long llround(double x) { return to_long(round(x)); }
long lrint(double x) { return to_long(rint(x)); }
long long llrint(double x) { return to_long(rint(x)); }

double modf(double x, double *ip) {
  *ip = __builtin_isnan(x) ? x : trunc(x);
  if (__builtin_isinf(x)) return copysign(0.0, x);
  return copysign(x - *ip, x);
}

double frexp(double x, int *e) {
  *e = 0;
  if (x == 0 || !__builtin_isfinite(x)) return x + x;
  bits v = {x};
  if (!(v.u >> 52 & 0x7ff)) {
    v.f *= 0x1p64;
    *e = -64;
  }
  *e += (int)(v.u >> 52 & 0x7ff) - 1022;
  v.u = (v.u & ~(0x7ffull << 52)) | (1022ull << 52);
  return v.f;
}

/* x * 2^n with one rounding: the intermediate steps are exact. */
double scalbn(double x, int n) {
  if (n > 1023) {
    x *= 0x1p1023, n -= 1023;
    if (n > 1023) x *= 0x1p1023, n -= 1023;
    if (n > 1023) n = 1023;
  } else if (n < -1022) {
    /* 2^-969 = 2^-1022 * 2^53: stays normal, so only the last product rounds */
    x *= 0x1p-969, n += 969;
    if (n < -1022) x *= 0x1p-969, n += 969;
    if (n < -1022) n = -1022;
  }
  double r = x * (bits){.u = (uint64_t)(n + 1023) << 52}.f;
  if (__builtin_isfinite(x) && x != 0 && (__builtin_isinf(r) || r == 0)) errno = ERANGE;
  return r;
}

double ldexp(double x, int e) { return scalbn(x, e); }
double scalbln(double x, long e) { return scalbn(x, e > 100000 ? 100000 : e < -100000 ? -100000 : (int)e); }

int ilogb(double x) {
  if (__builtin_isnan(x)) return FP_ILOGBNAN;
  if (x == 0) return FP_ILOGB0;
  if (__builtin_isinf(x)) return 0x7fffffff;
  int e;
  frexp(x, &e);
  return e - 1;
}

double logb(double x) {
  if (__builtin_isnan(x)) return x + x;
  if (x == 0) {
    errno = ERANGE;
    return -HUGE_VAL;
  }
  if (__builtin_isinf(x)) return INFINITY;
  return ilogb(x);
}

double nextafter(double x, double y) {
  if (__builtin_isnan(x) || __builtin_isnan(y)) return x + y;
  if (x == y) return y;
  bits v = {x};
  if (x == 0) v.u = 1 | ((bits){y}.u & (1ull << 63));
  else if ((x < y) == (x > 0)) v.u++;
  else v.u--;
  if (!__builtin_isfinite(v.f) || !__builtin_isnormal(v.f)) errno = ERANGE;
  return v.f;
}

double nexttoward(double x, long double y) {
  if (__builtin_isnan(y)) return (double)y;
  return (long double)x == y ? (double)y : nextafter(x, (long double)x < y ? INFINITY : -INFINITY);
}

double fdim(double x, double y) {
  if (__builtin_isnan(x) || __builtin_isnan(y)) return x + y;
  return x > y ? x - y : 0;
}

double fmax(double x, double y) {
  if (__builtin_isnan(x)) return y;
  if (__builtin_isnan(y)) return x;
  if (x == y) return __builtin_signbit(x) ? y : x; /* +0 is larger than -0 */
  return x > y ? x : y;
}

double fmin(double x, double y) {
  if (__builtin_isnan(x)) return y;
  if (__builtin_isnan(y)) return x;
  if (x == y) return __builtin_signbit(x) ? x : y;
  return x < y ? x : y;
}

double nan(const char *tag) {
  (void)tag;
  return __builtin_nan("");
}

/* ---- remainders: exact long division of the significands ------------------- */

/* |x| = m * 2^e with an integer m < 2^53, for finite x != 0. */
static uint64_t significand(double x, int *e) {
  bits v = {x};
  int biased = (int)(v.u >> 52 & 0x7ff);
  *e = (biased ? biased : 1) - 1075;
  return (v.u & FRAC) | (biased ? 1ull << 52 : 0);
}

/* For finite x and y != 0: |x| mod |y| as R * 2^ey, and the low bits of the quotient. */
static uint64_t divide(double x, double y, int *ey, uint64_t *quotient) {
  int ex;
  uint64_t mx = significand(x, &ex), my = significand(y, ey), r = mx, q = 0;
  if (ex < *ey) { /* |x| < |y| */
    *quotient = 0;
    return UINT64_MAX; /* tells the caller: the remainder is x itself */
  }
  q = r / my, r %= my;
  for (int shift = ex - *ey; shift > 0;) {
    int s = shift < 11 ? shift : 11; /* r < 2^53, so r << 11 fits */
    r <<= s;
    q = q << s | r / my;
    r %= my;
    shift -= s;
  }
  *quotient = q;
  return r;
}

double fmod(double x, double y) {
  if (__builtin_isnan(x) || __builtin_isnan(y)) return x + y;
  if (__builtin_isinf(x) || y == 0) {
    errno = EDOM;
    return (double)NAN;
  }
  if (__builtin_isinf(y) || x == 0) return x;
  int ey;
  uint64_t q, r = divide(x, y, &ey, &q);
  if (r == UINT64_MAX) return x;
  return copysign(scalbn((double)r, ey), x);
}

double remquo(double x, double y, int *quo) {
  *quo = 0;
  if (__builtin_isnan(x) || __builtin_isnan(y)) return x + y;
  if (__builtin_isinf(x) || y == 0) {
    errno = EDOM;
    return (double)NAN;
  }
  if (__builtin_isinf(y)) return x;
  if (x == 0) return x;
  int ey;
  uint64_t q, r = divide(x, y, &ey, &q);
  double ax = fabs(x), ay = fabs(y), res;
  if (r == UINT64_MAX) { /* |x| < |y|: the quotient rounds to 0 or 1 */
    int half = ax > ay - ax; /* ay - ax is exact here unless ax < ay/2, when the test is false anyway */
    res = half ? ax - ay : ax;
    q = (uint64_t)half;
  } else {
    int ehalf;
    uint64_t my = significand(y, &ehalf);
    /* round the quotient to nearest, ties to even */
    if (2 * r > my || (2 * r == my && (q & 1))) {
      res = -scalbn((double)(my - r), ey);
      q++;
    } else {
      res = scalbn((double)r, ey);
    }
  }
  int sign = (x < 0) != (y < 0);
  *quo = sign ? -(int)(q & 7) : (int)(q & 7);
  return x < 0 ? -res : res;
}

double remainder(double x, double y) {
  int q;
  return remquo(x, y, &q);
}

/* ---- fma: the exact sum in 128 bits, rounded once ---------------------------- */

typedef unsigned __int128 u128;

/* Rounds sign * s * 2^e (s != 0, exact except for the sticky lowest bit) to a
 * format with `precision` significand bits and smallest exponent `min_e`. */
static double round_exact(int negative, u128 s, int e, int precision, int min_e) {
  int lead = s >> 64 ? 127 - __builtin_clzll((uint64_t)(s >> 64)) : 63 - __builtin_clzll((uint64_t)s);
  int drop = lead + 1 - precision;
  if (e + drop < min_e) drop = min_e - e;
  uint64_t kept;
  if (drop <= 0) {
    kept = (uint64_t)(s << -drop);
  } else if (drop >= 128) {
    kept = 0; /* far below half of the smallest subnormal */
  } else {
    kept = (uint64_t)(s >> drop);
    u128 rest = s & (((u128)1 << drop) - 1), half = (u128)1 << (drop - 1);
    if (rest > half || (rest == half && (kept & 1))) kept++;
  }
  double r = scalbn((double)kept, e + drop);
  return negative ? -r : r;
}

static int is_odd_special(double x, double y, double z) {
  return !__builtin_isfinite(x) || !__builtin_isfinite(y) || !__builtin_isfinite(z) || x == 0 || y == 0;
}

/* x * y + z for a format: double (53, -1074) or float (24, -149), x, y, z exact in it. */
static double fused(double x, double y, double z, int precision, int min_e) {
  if (is_odd_special(x, y, z)) return x * y + z; /* exact product: one rounding */
  int ex, ey, ez;
  u128 p = (u128)significand(x, &ex) * significand(y, &ey);
  int ep = ex + ey, pneg = (x < 0) != (y < 0);
  if (z == 0) return round_exact(pneg, p, ep, precision, min_e);
  u128 zs = significand(z, &ez);
  int zneg = z < 0;
  /* Put both at the top of 126 bits, then align the smaller to the larger's exponent. */
  int sp = __builtin_clzll((uint64_t)(p >> 64) | 1) - 2 + (p >> 64 ? 0 : 64 - 1);
  if (!(p >> 64)) sp = 64 + __builtin_clzll((uint64_t)p) - 2;
  else sp = __builtin_clzll((uint64_t)(p >> 64)) - 2;
  p <<= sp, ep -= sp;
  int sz = 64 + __builtin_clzll((uint64_t)zs) - 2;
  zs <<= sz, ez -= sz;
  if (ep < ez) { /* swap so that p has the larger exponent */
    u128 t = p; p = zs; zs = t;
    int te = ep; ep = ez; ez = te;
    int tn = pneg; pneg = zneg; zneg = tn;
  }
  int d = ep - ez;
  if (d >= 126) zs = 1; /* only a sticky bit survives */
  else if (d > 0) zs = (zs >> d) | ((zs & (((u128)1 << d) - 1)) != 0);
  u128 s;
  int neg = pneg;
  if (pneg == zneg) {
    s = p + zs;
  } else if (p >= zs) {
    s = p - zs;
  } else {
    s = zs - p;
    neg = zneg;
  }
  if (s == 0) return 0.0; /* exact cancellation is +0 when rounding to nearest */
  return round_exact(neg, s, ep, precision, min_e);
}

double fma(double x, double y, double z) { return fused(x, y, z, 53, -1074); }
float fmaf(float x, float y, float z) { return (float)fused(x, y, z, 24, -149); }

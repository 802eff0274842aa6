/*
 * erf, erfc, tgamma and lgamma in long double (see math_x87.h).
 * erf: the positive series 2/sqrt(pi) e^-x^2 sum 2^n x^(2n+1) / (2n+1)!!;
 * erfc for x >= 2: Laplace's continued fraction. lgamma near 1 and 2: the
 * Taylor series of ln Gamma(1+z) with zeta(k) - 1 (computed to 60 digits
 * by Euler-Maclaurin summation); elsewhere Stirling's series after shifting
 * the argument up; negative arguments by reflection.
 */
#include "math_x87.h"

static const ld ZETA_MINUS_1[64] = {
    /* zeta(k) - 1 for k = 2..65 */
    0xa51a6625307d3231p-64L, 0xcee8013c01884e0ep-66L, 0xa8991563ec241b60p-67L, 0x97418eca7ccdb7a2p-68L,
    0x8e13098124891efbp-69L, 0x88cb68533ce236a7p-70L, 0x859b57c31cb745f3p-71L, 0x839f3d816b570300p-72L,
    0x825c674b772fc302p-73L, 0x818c6f922ccaa238p-74L, 0x81052d9669820cddp-75L, 0x80ac9d08bbdeb063p-76L,
    0x80725795a70ab0f1p-77L, 0x804bde5f88df6855p-78L, 0x803266f5917879d0p-79L, 0x8021839b4334069cp-80L,
    0x80164ca9ba265c95p-81L, 0x800ed847cdd24f22p-82L, 0x8009e2ca23374c44p-83L, 0x800695d59409093bp-84L,
    0x80046336763be5d5p-85L, 0x8002ec789c2c62d3p-86L, 0x8001f2cffef08fb5p-87L, 0x80014c752ab19918p-88L,
    0x8000dd98b666cc81p-89L, 0x800093b5c8422540p-90L, 0x8000627682d715cbp-91L, 0x800041a300d43560p-92L,
    0x80002bc15575f0abp-93L, 0x80001d2b38cdcb37p-94L, 0x80001371fb227a6bp-95L, 0x80000cf692100970p-96L,
    0x800008a456b29487p-97L, 0x800005c2df209c0fp-98L, 0x800003d73cbff65fp-99L, 0x8000028f7c7fcc21p-100L,
    0x800001b4fcffcb3fp-101L, 0x8000012352ffd590p-102L, 0x800000c2372a8b78p-103L, 0x800000817a07067cp-104L,
    0x80000056514f5931p-105L, 0x800000398b84e5f1p-106L, 0x800000265d009938p-107L, 0x800000199354661ep-108L,
    0x800000110ce24411p-109L, 0x8000000b5debd80ap-110L, 0x8000000793f2655cp-111L, 0x800000050d4c2e3dp-112L,
    0x800000035e32bed3p-113L, 0x800000023ecc79e2p-114L, 0x800000017f32f941p-115L, 0x80000000ff774f81p-116L,
    0x80000000aa4f89abp-117L, 0x80000000718a5b72p-118L, 0x800000004bb19221p-119L, 0x8000000032766156p-120L,
    0x8000000021a440dap-121L, 0x80000000166d808cp-122L, 0x800000000ef3ab05p-123L, 0x8000000009f7c757p-124L,
    0x8000000006a52f8fp-125L, 0x80000000046e1fb4p-126L, 0x8000000002f41523p-127L, 0x8000000001f80e17p-128L,
};
#define EULER_GAMMA 0x93c467e37db0c7a5p-64L
#define LN_SQRT_2PI 0xeb3f8e4325f5a535p-64L /* ln(2 pi) / 2 */
#define TWO_OVER_SQRT_PI 0x906eba8214db688dp-63L

/* e^-(x^2) with x^2 split into an exact high part and a small low part. */
static ld exp_minus_square(double x) {
  union { double f; uint64_t u; } v = {x};
  v.u &= ~0xffffffffull; /* 21 significant bits: hi * hi is exact */
  ld hi = v.f, lo = (ld)x - hi;
  return ld_exp(-hi * hi) * ld_exp(-(2 * hi + lo) * lo);
}

/* erf(a), 0 <= a < 3, from the series with positive terms. */
static ld erf_series(double a) {
  ld a2 = (ld)a * a, term = a, sum = a;
  for (int n = 1; term > sum * 0x1p-66L; n++) {
    term *= 2 * a2 / (2 * n + 1);
    sum += term;
  }
  return TWO_OVER_SQRT_PI * exp_minus_square(a) * sum;
}

/* erfc(a), a >= 2, from the continued fraction 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + ...)))) by Lentz's method. */
static ld erfc_fraction(double a) {
  const ld tiny = 0x1p-8000L;
  ld f = a, c = a, d = 0;
  for (int k = 1; k < 5000; k++) {
    ld ak = (ld)k / 2;
    d = a + ak * d;
    d = d == 0 ? 1 / tiny : 1 / d;
    c = a + ak / c;
    if (c == 0) c = tiny;
    ld delta = c * d;
    f *= delta;
    if (ld_fabs(delta - 1) < 0x1p-66L) break;
  }
  return exp_minus_square(a) / (x87_sqrt(x87_pi()) * f);
}

/* erf(x) for any non-NaN x. */
static ld erf_ld(double x) {
  double a = __builtin_fabs(x);
  ld r = a < 3 ? erf_series(a) : a < 6 ? 1 - erfc_fraction(a) : 1;
  return x < 0 ? -r : r;
}

double erf(double x) {
  if (__builtin_isnan(x)) return x + x;
  if (x == 0) return x;
  return (double)erf_ld(x);
}

double erfc(double x) {
  if (__builtin_isnan(x)) return x + x;
  if (x < 2) return (double)(1 - erf_ld(x));
  if (x > 28) return to_double(0x1p-2000L);
  return to_double(erfc_fraction(x));
}

/* ---- Gamma --------------------------------------------------------------------- */

/* ln Gamma(1 + z) for |z| <= 1/2: -gamma z + (z - ln(1+z)) + sum (-1)^k (zeta(k)-1) z^k / k. */
static ld lgamma1p_series(ld z) {
  ld sum = 0, power = z * z;
  for (int k = 2; k < 66; k++, power *= -z) sum += ZETA_MINUS_1[k - 2] * power / k;
  return -EULER_GAMMA * z + (z - ld_log1p(z)) + sum;
}

/* Stirling's series for ln Gamma(z), z >= 12: error below 2^-70. */
static ld lgamma_stirling(ld z) {
  static const ld B[] = {1.0L / 12, -1.0L / 360, 1.0L / 1260, -1.0L / 1680, 1.0L / 1188, -691.0L / 360360,
                         1.0L / 156, -3617.0L / 122400, 43867.0L / 244188, -174611.0L / 125400};
  ld inv = 1 / z, inv2 = inv * inv, sum = 0, power = inv;
  for (int k = 0; k < 10; k++, power *= inv2) sum += B[k] * power;
  return (z - 0.5L) * ld_log(z) - z + LN_SQRT_2PI + sum;
}

/* ln |Gamma(x)| for x >= 0.5 (x <= ~2^1000). */
static ld lgamma_positive(ld x) {
  if (x <= 1.5L) return lgamma1p_series(x - 1);
  if (x <= 2.5L) return lgamma1p_series(x - 2) + ld_log1p(x - 2);
  if (x < 12) { /* down to (1.5, 2.5]: ln Gamma(x) = ln Gamma(x - k) + ln((x-1)(x-2)...(x-k)) */
    ld product = 1, y = x;
    while (y > 2.5L) product *= --y;
    return lgamma1p_series(y - 2) + ld_log1p(y - 2) + ld_log(product);
  }
  return lgamma_stirling(x);
}

/* Gamma(x) for x >= 0.5, up to the long double range. */
static ld gamma_positive(ld x) {
  if (x >= 12) return ld_exp(lgamma_stirling(x));
  ld product = 1, y = x;
  while (y < 12) product *= y++;
  return ld_exp(lgamma_stirling(y)) / product;
}

/* sin(pi x) for finite x, exact in the reduction (x - 2 round(x/2) is exact). */
static ld sin_pi(double x) {
  ld f = (ld)x - 2 * x87_rint((ld)x / 2); /* [-1, 1] */
  int negative = f < 0;
  if (negative) f = -f;
  if (f > 0.5L) f = 1 - f;
  ld s = f > 0.25L ? x87_cos(x87_pi() * (0.5L - f)) : x87_sin(x87_pi() * f);
  return negative ? -s : s;
}

static int is_integer(double x) { return __builtin_fabs(x) >= 0x1p52 || x == (double)(int64_t)x; }

double tgamma(double x) {
  if (__builtin_isnan(x)) return x + x;
  if (x == INFINITY) return x;
  if (x == 0) return pole_error(__builtin_copysign(HUGE_VAL, x));
  if (x < 0 && is_integer(x)) return domain_error();
  if (x > 172) return to_double((ld)INFINITY);
  if (x >= 0.5) return to_double(gamma_positive(x));
  ld s = sin_pi(x);
  if (x < -190) return to_double(s < 0 ? -0x1p-2000L : 0x1p-2000L);
  /* Gamma(x) Gamma(1 - x) = pi / sin(pi x) */
  return to_double(x87_pi() / (s * gamma_positive(1 - (ld)x)));
}

/* a * b = *hi + *lo exactly (Dekker's product, in long double). */
static void two_product(ld a, ld b, ld *hi, ld *lo) {
  const ld split = 0x1p32L + 1;
  ld ca = a * split, cb = b * split;
  ld ah = ca - (ca - a), al = a - ah, bh = cb - (cb - b), bl = b - bh;
  *hi = a * b;
  *lo = ((ah * bh - *hi) + ah * bl + al * bh) + al * bl;
}

/* ln |Gamma(x)| for -24 < x < 0, x not an integer: ln Gamma(x + k) - ln |x (x+1) ... (x+k-1)|
 * with x + k in [1.5, 2.5) and the product carried to twice long double precision, which keeps
 * the difference accurate where it nearly cancels (near the zeros of lgamma). */
static ld lgamma_negative_small(double x) {
  ld hi = 1, lo = 0, y = x; /* every x + j is exact in long double */
  for (; y < 1.5L; y += 1) {
    ld p, e;
    two_product(hi, y, &p, &e);
    e += lo * y;
    hi = p + e;
    lo = e - (hi - p);
  }
  if (hi < 0) hi = -hi, lo = -lo;
  ld log_product = ld_log(hi) + lo / hi;
  return lgamma1p_series(y - 2) + ld_log1p(y - 2) - log_product;
}

double lgamma(double x) {
  if (__builtin_isnan(x)) return x + x;
  if (__builtin_isinf(x)) return INFINITY;
  if (x <= 0 && is_integer(x)) return pole_error(HUGE_VAL);
  double a = __builtin_fabs(x);
  if (a < 0x1p-70) return (double)-ld_log(a); /* Gamma(x) ~ 1/x */
  if (x >= 0.5) return to_double(lgamma_positive(x));
  if (x > 0) return (double)(lgamma_positive(1 + (ld)x) - ld_log(x)); /* Gamma(x) = Gamma(1 + x) / x */
  if (x > -24) return to_double(lgamma_negative_small(x));
  /* ln |Gamma(x)| = ln(pi / |sin(pi x)|) - ln Gamma(1 - x) */
  ld s = ld_fabs(sin_pi(x));
  return to_double(ld_log(x87_pi() / s) - lgamma_positive(1 - (ld)x));
}

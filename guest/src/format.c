/*
 * vsnprintf/snprintf for the freestanding guest.
 *
 * Floating point is converted exactly: a double is m * 2^e, which equals the
 * integer m * 2^e (e >= 0) or m * 5^-e scaled by 10^e (e < 0), so we build
 * that integer's decimal digits and round them half-to-even, the way glibc
 * does. Output is streamed, so huge widths or precisions need no buffer.
 */
#include "vmlet.h"

typedef struct {
  char *buf;
  size_t size, pos; /* pos counts every character, written or not */
} out;

typedef struct {
  int minus, plus, space, alt, zero;
  int width, prec; /* prec < 0: not given */
} spec;

static void put(out *o, char c) {
  if (o->pos + 1 < o->size) o->buf[o->pos] = c;
  o->pos++;
}

static void put_n(out *o, char c, size_t n) {
  while (n--) put(o, c);
}

static void put_s(out *o, const char *s, size_t n) {
  while (n--) put(o, *s++);
}

/* Writes left padding and prefix for a body of `len` chars; returns the right padding. */
static size_t pad_left(out *o, const spec *s, const char *prefix, size_t len) {
  size_t plen = strlen(prefix), total = plen + len;
  size_t fill = (size_t)s->width > total ? (size_t)s->width - total : 0;
  if (!s->minus && !s->zero) put_n(o, ' ', fill);
  put_s(o, prefix, plen);
  if (!s->minus && s->zero) put_n(o, '0', fill);
  return s->minus ? fill : 0;
}

static void fmt_str(out *o, spec *s, const char *str, size_t len) {
  s->zero = 0;
  size_t right = pad_left(o, s, "", len);
  put_s(o, str, len);
  put_n(o, ' ', right);
}

/* conv is one of d u o x X p (i is passed as d). */
static void fmt_int(out *o, spec *s, uintmax_t v, int neg, char conv) {
  char tmp[24];
  size_t n = 0;
  unsigned base = conv == 'o' ? 8 : (conv == 'x' || conv == 'X' || conv == 'p') ? 16 : 10;
  const char *digits = conv == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
  const char *prefix = "";
  if (conv == 'd') prefix = neg ? "-" : s->plus ? "+" : s->space ? " " : "";
  if (conv == 'p' || (s->alt && v && conv == 'x')) prefix = "0x";
  if (s->alt && v && conv == 'X') prefix = "0X";
  for (; v; v /= base) tmp[n++] = digits[v % base];
  size_t prec = s->prec < 0 ? 1 : (size_t)s->prec;
  if (s->prec >= 0) s->zero = 0; /* C: a precision disables '0' padding */
  size_t zeros = prec > n ? prec - n : 0;
  if (conv == 'o' && s->alt && !zeros) zeros = 1; /* '#': first digit must be 0 */
  size_t right = pad_left(o, s, prefix, zeros + n);
  put_n(o, '0', zeros);
  while (n) put(o, tmp[--n]);
  put_n(o, ' ', right);
}

/* ---- floating point ------------------------------------------------------ */

/* Value = 0.d[0]d[1]...d[n-1] * 10^dexp; d holds ASCII digits, d[0] != '0' unless zero. */
typedef struct {
  char d[800]; /* a double needs at most 767 significant digits */
  int n, dexp;
} decimal;

#define LIMB 1000000000u /* big numbers use base-10^9 limbs, least significant first */

/* limbs *= f (f <= 5^13, so limb * f + carry fits in 64 bits); returns the new count. */
static int mul_small(uint32_t *limbs, int n, uint64_t f) {
  uint64_t c = 0;
  for (int i = 0; i < n; i++) {
    c += limbs[i] * f;
    limbs[i] = (uint32_t)(c % LIMB);
    c /= LIMB;
  }
  for (; c; c /= LIMB) limbs[n++] = (uint32_t)(c % LIMB);
  return n;
}

/* Exact decimal expansion of finite x >= 0. */
static void to_decimal(double x, decimal *r) {
  union { double f; uint64_t u; } v = {x};
  uint64_t m = v.u & ((1ull << 52) - 1);
  int e = (int)(v.u >> 52);
  if (e) m |= 1ull << 52, e -= 1075;
  else e = -1074;
  if (!m) {
    r->d[0] = '0', r->n = 1, r->dexp = 1;
    return;
  }
  while (!(m & 1) && e < 0) m >>= 1, e++; /* keeps the numbers short */
  uint32_t limbs[90]; /* 767 digits */
  int n = 0;
  for (; m; m /= LIMB) limbs[n++] = (uint32_t)(m % LIMB);
  for (int k = e; k > 0; k -= 29) n = mul_small(limbs, n, 1ull << (k < 29 ? k : 29));
  for (int k = -e; k > 0; k -= 13) {
    uint64_t f = 1;
    for (int j = 0; j < (k < 13 ? k : 13); j++) f *= 5;
    n = mul_small(limbs, n, f);
  }
  /* Most significant first, as ASCII: the top limb without leading zeros. */
  int len = 0;
  for (uint32_t t = limbs[n - 1]; t; t /= 10) len++;
  for (int i = len - 1, t = (int)limbs[n - 1]; i >= 0; i--, t /= 10) r->d[i] = (char)('0' + t % 10);
  for (int k = n - 2; k >= 0; k--, len += 9)
    for (int i = 8, t = (int)limbs[k]; i >= 0; i--, t /= 10) r->d[len + i] = (char)('0' + t % 10);
  r->n = len;
  r->dexp = len - (e < 0 ? -e : 0);
}

/* Rounds to the first `keep` digits, half to even. */
static void round_at(decimal *r, int keep) {
  if (keep >= r->n) return;
  int up = 0;
  if (keep >= 0) {
    char c = r->d[keep];
    up = c > '5';
    if (c == '5') {
      for (int i = keep + 1; i < r->n && !up; i++) up = r->d[i] != '0';
      if (!up && keep > 0) up = (r->d[keep - 1] - '0') & 1; /* exact tie */
    }
  }
  r->n = keep > 0 ? keep : 0;
  if (up) {
    int i = keep - 1;
    while (i >= 0 && r->d[i] == '9') r->d[i--] = '0';
    if (i >= 0) {
      r->d[i]++;
    } else { /* 99.9 -> 100: one new leading digit */
      r->d[0] = '1', r->n = 1;
      r->dexp++;
    }
  }
  if (r->n == 0) r->d[0] = '0', r->n = 1, r->dexp = 1; /* rounded to zero */
}

static char digit(const decimal *r, int i) { return i >= 0 && i < r->n ? r->d[i] : '0'; }

static void fmt_float(out *o, spec *s, double x, char conv) {
  union { double f; uint64_t u; } v = {x};
  int upper = conv >= 'A' && conv <= 'Z', style = conv | 32;
  const char *sign = v.u >> 63 ? "-" : s->plus ? "+" : s->space ? " " : "";
  if ((v.u >> 52 & 0x7ff) == 0x7ff) {
    const char *t = v.u << 12 ? (upper ? "NAN" : "nan") : (upper ? "INF" : "inf");
    s->zero = 0;
    size_t right = pad_left(o, s, sign, 3);
    put_s(o, t, 3);
    put_n(o, ' ', right);
    return;
  }
  decimal r;
  to_decimal(v.u >> 63 ? -x : x, &r);
  int prec = s->prec < 0 ? 6 : s->prec;
  if (style == 'f') {
    round_at(&r, r.dexp + prec);
  } else if (style == 'e') {
    round_at(&r, prec + 1);
  } else { /* %g: style e or f depending on the exponent, P significant digits */
    int p = prec ? prec : 1;
    round_at(&r, p);
    int x10 = r.dexp - 1;
    style = p > x10 && x10 >= -4 ? 'f' : 'e';
    prec = style == 'f' ? p - 1 - x10 : p - 1;
    if (!s->alt) { /* drop trailing zeros of the fraction */
      while (r.n > 1 && r.d[r.n - 1] == '0') r.n--;
      int keep = style == 'f' ? (r.n > r.dexp ? r.n - r.dexp : 0) : r.n - 1;
      if (prec > keep) prec = keep;
    }
  }
  int dot = prec > 0 || s->alt;
  if (style == 'f') {
    int ints = r.dexp > 0 ? r.dexp : 1;
    size_t right = pad_left(o, s, sign, (size_t)ints + (size_t)dot + (size_t)prec);
    if (r.dexp <= 0) put(o, '0');
    for (int i = 0; i < r.dexp; i++) put(o, digit(&r, i));
    if (dot) put(o, '.');
    for (int i = 0; i < prec; i++) put(o, digit(&r, r.dexp + i));
    put_n(o, ' ', right);
  } else {
    int x10 = r.d[0] == '0' ? 0 : r.dexp - 1, ax = x10 < 0 ? -x10 : x10;
    size_t right = pad_left(o, s, sign, 1 + (size_t)dot + (size_t)prec + (ax >= 100 ? 5 : 4));
    put(o, r.d[0]);
    if (dot) put(o, '.');
    for (int i = 1; i <= prec; i++) put(o, digit(&r, i));
    put(o, upper ? 'E' : 'e');
    put(o, x10 < 0 ? '-' : '+');
    if (ax >= 100) put(o, (char)('0' + ax / 100));
    put(o, (char)('0' + ax / 10 % 10));
    put(o, (char)('0' + ax % 10));
    put_n(o, ' ', right);
  }
}

/* ---- the format loop ----------------------------------------------------- */

enum { L_NONE, L_HH, L_H, L_L, L_LL, L_Z, L_J, L_T };

static int parse_num(const char **f) {
  int n = 0;
  for (; **f >= '0' && **f <= '9'; (*f)++)
    if (n < 100000000) n = n * 10 + (**f - '0'); /* clamp absurd values */
  return n;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap) {
  out o = {buf, size, 0};
  va_list args;
  va_copy(args, ap);
  while (*fmt) {
    if (*fmt != '%') {
      put(&o, *fmt++);
      continue;
    }
    fmt++;
    spec s = {0, 0, 0, 0, 0, 0, -1};
    for (;; fmt++) {
      if (*fmt == '-') s.minus = 1;
      else if (*fmt == '+') s.plus = 1;
      else if (*fmt == ' ') s.space = 1;
      else if (*fmt == '#') s.alt = 1;
      else if (*fmt == '0') s.zero = 1;
      else break;
    }
    if (*fmt == '*') {
      fmt++;
      s.width = va_arg(args, int);
      if (s.width > 100000000) s.width = 100000000;
      if (s.width < 0) s.minus = 1, s.width = s.width < -100000000 ? 100000000 : -s.width;
    } else {
      s.width = parse_num(&fmt);
    }
    if (*fmt == '.') {
      fmt++;
      if (*fmt == '*') {
        fmt++;
        s.prec = va_arg(args, int);
        if (s.prec < 0) s.prec = -1; /* negative means "not given" */
        if (s.prec > 100000000) s.prec = 100000000;
      } else {
        s.prec = parse_num(&fmt);
      }
    }
    int len = L_NONE;
    if (*fmt == 'h') len = *++fmt == 'h' ? (fmt++, L_HH) : L_H;
    else if (*fmt == 'l') len = *++fmt == 'l' ? (fmt++, L_LL) : L_L;
    else if (*fmt == 'z') fmt++, len = L_Z;
    else if (*fmt == 'j') fmt++, len = L_J;
    else if (*fmt == 't') fmt++, len = L_T;
    char conv = *fmt;
    if (!conv) break; /* lone '%' at the end */
    fmt++;
    switch (conv) {
    case 'd':
    case 'i': {
      intmax_t v;
      switch (len) {
      case L_HH: v = (signed char)va_arg(args, int); break;
      case L_H: v = (short)va_arg(args, int); break;
      case L_L: v = va_arg(args, long); break;
      case L_LL: v = va_arg(args, long long); break;
      case L_Z: case L_T: v = va_arg(args, ptrdiff_t); break;
      case L_J: v = va_arg(args, intmax_t); break;
      default: v = va_arg(args, int);
      }
      fmt_int(&o, &s, v < 0 ? -(uintmax_t)v : (uintmax_t)v, v < 0, 'd');
      break;
    }
    case 'u':
    case 'o':
    case 'x':
    case 'X': {
      uintmax_t v;
      switch (len) {
      case L_HH: v = (unsigned char)va_arg(args, unsigned); break;
      case L_H: v = (unsigned short)va_arg(args, unsigned); break;
      case L_L: v = va_arg(args, unsigned long); break;
      case L_LL: v = va_arg(args, unsigned long long); break;
      case L_Z: case L_T: v = va_arg(args, size_t); break;
      case L_J: v = va_arg(args, uintmax_t); break;
      default: v = va_arg(args, unsigned);
      }
      fmt_int(&o, &s, v, 0, conv);
      break;
    }
    case 'p': {
      void *p = va_arg(args, void *);
      if (p) fmt_int(&o, &s, (uintptr_t)p, 0, 'p');
      else fmt_str(&o, &s, "(nil)", 5); /* as glibc prints it */
      break;
    }
    case 'c': {
      char c = (char)va_arg(args, int);
      fmt_str(&o, &s, &c, 1);
      break;
    }
    case 's': {
      const char *str = va_arg(args, const char *);
      if (!str) str = s.prec < 0 || s.prec >= 6 ? "(null)" : ""; /* as glibc */
      fmt_str(&o, &s, str, s.prec < 0 ? strlen(str) : strnlen(str, (size_t)s.prec));
      break;
    }
    case 'f': case 'F': case 'e': case 'E': case 'g': case 'G':
      fmt_float(&o, &s, va_arg(args, double), conv);
      break;
    case '%':
      put(&o, '%');
      break;
    default: /* unknown conversion: print it verbatim */
      put(&o, '%');
      put(&o, conv);
    }
  }
  va_end(args);
  if (size) buf[o.pos < size ? o.pos : size - 1] = '\0';
  return o.pos > 0x7fffffff ? -1 : (int)o.pos;
}

int snprintf(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, size, fmt, ap);
  va_end(ap);
  return n;
}

/*
 * <time.h>. The clocks are read from the host with the host function
 * vmlet_clock_gettime(i32 clock) -> i64 nanoseconds (0 = realtime since the
 * Unix epoch, 1 = monotonic); a sandbox without it has no clock, so time()
 * returns -1 and clock_gettime() fails with ENOSYS. Calendar conversions are
 * proleptic Gregorian in UTC, which is also the local time zone.
 */
#include <errno.h>
#include <time.h>

#include "vmlet.h"

#define NS_PER_SEC 1000000000LL
#define SECS_PER_DAY 86400LL

static int read_clock(int32_t id, int64_t *ns) {
  vmlet_value arg = vmlet_i32(id), result;
  if (vmlet_host_call("vmlet_clock_gettime", VMLET_T_I64, &result, 1, &arg) != VMLET_HOST_OK) return -1;
  *ns = result.as.i64;
  return 0;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
  if (id != CLOCK_REALTIME && id != CLOCK_MONOTONIC) {
    errno = EINVAL;
    return -1;
  }
  int64_t ns;
  if (read_clock(id, &ns) != 0) {
    errno = ENOSYS;
    return -1;
  }
  int64_t rem = ns % NS_PER_SEC;
  ts->tv_sec = ns / NS_PER_SEC - (rem < 0);
  ts->tv_nsec = (long)(rem < 0 ? rem + NS_PER_SEC : rem);
  return 0;
}

int timespec_get(struct timespec *ts, int base) {
  return base == TIME_UTC && clock_gettime(CLOCK_REALTIME, ts) == 0 ? base : 0;
}

time_t time(time_t *t) {
  struct timespec ts;
  time_t now = clock_gettime(CLOCK_REALTIME, &ts) == 0 ? ts.tv_sec : (time_t)-1;
  if (t) *t = now;
  return now;
}

/* Processor time since the first call, measured on the monotonic clock. */
clock_t clock(void) {
  static int64_t start = -1;
  int64_t ns;
  if (read_clock(CLOCK_MONOTONIC, &ns) != 0) return (clock_t)-1;
  if (start < 0) start = ns;
  return (clock_t)((ns - start) / (NS_PER_SEC / CLOCKS_PER_SEC));
}

double difftime(time_t a, time_t b) { return (double)a - (double)b; }

/* ---- calendar: days since 1970-01-01 <-> (year, month 1-12, day 1-31) ---- */

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a % b < 0) != (b < 0)); }

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  int64_t era = floor_div(y, 400), yoe = y - era * 400;            /* year of the 400-year era */
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;     /* day of a March-based year */
  return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
  z += 719468;
  int64_t era = floor_div(z, 146097), doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}


struct tm *gmtime_r(const time_t *restrict t, struct tm *restrict out) {
  int64_t days = floor_div(*t, SECS_PER_DAY), secs = *t - days * SECS_PER_DAY, year;
  int month, day;
  civil_from_days(days, &year, &month, &day);
  if (year - 1900 > 0x7fffffff || year - 1900 < -0x7fffffff - 1) {
    errno = EOVERFLOW;
    return NULL;
  }
  out->tm_year = (int)(year - 1900);
  out->tm_mon = month - 1;
  out->tm_mday = day;
  out->tm_hour = (int)(secs / 3600);
  out->tm_min = (int)(secs / 60 % 60);
  out->tm_sec = (int)(secs % 60);
  out->tm_wday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
  out->tm_yday = (int)(days - days_from_civil(year, 1, 1));
  out->tm_isdst = 0;
  out->tm_gmtoff = 0;
  out->tm_zone = "UTC";
  return out;
}

struct tm *gmtime(const time_t *t) {
  static struct tm result;
  return gmtime_r(t, &result);
}

struct tm *localtime_r(const time_t *restrict t, struct tm *restrict out) { return gmtime_r(t, out); }

struct tm *localtime(const time_t *t) { return gmtime(t); }

/* Normalises the fields (C allows them out of range) and returns seconds since the epoch. */
time_t timegm(struct tm *tm) {
  int64_t months = (int64_t)tm->tm_year * 12 + tm->tm_mon, year = floor_div(months, 12) + 1900;
  int64_t month = months - floor_div(months, 12) * 12 + 1;
  int64_t t = (days_from_civil(year, month, 1) + tm->tm_mday - 1) * SECS_PER_DAY + (int64_t)tm->tm_hour * 3600 +
              (int64_t)tm->tm_min * 60 + tm->tm_sec;
  if (!gmtime_r(&t, tm)) return (time_t)-1;
  return t;
}

time_t mktime(struct tm *tm) { return timegm(tm); }

/* ---- strftime ---------------------------------------------------------------- */

static const char *const DAYS[] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
static const char *const MONTHS[] = {"January", "February", "March",     "April",   "May",      "June",
                                     "July",    "August",   "September", "October", "November", "December"};

typedef struct {
  char *s;
  size_t max, n;
} sink;

static void emit(sink *o, const char *text, size_t len) {
  for (size_t i = 0; i < len; i++, o->n++)
    if (o->n < o->max) o->s[o->n] = text[i];
}

static void emitf(sink *o, const char *fmt, long long v) {
  char buf[32];
  int len = snprintf(buf, sizeof buf, fmt, v);
  emit(o, buf, (size_t)len);
}

static const char *name(const char *const *names, int i, int count) { return i >= 0 && i < count ? names[i] : "?"; }

static void conversion(sink *o, char c, const struct tm *tm);

static void emit_format(sink *o, const char *fmt, const struct tm *tm) {
  for (; *fmt; fmt++) {
    if (*fmt != '%' || !fmt[1]) {
      emit(o, fmt, 1);
      continue;
    }
    fmt++;
    if (*fmt == 'E' || *fmt == 'O') fmt++; /* alternative forms are the plain ones in the C locale */
    if (!*fmt) break;
    conversion(o, *fmt, tm);
  }
}

static void conversion(sink *o, char c, const struct tm *tm) {
  long long year = (long long)tm->tm_year + 1900;
  int hour12 = tm->tm_hour % 12 ? tm->tm_hour % 12 : 12;
  switch (c) {
  case 'a': emit(o, name(DAYS, tm->tm_wday, 7), 3); break;
  case 'A': emit(o, name(DAYS, tm->tm_wday, 7), strlen(name(DAYS, tm->tm_wday, 7))); break;
  case 'b': case 'h': emit(o, name(MONTHS, tm->tm_mon, 12), 3); break;
  case 'B': emit(o, name(MONTHS, tm->tm_mon, 12), strlen(name(MONTHS, tm->tm_mon, 12))); break;
  case 'c': emit_format(o, "%a %b %e %H:%M:%S %Y", tm); break;
  case 'C': emitf(o, "%02lld", year / 100); break;
  case 'd': emitf(o, "%02lld", tm->tm_mday); break;
  case 'D': emit_format(o, "%m/%d/%y", tm); break;
  case 'e': emitf(o, "%2lld", tm->tm_mday); break;
  case 'F': emit_format(o, "%Y-%m-%d", tm); break;
  case 'H': emitf(o, "%02lld", tm->tm_hour); break;
  case 'I': emitf(o, "%02lld", hour12); break;
  case 'j': emitf(o, "%03lld", tm->tm_yday + 1); break;
  case 'm': emitf(o, "%02lld", tm->tm_mon + 1); break;
  case 'M': emitf(o, "%02lld", tm->tm_min); break;
  case 'n': emit(o, "\n", 1); break;
  case 'p': emit(o, tm->tm_hour < 12 ? "AM" : "PM", 2); break;
  case 'r': emit_format(o, "%I:%M:%S %p", tm); break;
  case 'R': emit_format(o, "%H:%M", tm); break;
  case 's': {
    struct tm copy = *tm;
    emitf(o, "%lld", (long long)timegm(&copy));
    break;
  }
  case 'S': emitf(o, "%02lld", tm->tm_sec); break;
  case 't': emit(o, "\t", 1); break;
  case 'T': emit_format(o, "%H:%M:%S", tm); break;
  case 'u': emitf(o, "%lld", tm->tm_wday ? tm->tm_wday : 7); break;
  case 'w': emitf(o, "%lld", tm->tm_wday); break;
  case 'x': emit_format(o, "%m/%d/%y", tm); break;
  case 'X': emit_format(o, "%H:%M:%S", tm); break;
  case 'y': emitf(o, "%02lld", (year % 100 + 100) % 100); break;
  case 'Y': emitf(o, "%lld", year); break;
  case 'z': emit(o, "+0000", 5); break;
  case 'Z': emit(o, tm->tm_zone ? tm->tm_zone : "UTC", strlen(tm->tm_zone ? tm->tm_zone : "UTC")); break;
  case '%': emit(o, "%", 1); break;
  default: { /* unknown: copied as written */
    char text[2] = {'%', c};
    emit(o, text, 2);
  }
  }
}

size_t strftime(char *restrict s, size_t max, const char *restrict fmt, const struct tm *restrict tm) {
  sink o = {s, max, 0};
  emit_format(&o, fmt, tm);
  if (o.n >= max) return 0; /* C: 0 when the result (with its NUL) does not fit */
  s[o.n] = '\0';
  return o.n;
}

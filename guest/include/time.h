/*
 * Time for guests. The clocks come from the host through the host function
 * `vmlet_clock_gettime(i32 clock) -> i64 nanoseconds`, which the sandbox must
 * be given (docs/guest-sdk.md, "Time"); without it clock_gettime() fails with
 * ENOSYS and time() returns -1. There are no time zones: local time is UTC.
 */
#ifndef VMLET_TIME_H
#define VMLET_TIME_H

#include "vmlet_c_begin.h"

#include <stddef.h>
#include <stdint.h>

typedef int64_t time_t;
typedef long clock_t;
typedef int clockid_t;

struct timespec {
  time_t tv_sec;
  long tv_nsec;
};

struct tm {
  int tm_sec, tm_min, tm_hour, tm_mday, tm_mon, tm_year, tm_wday, tm_yday, tm_isdst;
  long tm_gmtoff;
  const char *tm_zone;
};

#define CLOCKS_PER_SEC 1000000L
#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
#define CLOCK_PROCESS_CPUTIME_ID 2
#define TIME_UTC 1

time_t time(time_t *t);
clock_t clock(void);
int clock_gettime(clockid_t id, struct timespec *ts);
int timespec_get(struct timespec *ts, int base);
double difftime(time_t a, time_t b);
time_t mktime(struct tm *tm);
time_t timegm(struct tm *tm);
struct tm *gmtime(const time_t *t);
struct tm *gmtime_r(const time_t *restrict t, struct tm *restrict out);
struct tm *localtime(const time_t *t);
struct tm *localtime_r(const time_t *restrict t, struct tm *restrict out);
size_t strftime(char *restrict s, size_t max, const char *restrict fmt, const struct tm *restrict tm);

#include "vmlet_c_end.h"

#endif

/* The POSIX types portable C code expects next to the standard headers. */
#ifndef VMLET_SYS_TYPES_H
#define VMLET_SYS_TYPES_H

#include <stddef.h>
#include <stdint.h>

typedef long ssize_t;
typedef int64_t off_t;
typedef int64_t time_t;
typedef int pid_t;
typedef unsigned mode_t;

#endif

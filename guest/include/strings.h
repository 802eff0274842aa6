/* Case-insensitive comparison (ASCII) and the BSD byte functions. */
#ifndef VMLET_STRINGS_H
#define VMLET_STRINGS_H

#include "vmlet_c_begin.h"

#include <stddef.h>

int strcasecmp(const char *a, const char *b);
int strncasecmp(const char *a, const char *b, size_t n);
int ffs(int i);
void bzero(void *d, size_t n);
int bcmp(const void *a, const void *b, size_t n);

#include "vmlet_c_end.h"

#endif

/* General utilities (guest/src/alloc.c, stdlib.c, strtol.c, strtod.c, qsort.c). */
#ifndef VMLET_STDLIB_H
#define VMLET_STDLIB_H

#include "vmlet_c_begin.h"

#include <stddef.h>

#define EXIT_SUCCESS 0
#define EXIT_FAILURE 1
#define RAND_MAX 0x7fffffff
#define MB_CUR_MAX 1

typedef struct { int quot, rem; } div_t;
typedef struct { long quot, rem; } ldiv_t;
typedef struct { long long quot, rem; } lldiv_t;

void *malloc(size_t n);
void *calloc(size_t count, size_t size);
void *realloc(void *p, size_t n);
void *reallocarray(void *p, size_t count, size_t size);
void free(void *p);
/* Memory aligned to `align` (a power of two); freed with free(). NULL for a bad alignment or no memory. */
void *aligned_alloc(size_t align, size_t n);
/* The same, POSIX style: 0, EINVAL (align not a power of two times sizeof(void *)) or ENOMEM. */
int posix_memalign(void **out, size_t align, size_t n);

_Noreturn void abort(void);
/* A guest has no process to end: exit() and _Exit() abort the sandbox with the status. */
_Noreturn void exit(int status);
_Noreturn void _Exit(int status);
int atexit(void (*fn)(void));
char *getenv(const char *name);

int abs(int x);
long labs(long x);
long long llabs(long long x);
div_t div(int a, int b);
ldiv_t ldiv(long a, long b);
lldiv_t lldiv(long long a, long long b);

int atoi(const char *s);
long atol(const char *s);
long long atoll(const char *s);
double atof(const char *s);
long strtol(const char *restrict s, char **restrict end, int base);
unsigned long strtoul(const char *restrict s, char **restrict end, int base);
long long strtoll(const char *restrict s, char **restrict end, int base);
unsigned long long strtoull(const char *restrict s, char **restrict end, int base);
double strtod(const char *restrict s, char **restrict end);
float strtof(const char *restrict s, char **restrict end);
long double strtold(const char *restrict s, char **restrict end);

void qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));
void qsort_r(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *, void *), void *arg);
void *bsearch(const void *key, const void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));

/* rand(): a seeded generator, the same sequence for the same srand() seed. */
int rand(void);
void srand(unsigned seed);

#include "vmlet_c_end.h"

#endif

/*
 * vmlet guest SDK. A guest is a freestanding static ELF (with the SDK's own small libc
 * and libm, docs/guest-sdk.md, and no operating system) that exposes
 * functions with VMLET_EXPORT and may call host functions, log, and allocate.
 * See docs/guest-sdk.md.
 */
#ifndef VMLET_H
#define VMLET_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmlet_abi.h"

#ifdef __cplusplus
/* C++ guests: the SDK's functions keep their C names, and the C11 spellings this header
 * uses are mapped to C++ ones for the header only (restored at its end). */
#pragma push_macro("restrict")
#pragma push_macro("_Noreturn")
#pragma push_macro("_Static_assert")
#define restrict __restrict
#define _Noreturn [[noreturn]]
#define _Static_assert static_assert
extern "C" {
#endif

/* ---- values ---------------------------------------------------------------- */

typedef struct {
  const uint8_t *ptr;
  uint32_t len;
} vmlet_bytes;

typedef struct {
  uint32_t type; /* VMLET_T_* */
  uint32_t len;  /* byte length for STRING (without NUL) and BYTES */
  union {
    int32_t i32;
    uint32_t u32;
    int64_t i64;
    uint64_t u64;
    float f32;
    double f64;
    bool b;
    const char *str;
    const uint8_t *bytes;
  } as;
} vmlet_value;

static inline vmlet_value vmlet_i32(int32_t v) { vmlet_value x = {VMLET_T_I32, 0, {.i32 = v}}; return x; }
static inline vmlet_value vmlet_u32(uint32_t v) { vmlet_value x = {VMLET_T_U32, 0, {.u32 = v}}; return x; }
static inline vmlet_value vmlet_i64(int64_t v) { vmlet_value x = {VMLET_T_I64, 0, {.i64 = v}}; return x; }
static inline vmlet_value vmlet_u64(uint64_t v) { vmlet_value x = {VMLET_T_U64, 0, {.u64 = v}}; return x; }
static inline vmlet_value vmlet_f32(float v) { vmlet_value x = {VMLET_T_F32, 0, {.f32 = v}}; return x; }
static inline vmlet_value vmlet_f64(double v) { vmlet_value x = {VMLET_T_F64, 0, {.f64 = v}}; return x; }
static inline vmlet_value vmlet_bool(bool v) { vmlet_value x = {VMLET_T_BOOL, 0, {.b = v}}; return x; }
vmlet_value vmlet_string(const char *s);
vmlet_value vmlet_bytes_value(const void *p, uint32_t len);

/* ---- exporting functions ---------------------------------------------------
 * static int32_t add(int32_t a, int32_t b) { return a + b; }
 * VMLET_EXPORT(add, I32, I32, I32);      // name, return type, parameter types
 * Types: VOID (return only) I32 U32 I64 U64 F32 F64 BOOL STRING BYTES.
 * STRING parameters arrive as `const char *` (NUL-terminated), BYTES as `vmlet_bytes`.
 * STRING/BYTES results are copied out when the function returns; memory from
 * vmlet_scratch() is freed after that copy.
 */
typedef void (*vmlet_wrapper)(const vmlet_value *args, vmlet_value *ret);

typedef struct {
  const char *name;
  const uint8_t *params;
  uint32_t n_params;
  uint32_t ret;
  vmlet_wrapper wrapper;
} vmlet_fn_entry;

_Static_assert(sizeof(vmlet_fn_entry) == VMLET_FN_ENTRY_SIZE, "function table entry layout");

#include "vmlet_export.h"

/* ---- calling the host ------------------------------------------------------
 * Returns 0 on success and fills *result (a STRING/BYTES result points into the
 * output buffer and stays valid until the next host call, log or return).
 * Returns a VMLET_HOST_* status on failure; vmlet_host_error() gives the text.
 */
int vmlet_host_call(const char *name, uint32_t ret_type, vmlet_value *result, uint32_t argc,
                    const vmlet_value *argv);
const char *vmlet_host_error(void);

/* ---- logging --------------------------------------------------------------- */
void vmlet_log(int level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
bool vmlet_log_enabled(int level);
#define VMLET_ERROR(...) vmlet_log(VMLET_LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define VMLET_WARN(...) vmlet_log(VMLET_LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define VMLET_INFO(...) vmlet_log(VMLET_LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define VMLET_DEBUG(...) vmlet_log(VMLET_LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)
#define VMLET_TRACE(...) vmlet_log(VMLET_LOG_TRACE, __FILE__, __LINE__, __VA_ARGS__)

/* ---- aborting -------------------------------------------------------------- */
_Noreturn void vmlet_abort_at(uint32_t code, const char *file, int line, const char *msg);
_Noreturn void vmlet_panic_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define vmlet_abort(msg) vmlet_abort_at(VMLET_ABORT_PANIC, __FILE__, __LINE__, (msg))
#define vmlet_panic(...) vmlet_panic_at(__FILE__, __LINE__, __VA_ARGS__)
#define vmlet_out_of_memory() vmlet_abort_at(VMLET_ABORT_OUT_OF_MEMORY, __FILE__, __LINE__, "out of memory")
#define VMLET_ASSERT(c) ((c) ? (void)0 : vmlet_panic("assertion failed: %s", #c))

/* ---- per-call scratch memory (freed after the current export returns) ------ */
void *vmlet_scratch(size_t n);

/* ---- randomness (reseeded by the host for every new or restored sandbox) --- */
uint64_t vmlet_random_u64(void);

/* ---- heap ------------------------------------------------------------------ */
void *malloc(size_t n);
void *calloc(size_t count, size_t size);
void *realloc(void *p, size_t n);
void free(void *p);
/* Bytes currently allocated and the heap's capacity, for tests and diagnostics. */
size_t vmlet_heap_used(void);
size_t vmlet_heap_capacity(void);

/* ---- memory and strings ---------------------------------------------------- */
void *memcpy(void *restrict d, const void *restrict s, size_t n);
void *memmove(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
void *memchr(const void *s, int c, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strcpy(char *restrict d, const char *restrict s);
char *strncpy(char *restrict d, const char *restrict s, size_t n);
char *strcat(char *restrict d, const char *restrict s);
char *strchr(const char *s, int c);
char *strrchr(const char *s, int c);
char *strstr(const char *h, const char *n);
char *strdup(const char *s);

/* ---- formatting (%d %i %u %x %X %p %s %c %ld %lld %lu %llu %lx %zu %zd %f %g %e %%,
 * width, precision, '-', '0' flags) ------------------------------------------ */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#pragma pop_macro("_Static_assert")
#pragma pop_macro("_Noreturn")
#pragma pop_macro("restrict")
#endif

#endif

/*
 * What g++'s output calls into at run time, for C++ guests built as the SDK builds them
 * (-fno-exceptions -fno-rtti): the global operators new and delete on the guest heap, the
 * registration of static destructors, and the pure-virtual trap. Written in C under their
 * Itanium C++ ABI names. Without exceptions a failed `new` cannot throw: it aborts the call
 * with OUT_OF_MEMORY, as vmlet_out_of_memory() does; the nothrow forms return NULL.
 */
#include <stdint.h>
#include <stdlib.h>

#include "vmlet.h"

#define ABI_NAME(name) __asm__(#name)

/* ---- operator new ---- */

static void *new_or_abort(size_t n) {
  void *p = malloc(n);
  if (!p) vmlet_out_of_memory();
  return p;
}

static void *aligned_or_abort(size_t n, size_t align) {
  void *p = aligned_alloc(align, n);
  if (!p) vmlet_out_of_memory();
  return p;
}

void *cxx_new(size_t n) ABI_NAME(_Znwm);
void *cxx_new(size_t n) { return new_or_abort(n); }
void *cxx_new_array(size_t n) ABI_NAME(_Znam);
void *cxx_new_array(size_t n) { return new_or_abort(n); }

/* operator new(size_t, const std::nothrow_t &) and its array form */
void *cxx_new_nothrow(size_t n, const void *tag) ABI_NAME(_ZnwmRKSt9nothrow_t);
void *cxx_new_nothrow(size_t n, const void *tag) { (void)tag; return malloc(n); }
void *cxx_new_array_nothrow(size_t n, const void *tag) ABI_NAME(_ZnamRKSt9nothrow_t);
void *cxx_new_array_nothrow(size_t n, const void *tag) { (void)tag; return malloc(n); }

/* operator new(size_t, std::align_val_t): C++17 over-aligned types */
void *cxx_new_aligned(size_t n, size_t align) ABI_NAME(_ZnwmSt11align_val_t);
void *cxx_new_aligned(size_t n, size_t align) { return aligned_or_abort(n, align); }
void *cxx_new_array_aligned(size_t n, size_t align) ABI_NAME(_ZnamSt11align_val_t);
void *cxx_new_array_aligned(size_t n, size_t align) { return aligned_or_abort(n, align); }
void *cxx_new_aligned_nothrow(size_t n, size_t align, const void *tag) ABI_NAME(_ZnwmSt11align_val_tRKSt9nothrow_t);
void *cxx_new_aligned_nothrow(size_t n, size_t align, const void *tag) { (void)tag; return aligned_alloc(align, n); }
void *cxx_new_array_aligned_nothrow(size_t n, size_t align, const void *tag) ABI_NAME(_ZnamSt11align_val_tRKSt9nothrow_t);
void *cxx_new_array_aligned_nothrow(size_t n, size_t align, const void *tag) { (void)tag; return aligned_alloc(align, n); }

/* ---- operator delete: every form frees the same heap block ---- */

void cxx_delete(void *p) ABI_NAME(_ZdlPv);
void cxx_delete(void *p) { free(p); }
void cxx_delete_array(void *p) ABI_NAME(_ZdaPv);
void cxx_delete_array(void *p) { free(p); }
void cxx_delete_sized(void *p, size_t n) ABI_NAME(_ZdlPvm);
void cxx_delete_sized(void *p, size_t n) { (void)n; free(p); }
void cxx_delete_array_sized(void *p, size_t n) ABI_NAME(_ZdaPvm);
void cxx_delete_array_sized(void *p, size_t n) { (void)n; free(p); }
void cxx_delete_nothrow(void *p, const void *tag) ABI_NAME(_ZdlPvRKSt9nothrow_t);
void cxx_delete_nothrow(void *p, const void *tag) { (void)tag; free(p); }
void cxx_delete_array_nothrow(void *p, const void *tag) ABI_NAME(_ZdaPvRKSt9nothrow_t);
void cxx_delete_array_nothrow(void *p, const void *tag) { (void)tag; free(p); }
void cxx_delete_aligned(void *p, size_t align) ABI_NAME(_ZdlPvSt11align_val_t);
void cxx_delete_aligned(void *p, size_t align) { (void)align; free(p); }
void cxx_delete_array_aligned(void *p, size_t align) ABI_NAME(_ZdaPvSt11align_val_t);
void cxx_delete_array_aligned(void *p, size_t align) { (void)align; free(p); }
void cxx_delete_sized_aligned(void *p, size_t n, size_t align) ABI_NAME(_ZdlPvmSt11align_val_t);
void cxx_delete_sized_aligned(void *p, size_t n, size_t align) { (void)n; (void)align; free(p); }
void cxx_delete_array_sized_aligned(void *p, size_t n, size_t align) ABI_NAME(_ZdaPvmSt11align_val_t);
void cxx_delete_array_sized_aligned(void *p, size_t n, size_t align) { (void)n; (void)align; free(p); }

/* std::nothrow, the object `new (std::nothrow) T` passes */
const struct { char unused; } cxx_nothrow ABI_NAME(_ZSt7nothrow) = {0};

/* ---- static objects ---- */

/* The handle g++ passes to __cxa_atexit for this module. */
void *__dso_handle = &__dso_handle;

/* A guest never exits (a call ends, the sandbox is closed or restored, no code runs after),
 * so destructors of static objects are never due: registering one does nothing. */
int __cxa_atexit(void (*destructor)(void *), void *object, void *dso) {
  (void)destructor;
  (void)object;
  (void)dso;
  return 0;
}

/* Function-local statics: one thread, so a guard byte is enough (used without -fno-threadsafe-statics). */
int __cxa_guard_acquire(uint64_t *guard) { return *(volatile uint8_t *)guard == 0; }
void __cxa_guard_release(uint64_t *guard) { *(volatile uint8_t *)guard = 1; }
void __cxa_guard_abort(uint64_t *guard) { (void)guard; }

/* A virtual call through a vtable slot of an abstract class: a bug in the guest. */
void __cxa_pure_virtual(void) { vmlet_panic("pure virtual function called"); }
void __cxa_deleted_virtual(void) { vmlet_panic("deleted virtual function called"); }

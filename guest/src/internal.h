/* Guest SDK internals shared between SDK source files; not part of the public API. */
#ifndef VMLET_INTERNAL_H
#define VMLET_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Hands the heap region [base, base + size) to the allocator. Called once by
 * the startup code before any export runs; malloc returns NULL until then. */
void vmlet_heap_init(void *base, size_t size);
/* Where the allocator publishes {bytes in use, peak} after every change (the control block). */
void vmlet_heap_report_to(volatile uint64_t *out);
/* A heap block of n bytes whose payload p has p + offset aligned to `align` (> 16). */
void *vmlet__aligned_block(size_t align, size_t offset, size_t n);

#if VMLET_PROFILE
/* The allocator's entry points in the profiling library, wrapped by profile.c. */
void *vmlet__heap_malloc(size_t n);
void *vmlet__heap_calloc(size_t count, size_t size);
void *vmlet__heap_realloc(void *p, size_t n);
void vmlet__heap_free(void *p);
#endif

#endif

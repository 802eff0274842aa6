/* Guest SDK internals shared between SDK source files; not part of the public API. */
#ifndef VMLET_INTERNAL_H
#define VMLET_INTERNAL_H

#include <stddef.h>

/* Hands the heap region [base, base + size) to the allocator. Called once by
 * the startup code before any export runs; malloc returns NULL until then. */
void vmlet_heap_init(void *base, size_t size);

#endif

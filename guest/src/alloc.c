/*
 * Heap allocator: boundary tags, immediate coalescing, segregated free lists.
 *
 * Every block starts with a 16-byte header {prev_size, head}. `head` holds the
 * block size (a multiple of 16, header included), an in-use bit, a
 * previous-block-in-use bit and a magic number in the top 16 bits that lets
 * free() recognise foreign or damaged pointers. `prev_size` is the boundary
 * tag of the block before: valid while that block is free, so free() can find
 * it in O(1). Free blocks keep their list links in the payload. Free lists
 * are binned by floor(log2(size)); a bitmap of non-empty bins makes finding a
 * block O(1) apart from a short first-fit scan of the request's own bin.
 * A size-0 in-use sentinel block ends the heap.
 */
#include <stdlib.h>

#include "internal.h"
#include "vmlet.h"

#if VMLET_PROFILE
/* The profiling library's malloc & co. (profile.c) count each allocation and call these. */
#define malloc vmlet__heap_malloc
#define calloc vmlet__heap_calloc
#define realloc vmlet__heap_realloc
#define free vmlet__heap_free
#endif

typedef struct block {
  size_t prev_size;          /* size of the previous block, while it is free */
  size_t head;               /* size | MAGIC | INUSE | PREV_INUSE */
  struct block *next, *prev; /* free-list links (free blocks only) */
} block;

#define HDR 16u
#define MIN_BLOCK sizeof(block) /* room for header + list links */
#define INUSE 1u
#define PREV_INUSE 2u
#define FLAGS 15u
#define MAGIC 0xa10c000000000000ull
#define MAGIC_MASK 0xffff000000000000ull
#define SIZE_MASK (~(MAGIC_MASK | FLAGS))
#define NBINS 64
#define SCAN_LIMIT 16 /* first-fit probes in the request's own bin */

static char *heap_lo, *heap_hi; /* first block, sentinel block */
static block *bins[NBINS];
static uint64_t nonempty; /* bit i set iff bins[i] != NULL */
static size_t used, peak;
static volatile uint64_t *usage_out; /* {used, peak}, where the host reads them; NULL: nowhere */

/* Shows the host (sb.stats()) how much of the heap is in use, after every change. */
static void publish_usage(void) {
  if (used > peak) peak = used;
  if (usage_out) {
    usage_out[0] = used;
    usage_out[1] = peak;
  }
}

void vmlet_heap_report_to(volatile uint64_t *out) {
  usage_out = out;
  publish_usage();
}

_Static_assert(sizeof(block) == 32, "block header layout");

static inline size_t bsize(const block *b) { return b->head & SIZE_MASK; }
static inline block *at(void *p, size_t off) { return (block *)((char *)p + off); }
static inline int bin_of(size_t size) { return 63 - __builtin_clzll(size); }

/* Checks that b has a sane header; `what` names the caller for the message. */
static void check(const block *b, const char *what) {
  size_t size = bsize(b);
  if ((const char *)b < heap_lo || (const char *)b >= heap_hi || ((uintptr_t)b & 15) ||
      (b->head & MAGIC_MASK) != MAGIC || size < MIN_BLOCK || size > (size_t)(heap_hi - (const char *)b))
    vmlet_panic("heap corruption: bad block header at %p (%s)", (const void *)b, what);
}

static void link_free(block *b) {
  int i = bin_of(bsize(b));
  b->prev = NULL;
  b->next = bins[i];
  if (b->next) b->next->prev = b;
  bins[i] = b;
  nonempty |= 1ull << i;
}

static void unlink_free(block *b) {
  int i = bin_of(bsize(b));
  /* Safe unlinking: damaged links would otherwise let writes go anywhere. */
  if ((b->next && b->next->prev != b) || (b->prev ? b->prev->next != b : bins[i] != b))
    vmlet_panic("heap corruption: bad free-list links at %p", (void *)b);
  if (b->next) b->next->prev = b->prev;
  if (b->prev)
    b->prev->next = b->next;
  else if (!(bins[i] = b->next))
    nonempty &= ~(1ull << i);
}

/* Makes [b, b + size) a free block, merging it with the following block if
 * that one is free. The block before b must be in use. */
static void make_free(block *b, size_t size) {
  block *nx = at(b, size);
  if (!(nx->head & INUSE)) {
    check(nx, "next block");
    unlink_free(nx);
    size += bsize(nx);
    nx = at(b, size);
  }
  b->head = MAGIC | size | PREV_INUSE;
  nx->prev_size = size;
  nx->head &= ~(size_t)PREV_INUSE;
  link_free(b);
}

/* Shrinks in-use block b to `size` bytes, freeing the tail if it is big enough. */
static void trim(block *b, size_t size) {
  size_t have = bsize(b);
  if (have - size < MIN_BLOCK) return;
  b->head = (b->head & ~SIZE_MASK) | size;
  used -= have - size;
  make_free(at(b, size), have - size);
}

/* Block size for an n-byte request, or 0 if it can never fit. */
static size_t block_size(size_t n) {
  if (n > (size_t)(heap_hi - heap_lo)) return 0; /* also avoids overflow below */
  size_t size = (n + HDR + 15) & ~(size_t)15;
  return size < MIN_BLOCK ? MIN_BLOCK : size;
}

/* Validates a pointer returned by malloc and returns its in-use block. */
static block *block_of(void *p, const char *what) {
  char *c = p;
  if (c < heap_lo + HDR || c >= heap_hi || ((uintptr_t)c & 15))
    vmlet_panic("%s: pointer %p was not returned by malloc", what, p);
  block *b = (block *)(c - HDR);
  if ((b->head & MAGIC_MASK) == MAGIC && !(b->head & INUSE))
    vmlet_panic("%s: double free or use of freed pointer %p", what, p);
  check(b, what);
  block *nx = at(b, bsize(b));
  if ((nx->head & MAGIC_MASK) != MAGIC || !(nx->head & PREV_INUSE))
    vmlet_panic("heap corruption: block after %p is damaged (%s)", p, what);
  return b;
}

void vmlet_heap_init(void *base, size_t size) {
  uintptr_t lo = ((uintptr_t)base + 15) & ~(uintptr_t)15;
  uintptr_t hi = ((uintptr_t)base + size) & ~(uintptr_t)15;
  for (int i = 0; i < NBINS; i++) bins[i] = NULL;
  nonempty = 0;
  used = peak = 0;
  heap_lo = heap_hi = NULL;
  if ((uintptr_t)base + size < (uintptr_t)base || hi < lo + MIN_BLOCK + HDR) return; /* wraps or too small */
  heap_lo = (char *)lo;
  heap_hi = (char *)(hi - HDR);
  block *first = (block *)heap_lo, *end = (block *)heap_hi;
  end->head = MAGIC | INUSE; /* size-0 sentinel: never free, never merged */
  first->head = MAGIC | INUSE | PREV_INUSE;
  make_free(first, (size_t)(heap_hi - heap_lo));
}

void *malloc(size_t n) {
  size_t size = heap_lo ? block_size(n) : 0;
  if (!size) return NULL;
  int i = bin_of(size);
  block *b = bins[i];
  /* The own bin holds sizes in [2^i, 2^(i+1)): some may be too small. */
  for (int k = 0; b && k < SCAN_LIMIT && bsize(b) < size; k++) b = b->next;
  if (b && bsize(b) < size) b = NULL;
  if (!b) {
    uint64_t larger = i < 63 ? nonempty & (~0ull << (i + 1)) : 0;
    if (larger) {
      b = bins[__builtin_ctzll(larger)]; /* every block there fits */
    } else {
      /* Nearly out of memory: scan the own bin exhaustively before failing. */
      for (b = bins[i]; b && bsize(b) < size; b = b->next) {
      }
      if (!b) return NULL;
    }
  }
  check(b, "malloc");
  unlink_free(b);
  size_t have = bsize(b);
  b->head = MAGIC | have | INUSE | PREV_INUSE; /* free blocks follow in-use ones */
  at(b, have)->head |= PREV_INUSE;
  used += have;
  trim(b, size);
  publish_usage();
  return (char *)b + HDR;
}

void *calloc(size_t count, size_t size) {
  size_t n;
  if (__builtin_mul_overflow(count, size, &n)) return NULL;
  void *p = malloc(n);
  return p ? memset(p, 0, n) : NULL;
}

void free(void *p) {
  if (!p) return;
  block *b = block_of(p, "free");
  size_t size = bsize(b);
  used -= size;
  b->head &= ~(size_t)INUSE; /* a stale header inside a merged block still says "free" */
  if (!(b->head & PREV_INUSE)) {
    if (b->prev_size > (size_t)((char *)b - heap_lo))
      vmlet_panic("heap corruption: bad boundary tag at %p", p);
    block *pv = (block *)((char *)b - b->prev_size);
    check(pv, "previous block");
    if ((pv->head & INUSE) || bsize(pv) != b->prev_size)
      vmlet_panic("heap corruption: boundary tag mismatch before %p", p);
    unlink_free(pv);
    size += bsize(pv);
    b = pv;
  }
  make_free(b, size);
  publish_usage();
}

/* realloc(p, 0) keeps a minimal block (like malloc(0)) rather than freeing,
 * so a NULL result always means failure with p untouched. */
void *realloc(void *p, size_t n) {
  if (!p) return malloc(n);
  block *b = block_of(p, "realloc");
  size_t size = block_size(n), have = bsize(b);
  if (!size) return NULL;
  if (size <= have) {
    trim(b, size);
    publish_usage();
    return p;
  }
  block *nx = at(b, have);
  if (!(nx->head & INUSE) && have + bsize(nx) >= size) {
    /* Grow in place into the free neighbour. */
    check(nx, "realloc neighbour");
    unlink_free(nx);
    used += bsize(nx);
    have += bsize(nx);
    b->head = (b->head & ~SIZE_MASK) | have;
    at(b, have)->head |= PREV_INUSE;
    trim(b, size);
    publish_usage();
    return p;
  }
  void *q = malloc(n);
  if (!q) return NULL;
  memcpy(q, p, have - HDR);
  free(p);
  return q;
}

/* An ordinary block of n bytes whose payload p has p + offset at a multiple of `align` (a
 * power of two above 16; offset a multiple of 16 below it): malloc enough to find such a p
 * at least one minimal block past the start, free the leading gap as a block of its own,
 * and trim the tail. free() and realloc() see a normal block. */
void *vmlet__aligned_block(size_t align, size_t offset, size_t n) {
  size_t heap = heap_lo ? (size_t)(heap_hi - heap_lo) : 0;
  if (align > heap || n > heap - align) return NULL; /* also keeps the sum below from wrapping */
  char *p = malloc(n + align + MIN_BLOCK);
  if (!p || ((uintptr_t)p + offset) % align == 0) return p;
  block *b = block_of(p, "aligned_alloc");
  char *want = (char *)((((uintptr_t)p + offset + MIN_BLOCK + align - 1) & ~(uintptr_t)(align - 1)) - offset);
  block *a = (block *)(want - HDR);
  size_t gap = (size_t)((char *)a - (char *)b), have = bsize(b);
  a->head = MAGIC | (have - gap) | INUSE; /* the gap before it becomes free: PREV_INUSE clear */
  used -= gap;
  make_free(b, gap); /* b's predecessor is in use: b was a free block, and free blocks are merged */
  trim(a, block_size(n));
  publish_usage();
  return want;
}

#if !VMLET_PROFILE /* the profiling library's own aligned_alloc puts its prefix before the payload */
void *aligned_alloc(size_t align, size_t n) {
  if (align == 0 || (align & (align - 1))) return NULL;
  return align <= HDR ? malloc(n) : vmlet__aligned_block(align, 0, n);
}
#endif

int posix_memalign(void **out, size_t align, size_t n) {
  if (align < sizeof(void *) || (align & (align - 1))) return 22; /* EINVAL */
  void *p = aligned_alloc(align, n);
  if (!p) return 12; /* ENOMEM */
  *out = p;
  return 0;
}

size_t vmlet_heap_used(void) { return used; }

size_t vmlet_heap_capacity(void) { return (size_t)(heap_hi - heap_lo); }

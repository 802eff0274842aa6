/*
 * Memory profiling, compiled only into the SDK's profiling library (VMLET_PROFILE=1; the
 * plain library has none of this). malloc, calloc, realloc and free wrap the allocator
 * (alloc.c names its entry points vmlet__heap_* here). Each allocation's site — its stack of
 * return addresses, walked along the frame-pointer chain — is counted in `vmlet__profile`
 * (layout: guest/include/vmlet_profile.h), a table in guest memory that the host reads and
 * that snapshots keep. Each block carries a 16-byte prefix {size, site} so that free()
 * knows what to take off.
 */
#include "internal.h"
#include "vmlet.h"
#include "vmlet_profile.h"

#if VMLET_PROFILE

typedef struct {
  uint64_t alloc_objects, alloc_bytes, inuse_objects, inuse_bytes;
  uint32_t frames, hash;
  uint64_t pcs[VMLET_PROFILE_DEPTH];
} site;

typedef struct {
  uint32_t magic, version, sites, depth, site_size, used;
  site slot[VMLET_PROFILE_SITES];
} profile_table;

/* In front of every block handed out; 16 bytes keep the caller's pointer 16-byte aligned. */
typedef struct {
  uint64_t size;
  uint32_t site;
  uint32_t unused;
} prefix;

_Static_assert(sizeof(site) == VMLET_PROF_SITE_SIZE_BYTES, "site layout");
_Static_assert(__builtin_offsetof(site, frames) == VMLET_PROF_FRAMES, "site layout");
_Static_assert(__builtin_offsetof(site, pcs) == VMLET_PROF_PCS, "site layout");
_Static_assert(__builtin_offsetof(profile_table, used) == VMLET_PROF_USED, "table layout");
_Static_assert(__builtin_offsetof(profile_table, slot) == VMLET_PROF_HEADER_SIZE, "table layout");
_Static_assert(sizeof(prefix) == 16, "prefix keeps 16-byte alignment");
_Static_assert((VMLET_PROFILE_SITES & (VMLET_PROFILE_SITES - 1)) == 0, "sites: a power of two");

/* Global and in .bss: the host finds it by this name in the guest ELF. */
extern profile_table vmlet__profile;
profile_table vmlet__profile;

#define MAX_USED (VMLET_PROFILE_SITES / 8 * 7) /* keeps probe sequences short */

static uintptr_t stack_top; /* just above vmlet__main's frame; 0 until start-up found it */

/* Runs first among the constructors, called from vmlet__main, which _start called with a
 * zero frame pointer: the frame whose saved frame pointer is 0 is vmlet__main's, the top of
 * every stack walk. Also fills in the table header. */
__attribute__((constructor(101))) static void profile_start(void) {
  vmlet__profile.magic = VMLET_PROFILE_MAGIC;
  vmlet__profile.version = VMLET_PROFILE_VERSION;
  vmlet__profile.sites = VMLET_PROFILE_SITES;
  vmlet__profile.depth = VMLET_PROFILE_DEPTH;
  vmlet__profile.site_size = sizeof(site);
  uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
  for (int i = 0; i < 8 && fp && !(fp & 7); i++) {
    uintptr_t up = *(const uintptr_t *)fp;
    if (!up) {
      stack_top = fp + 16;
      return;
    }
    if (up <= fp) return;
    fp = up;
  }
}

/* Return addresses from frame `fp` outwards. Frames only move up the stack, so every read
 * lies between fp and stack_top. */
static uint32_t walk(uintptr_t fp, uint64_t *pcs) {
  uint32_t n = 0;
  if (!stack_top) return 0;
  while (n < VMLET_PROFILE_DEPTH && !(fp & 7) && fp <= stack_top - 16) {
    const uintptr_t *frame = (const uintptr_t *)fp;
    if (!frame[1]) break;
    pcs[n++] = frame[1];
    if (frame[0] <= fp) break;
    fp = frame[0];
  }
  return n;
}

static uint32_t hash_of(const uint64_t *pcs, uint32_t n) {
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a over whole words */
  for (uint32_t i = 0; i < n; i++) h = (h ^ pcs[i]) * 0x100000001b3ull;
  return (uint32_t)(h ^ (h >> 32));
}

/* The slot counting this stack (open addressing; found or claimed). Slot 0 takes what has
 * no slot of its own: no stack, or a table too full. */
static uint32_t site_of(const uint64_t *pcs, uint32_t n) {
  if (!n) return 0;
  uint32_t hash = hash_of(pcs, n), mask = VMLET_PROFILE_SITES - 1, i = hash & mask;
  for (uint32_t probe = 0; probe < VMLET_PROFILE_SITES; probe++, i = (i + 1) & mask) {
    site *s = &vmlet__profile.slot[i];
    if (i == 0) continue;
    if (s->frames == 0) {
      if (vmlet__profile.used >= MAX_USED) return 0;
      vmlet__profile.used++;
      s->frames = n;
      s->hash = hash;
      memcpy(s->pcs, pcs, n * sizeof *pcs);
      return i;
    }
    if (s->hash == hash && s->frames == n && memcmp(s->pcs, pcs, n * sizeof *pcs) == 0) return i;
  }
  return 0;
}

/* Counts `raw` (a block of n + 16 bytes, or NULL) at the site of frame fp's caller. */
static void *track(prefix *raw, size_t n, uintptr_t fp) {
  if (!raw) return NULL;
  uint64_t pcs[VMLET_PROFILE_DEPTH];
  uint32_t i = site_of(pcs, walk(fp, pcs));
  site *s = &vmlet__profile.slot[i];
  s->alloc_objects++;
  s->alloc_bytes += n;
  s->inuse_objects++;
  s->inuse_bytes += n;
  raw->size = n;
  raw->site = i;
  return raw + 1;
}

/* Takes a freed block off its site; a prefix the program overwrote changes nothing. */
static void untrack(prefix old) {
  if (old.site >= VMLET_PROFILE_SITES) return;
  site *s = &vmlet__profile.slot[old.site];
  if (!s->inuse_objects || s->inuse_bytes < old.size) return;
  s->inuse_objects--;
  s->inuse_bytes -= old.size;
}

static prefix *raw_malloc(size_t n) {
  return n > SIZE_MAX - sizeof(prefix) ? NULL : vmlet__heap_malloc(n + sizeof(prefix));
}

void *malloc(size_t n) { return track(raw_malloc(n), n, (uintptr_t)__builtin_frame_address(0)); }

void *calloc(size_t count, size_t size) {
  size_t n;
  if (__builtin_mul_overflow(count, size, &n)) return NULL;
  void *p = track(raw_malloc(n), n, (uintptr_t)__builtin_frame_address(0));
  return p ? memset(p, 0, n) : NULL;
}

/* The prefix is read before the allocator checks the pointer (it panics on a bad one), and
 * counted off only after that check passed. */
void *realloc(void *p, size_t n) {
  uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
  if (!p) return track(raw_malloc(n), n, fp);
  prefix old = ((prefix *)p)[-1];
  prefix *raw = n > SIZE_MAX - sizeof(prefix) ? NULL : vmlet__heap_realloc((prefix *)p - 1, n + sizeof(prefix));
  if (!raw) return NULL;
  untrack(old);
  return track(raw, n, fp);
}

void *aligned_alloc(size_t align, size_t n) {
  if (align == 0 || (align & (align - 1)) || n > SIZE_MAX - sizeof(prefix)) return NULL;
  prefix *raw = align <= sizeof(prefix) ? vmlet__heap_malloc(n + sizeof(prefix)) : vmlet__aligned_block(align, sizeof(prefix), n + sizeof(prefix));
  return track(raw, n, (uintptr_t)__builtin_frame_address(0));
}

void free(void *p) {
  if (!p) return;
  prefix old = ((prefix *)p)[-1]; /* free() reuses these bytes for its list links */
  vmlet__heap_free((prefix *)p - 1);
  untrack(old);
}

#endif

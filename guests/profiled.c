/*
 * A guest built with memory profiling on (guests/Makefile): allocations at known sites, each
 * marked with a PROFILED_* comment that test/memory-profile.test.ts finds to know its line.
 * bench/profile-cost.ts times `churn` here and in the same guest built without profiling.
 */
#include <vmlet.h>

static void *kept[4096];
static uint32_t nkept;

/* count blocks of 100 bytes, kept until release_kept. */
__attribute__((noinline)) static void keep_blocks(int32_t count) {
  for (int32_t i = 0; i < count && nkept < 4096; i++) kept[nkept++] = malloc(100); /* PROFILED_KEEP */
}

static int32_t alloc_kept(int32_t count) {
  keep_blocks(count);
  return (int32_t)nkept;
}
VMLET_EXPORT(alloc_kept, I32, I32);

/* count blocks of 48 bytes, freed again: allocated, none in use. */
__attribute__((noinline)) static void *temporary(void) {
  return malloc(48); /* PROFILED_TEMPORARY */
}

static int32_t alloc_freed(int32_t count) {
  for (int32_t i = 0; i < count; i++) free(temporary());
  return count;
}
VMLET_EXPORT(alloc_freed, I32, I32);

/* One zeroed table of `size` bytes that grows to twice that: the calloc'd block is freed by
 * realloc, the grown one stays. */
__attribute__((noinline)) static char *zeroed_table(int32_t size) {
  return calloc((size_t)size, 1); /* PROFILED_CALLOC */
}

__attribute__((noinline)) static char *grown(char *table, int32_t size) {
  return realloc(table, (size_t)size * 2); /* PROFILED_REALLOC */
}

static int32_t alloc_grown(int32_t size) {
  char *table = grown(zeroed_table(size), size);
  kept[nkept++ % 4096] = table;
  return table ? table[size - 1] : -1;
}
VMLET_EXPORT(alloc_grown, I32, I32);

static int32_t release_kept(void) {
  int32_t n = (int32_t)nkept;
  for (uint32_t i = 0; i < nkept && i < 4096; i++) free(kept[i]);
  nkept = 0;
  return n;
}
VMLET_EXPORT(release_kept, I32);

/* malloc/free pairs of mixed sizes, for the bench. */
static uint64_t churn(int32_t rounds) {
  uint64_t sum = 0;
  void *live[8] = {0};
  for (int32_t i = 0; i < rounds; i++) {
    uint32_t slot = (uint32_t)i & 7;
    free(live[slot]);
    live[slot] = malloc(16 + (size_t)((i * 37) & 255)); /* PROFILED_CHURN */
    sum += (uintptr_t)live[slot] & 0xff;
  }
  for (int i = 0; i < 8; i++) free(live[i]);
  return sum;
}
VMLET_EXPORT(churn, U64, I32);

/* A hostile guest's move: writes `value` at byte `offset` of its own profile table, for the
 * tests of the host's checks. Weak: profiled-off.elf has no table. */
extern uint8_t vmlet__profile[] __attribute__((weak));

static int32_t poke_table(uint32_t offset, uint64_t value) {
  if (!vmlet__profile) return -1;
  memcpy(vmlet__profile + offset, &value, sizeof value);
  return 0;
}
VMLET_EXPORT(poke_table, I32, U32, U64);

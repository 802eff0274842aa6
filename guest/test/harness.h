/* The host tests' harness: counted checks (the first 40 failures printed) and a seeded
 * splitmix64, so a failure reproduces. Define HARNESS_SEED before including it. */
#ifndef VMLET_TEST_HARNESS_H
#define VMLET_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

static int checks, failures;
#define CHECK(cond, ...)                          \
  do {                                            \
    checks++;                                     \
    if (!(cond) && ++failures <= 40) {            \
      printf("FAIL %s:%d: ", __FILE__, __LINE__); \
      printf(__VA_ARGS__);                        \
      printf("\n");                               \
    }                                             \
  } while (0)

static uint64_t rng_state = HARNESS_SEED;
static inline uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static inline size_t rndn(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

#endif

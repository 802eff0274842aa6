/* The compute kernel of the "guest compute speed" row: the same source runs inside a
 * vmlet guest (compute_guest.c) and natively in the host (process_ref --only compute_us).
 * It fills a buffer from a xorshift stream, then mixes it `rounds` times with a
 * multiply-xor hash: integer work on data that stays in L1/L2, no calls, no system calls. */
#ifndef VMLET_BENCH_CHECKSUM_H
#define VMLET_BENCH_CHECKSUM_H

#include <stdint.h>

#define CHECKSUM_BUFFER_BYTES (64u * 1024u)

static inline uint64_t bench_checksum(uint64_t *buf, uint32_t rounds, uint32_t seed) {
  const uint32_t words = CHECKSUM_BUFFER_BYTES / 8;
  uint64_t x = 0x9e3779b97f4a7c15ull ^ seed;
  for (uint32_t i = 0; i < words; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    buf[i] = x;
  }
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint32_t r = 0; r < rounds; r++) {
    for (uint32_t i = 0; i < words; i++) {
      h = (h ^ buf[i]) * 0x100000001b3ull;
      h ^= h >> 29;
    }
    buf[r % words] ^= h; /* each round depends on the last */
  }
  return h;
}

#endif

/* The vmlet guest of the "guest compute speed" bench row: checksum.h's kernel as an export. */
#include <vmlet.h>

#include "checksum.h"

static uint64_t buffer[CHECKSUM_BUFFER_BYTES / 8];

static uint64_t checksum(uint32_t rounds, uint32_t seed) { return bench_checksum(buffer, rounds, seed); }
VMLET_EXPORT(checksum, U64, U32, U32);

/*
 * The work both builds of zstd do: the guest (zstd-guest.c) and the host reference
 * (zstd-host.c) compile this file unchanged, so the test and the benchmark compare the
 * same C on the same library. Results and errors are zstd's own: a size_t that
 * ZSTD_isError() tells apart, with ZSTD_getErrorCode()/ZSTD_getErrorName().
 */
#ifndef ZSTD_WORK_H
#define ZSTD_WORK_H

#include <stddef.h>
#include <stdint.h>

#include "zstd.h"

/* A growable byte buffer; `len` may start above 0 to keep room for a header. */
typedef struct {
  uint8_t *data;
  size_t len, cap;
} zw_buffer;

/* Appends one zstd frame of src at `level` to out; 0 or a zstd error. */
size_t zw_compress(ZSTD_CCtx *cctx, const void *src, size_t n, int level, zw_buffer *out);

/* Appends what the frames in src decode to, at most max bytes (more is
 * ZSTD_error_dstSize_tooSmall; a cut-off frame ZSTD_error_srcSize_wrong); 0 or a zstd error. */
size_t zw_decompress(ZSTD_DCtx *dctx, const void *src, size_t n, size_t max, zw_buffer *out);

/* The benchmark loops: `rounds` times the same work, returning the total bytes produced
 * (equal on host and guest when both did the same work), or 0 after an error. */
uint64_t zw_bench_compress(ZSTD_CCtx *cctx, const void *src, size_t n, int level, uint32_t rounds, zw_buffer *scratch);
uint64_t zw_bench_decompress(ZSTD_DCtx *dctx, const void *frame, size_t n, size_t max, uint32_t rounds, zw_buffer *scratch);

#endif

#include "zstd-work.h"

#include <stdlib.h>

#include "zstd_errors.h"

/* zstd's own encoding of an error code as a result. */
static size_t zw_error(ZSTD_ErrorCode code) { return (size_t)0 - (size_t)code; }

/* Makes room for `more` bytes after out->len; 0 when the heap is full. */
static int zw_reserve(zw_buffer *out, size_t more) {
  if (out->cap - out->len >= more) return 1;
  size_t cap = out->cap ? out->cap : 4096;
  while (cap - out->len < more) cap *= 2;
  uint8_t *grown = realloc(out->data, cap);
  if (!grown) return 0;
  out->data = grown;
  out->cap = cap;
  return 1;
}

size_t zw_compress(ZSTD_CCtx *cctx, const void *src, size_t n, int level, zw_buffer *out) {
  size_t bound = ZSTD_compressBound(n);
  if (ZSTD_isError(bound)) return bound;
  if (!zw_reserve(out, bound)) return zw_error(ZSTD_error_memory_allocation);
  size_t written = ZSTD_compressCCtx(cctx, out->data + out->len, bound, src, n, level);
  if (!ZSTD_isError(written)) out->len += written;
  return written;
}

/* The first output reservation: the declared size when the frame has one, else 64 KiB. */
static size_t zw_first_guess(const void *src, size_t n, size_t max) {
  unsigned long long declared = ZSTD_getFrameContentSize(src, n);
  size_t guess = declared <= max ? (size_t)declared : 64 << 10;
  return guess < max ? guess : max;
}

/* Grows a full buffer towards limit: doubling, at least 64 KiB, never past limit. */
static int zw_grow(zw_buffer *out, size_t limit) {
  size_t more = out->len < (64 << 10) ? (64 << 10) : out->len;
  if (more > limit - out->len) more = limit - out->len;
  return zw_reserve(out, more);
}

size_t zw_decompress(ZSTD_DCtx *dctx, const void *src, size_t n, size_t max, zw_buffer *out) {
  if (n == 0) return zw_error(ZSTD_error_srcSize_wrong); /* as ZSTD_decompress() says of no input */
  ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
  size_t limit = out->len + max;
  if (!zw_reserve(out, zw_first_guess(src, n, max))) return zw_error(ZSTD_error_memory_allocation);
  ZSTD_inBuffer in = {src, n, 0};
  for (;;) {
    if (out->len == out->cap && out->cap < limit && !zw_grow(out, limit)) return zw_error(ZSTD_error_memory_allocation);
    ZSTD_outBuffer o = {out->data, out->cap < limit ? out->cap : limit, out->len};
    size_t consumed_before = in.pos;
    int was_full = o.pos == o.size;
    size_t left = ZSTD_decompressStream(dctx, &o, &in);
    out->len = o.pos;
    if (ZSTD_isError(left)) return left;
    if (in.pos == in.size && left == 0) return 0; /* every frame complete */
    if (o.pos < o.size) {
      if (in.pos == in.size) return zw_error(ZSTD_error_srcSize_wrong); /* a frame is cut off */
      continue;                                                         /* a frame ended, another follows */
    }
    /* Full at the limit: a call without room that reads nothing means more output is due. */
    if (was_full && o.size == limit && in.pos == consumed_before) return zw_error(ZSTD_error_dstSize_tooSmall);
  }
}

uint64_t zw_bench_compress(ZSTD_CCtx *cctx, const void *src, size_t n, int level, uint32_t rounds, zw_buffer *scratch) {
  uint64_t total = 0;
  for (uint32_t i = 0; i < rounds; i++) {
    scratch->len = 0;
    if (ZSTD_isError(zw_compress(cctx, src, n, level, scratch))) return 0;
    total += scratch->len;
  }
  return total;
}

uint64_t zw_bench_decompress(ZSTD_DCtx *dctx, const void *frame, size_t n, size_t max, uint32_t rounds, zw_buffer *scratch) {
  uint64_t total = 0;
  for (uint32_t i = 0; i < rounds; i++) {
    scratch->len = 0;
    if (ZSTD_isError(zw_decompress(dctx, frame, n, max, scratch))) return 0;
    total += scratch->len;
  }
  return total;
}

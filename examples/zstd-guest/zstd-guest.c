/*
 * zstd as a vmlet guest: the library as upstream ships it (fetched at build time, never
 * committed), compiled with the SDK, behind a few exports.
 *
 *   compress(data, level)      -> [0] + one zstd frame        | [1] + error
 *   decompress(data, maxSize)  -> [0] + the decoded bytes     | [1] + error
 *   version()                  -> "1.5.7"
 *   bench_load(corpus, level)  -> the corpus's compressed size (kept for the bench_* calls)
 *   bench_compress(rounds)     -> total compressed bytes of `rounds` compressions
 *   bench_decompress(rounds)   -> total decoded bytes of `rounds` decompressions
 *
 * An error is the zstd error code (4 bytes, little-endian) and its name: bad input is an
 * answer, not an abort, so the sandbox stays usable. The work itself is zstd-work.c,
 * the same file the host reference (zstd-host.c) runs.
 */
#include <stdlib.h>
#include <string.h>

#include "vmlet.h"
#include "zstd-work.h"
#include "zstd_errors.h"

enum { STATUS_OK = 0, STATUS_ERROR = 1 };

static ZSTD_CCtx *cctx;
static ZSTD_DCtx *dctx;
/* The result buffer, kept from call to call; byte 0 is the status. */
static zw_buffer result;

static vmlet_bytes error_result(size_t error) {
  const char *name = ZSTD_getErrorName(error);
  uint32_t code = (uint32_t)ZSTD_getErrorCode(error);
  size_t name_len = strlen(name);
  result.len = 0;
  if (result.cap < 1 + 4 + name_len) vmlet_out_of_memory(); /* never: the buffer starts at 4 KiB */
  result.data[0] = STATUS_ERROR;
  memcpy(result.data + 1, &code, 4);
  memcpy(result.data + 5, name, name_len);
  return (vmlet_bytes){result.data, (uint32_t)(5 + name_len)};
}

static vmlet_bytes answer(size_t status) {
  if (ZSTD_isError(status)) return error_result(status);
  result.data[0] = STATUS_OK;
  return (vmlet_bytes){result.data, (uint32_t)result.len};
}

static vmlet_bytes compress(vmlet_bytes data, int32_t level) {
  result.len = 1;
  return answer(zw_compress(cctx, data.ptr, data.len, level, &result));
}
VMLET_EXPORT(compress, BYTES, BYTES, I32);

static vmlet_bytes decompress(vmlet_bytes data, uint32_t max_size) {
  result.len = 1;
  return answer(zw_decompress(dctx, data.ptr, data.len, max_size, &result));
}
VMLET_EXPORT(decompress, BYTES, BYTES, U32);

static const char *version(void) { return ZSTD_versionString(); }
VMLET_EXPORT(version, STRING);

/* ---- benchmark: the corpus stays in the guest, so the loop measures zstd alone ---- */

static zw_buffer corpus, frame, scratch;
static int32_t bench_level;

static void copy_into(zw_buffer *buffer, vmlet_bytes data) {
  free(buffer->data);
  buffer->data = malloc(data.len ? data.len : 1);
  if (!buffer->data) vmlet_out_of_memory();
  memcpy(buffer->data, data.ptr, data.len);
  buffer->len = buffer->cap = data.len;
}

static uint64_t bench_load(vmlet_bytes data, int32_t level) {
  copy_into(&corpus, data);
  bench_level = level;
  frame.len = 0;
  if (ZSTD_isError(zw_compress(cctx, corpus.data, corpus.len, level, &frame))) return 0;
  return frame.len;
}
VMLET_EXPORT(bench_load, U64, BYTES, I32);

static uint64_t bench_compress(uint32_t rounds) {
  return zw_bench_compress(cctx, corpus.data, corpus.len, bench_level, rounds, &scratch);
}
VMLET_EXPORT(bench_compress, U64, U32);

static uint64_t bench_decompress(uint32_t rounds) {
  return zw_bench_decompress(dctx, frame.data, frame.len, corpus.len, rounds, &scratch);
}
VMLET_EXPORT(bench_decompress, U64, U32);

void vmlet_init(void) {
  cctx = ZSTD_createCCtx();
  dctx = ZSTD_createDCtx();
  if (!cctx || !dctx) vmlet_out_of_memory();
  result.data = malloc(4096);
  if (!result.data) vmlet_out_of_memory();
  result.cap = 4096;
}

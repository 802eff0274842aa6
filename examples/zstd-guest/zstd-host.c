/*
 * The host reference for the zstd guest: the same pinned zstd source and zstd-work.c,
 * compiled for the host, so tests and the benchmark can compare the guest with the same
 * C run natively.
 *
 *   zstd-host compress LEVEL          stdin -> stdout (one frame)
 *   zstd-host decompress MAX_SIZE     stdin -> stdout; on error exit 1, "CODE NAME" on stderr
 *   zstd-host version
 *   zstd-host bench compress|decompress LEVEL ROUNDS FILE
 *                                      prints "WALL_NS CPU_NS TOTAL_BYTES" for the loop alone
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zstd-work.h"
#include "zstd_errors.h"

static zw_buffer read_all(FILE *f) {
  zw_buffer in = {0};
  for (;;) {
    if (in.cap - in.len < 65536) {
      in.cap = in.cap ? in.cap * 2 : 1 << 20;
      in.data = realloc(in.data, in.cap);
      if (!in.data) exit(3);
    }
    size_t got = fread(in.data + in.len, 1, in.cap - in.len, f);
    in.len += got;
    if (got == 0) return in;
  }
}

static zw_buffer read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    exit(2);
  }
  zw_buffer data = read_all(f);
  fclose(f);
  return data;
}

static int finish(size_t status, const zw_buffer *out) {
  if (ZSTD_isError(status)) {
    fprintf(stderr, "%d %s\n", (int)ZSTD_getErrorCode(status), ZSTD_getErrorName(status));
    return 1;
  }
  fwrite(out->data, 1, out->len, stdout);
  return 0;
}

static double clock_ns(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* What one benchmark runs: the corpus, its frame, and the loop's own buffer. */
typedef struct {
  zw_buffer corpus, frame, scratch;
  ZSTD_CCtx *cctx;
  ZSTD_DCtx *dctx;
  int level, decompressing;
} bench_state;

static uint64_t bench_rounds(bench_state *b, uint32_t rounds) {
  if (b->decompressing) return zw_bench_decompress(b->dctx, b->frame.data, b->frame.len, b->corpus.len, rounds, &b->scratch);
  return zw_bench_compress(b->cctx, b->corpus.data, b->corpus.len, b->level, rounds, &b->scratch);
}

static int bench(const char *what, int level, uint32_t rounds, const char *path) {
  bench_state b = {read_file(path), {0}, {0}, ZSTD_createCCtx(), ZSTD_createDCtx(), level, strcmp(what, "decompress") == 0};
  if (ZSTD_isError(zw_compress(b.cctx, b.corpus.data, b.corpus.len, level, &b.frame))) return 1;
  bench_rounds(&b, 1); /* untimed, as the guest's first round is: buffers grown and touched */
  /* CPU time too: on a shared machine it leaves out the time other processes ran. */
  double wall = clock_ns(CLOCK_MONOTONIC), cpu = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
  uint64_t total = bench_rounds(&b, rounds);
  printf("%.0f %.0f %llu\n", clock_ns(CLOCK_MONOTONIC) - wall, clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu, (unsigned long long)total);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "version") == 0) return puts(ZSTD_versionString()) < 0;
  if (argc == 6 && strcmp(argv[1], "bench") == 0) return bench(argv[2], atoi(argv[3]), (uint32_t)strtoul(argv[4], NULL, 10), argv[5]);
  if (argc != 3) {
    fprintf(stderr, "usage: zstd-host compress LEVEL | decompress MAX_SIZE | version | bench compress|decompress LEVEL ROUNDS FILE\n");
    return 2;
  }
  zw_buffer in = read_all(stdin), out = {0};
  if (strcmp(argv[1], "compress") == 0) return finish(zw_compress(ZSTD_createCCtx(), in.data, in.len, atoi(argv[2]), &out), &out);
  if (strcmp(argv[1], "decompress") == 0)
    return finish(zw_decompress(ZSTD_createDCtx(), in.data, in.len, strtoul(argv[2], NULL, 10), &out), &out);
  return 2;
}

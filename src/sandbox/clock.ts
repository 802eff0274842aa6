/**
 * Milliseconds on a monotonic clock, for deadlines and timings. process.hrtime rather than
 * performance.now(): the first use of the global `performance` loads node:perf_hooks, ~1.4 ms
 * of a process's first call (docs/benchmarks.md § Cold start).
 */
export function nowMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}

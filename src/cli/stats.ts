/** Small timing helpers shared by the demo and the benchmarks. */

/** Median of samples. */
export function median(samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Times `fn` `count` times and returns per-call microseconds (median of batches). */
export function timeSync(fn: () => unknown, count: number, batches = 15): number {
  const per: number[] = [];
  const size = Math.max(1, Math.floor(count / batches));
  for (let b = 0; b < batches; b++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < size; i++) fn();
    per.push(Number(process.hrtime.bigint() - start) / size / 1000);
  }
  return median(per);
}

export async function timeAsync(fn: () => Promise<unknown>, count: number, batches = 15): Promise<number> {
  const per: number[] = [];
  const size = Math.max(1, Math.floor(count / batches));
  for (let b = 0; b < batches; b++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < size; i++) await fn();
    per.push(Number(process.hrtime.bigint() - start) / size / 1000);
  }
  return median(per);
}

/** The last N checkout wait times, for the pool's p50/p99. */
export class WaitTimes {
  private readonly samples: Float64Array;
  private count = 0;
  private next = 0;

  constructor(capacity = 1024) {
    this.samples = new Float64Array(capacity);
  }

  add(ms: number): void {
    this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.samples.length;
    if (this.count < this.samples.length) this.count++;
  }

  /** Nearest-rank percentiles of the stored samples; 0 when there are none. */
  percentiles(...qs: number[]): number[] {
    if (this.count === 0) return qs.map(() => 0);
    const sorted = this.samples.slice(0, this.count).sort();
    return qs.map((q) => sorted[Math.min(this.count - 1, Math.max(0, Math.ceil(q * this.count) - 1))]!);
  }
}

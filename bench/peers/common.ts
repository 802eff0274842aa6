/** Shared pieces of the peer benchmark: the workload, timing, memory probes and row types. */
import { readFileSync } from "node:fs";

/** The JS workload every JS peer evaluates: the same two functions the vmlet demo guest exports. */
export const JS_SOURCE = `
function add(a, b) { return a + b; }
function count_byte(bytes, value) {
  const u8 = ArrayBuffer.isView(bytes) ? bytes : new Uint8Array(bytes);
  let n = 0;
  for (let i = 0; i < u8.length; i++) n += u8[i] === value ? 1 : 0;
  return n;
}`;

/** The 1 MB input: bytes 0..255 repeating, so count_byte(data, 7) = 4096. */
export const MB = 1 << 20;
export const EXPECTED_COUNT = MB / 256;
export function megabyte(): Uint8Array {
  const data = new Uint8Array(MB);
  for (let i = 0; i < data.length; i++) data[i] = i & 255;
  return data;
}

export interface Summary {
  median: number;
  p10: number;
  p90: number;
  n: number;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const q = (p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, p10: q(0.1), p90: q(0.9), n: sorted.length };
}

export const now = (): number => performance.now();

/** Per-call µs of `fn`: the median of `batches` batch means (fast calls need batching). */
export function batched(fn: () => unknown, batches: number, perBatch: number, warmup = 3): Summary {
  for (let w = 0; w < warmup; w++) for (let i = 0; i < perBatch; i++) fn();
  const means: number[] = [];
  for (let b = 0; b < batches; b++) {
    const t0 = now();
    for (let i = 0; i < perBatch; i++) fn();
    means.push(((now() - t0) * 1000) / perBatch);
  }
  return summarize(means);
}

/** µs of each of `n` runs of `fn` (after `warmup` untimed runs). */
export async function each(fn: () => unknown, n: number, warmup = 3): Promise<Summary> {
  for (let w = 0; w < warmup; w++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = now();
    await fn();
    samples.push((now() - t0) * 1000);
  }
  return summarize(samples);
}

export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) {
    g();
    g();
  }
}

/** Process RSS and PSS (smaps_rollup) and the system's used memory (MemTotal − MemAvailable), KiB. */
export interface MemoryProbe {
  rss: number;
  pss: number;
  systemUsed: number;
}

function kib(text: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text);
  return match ? Number(match[1]) : Number.NaN;
}

export function probeMemory(): MemoryProbe {
  gc();
  const rollup = readFileSync("/proc/self/smaps_rollup", "utf8");
  const meminfo = readFileSync("/proc/meminfo", "utf8");
  return { rss: kib(rollup, "Rss"), pss: kib(rollup, "Pss"), systemUsed: kib(meminfo, "MemTotal") - kib(meminfo, "MemAvailable") };
}

/** Memory per idle context, KiB: the growth from creating `n` contexts (kept alive) divided by n. */
export interface MemoryPerContext {
  n: number;
  rss: number;
  pss: number;
  /** Includes kernel memory (KVM's per-VM structures, page tables); noisy on a shared machine. */
  system: number;
}

export async function memoryPerContext<T>(n: number, make: () => T | Promise<T>, dispose: (t: T) => void | Promise<void>): Promise<MemoryPerContext> {
  const before = probeMemory();
  const made: T[] = [];
  for (let i = 0; i < n; i++) made.push(await make());
  await new Promise((resolve) => setTimeout(resolve, 50)); // let background work (VM setup threads, GC) settle
  const after = probeMemory();
  for (const t of made) await dispose(t);
  return {
    n,
    rss: (after.rss - before.rss) / n,
    pss: (after.pss - before.pss) / n,
    system: (after.systemUsed - before.systemUsed) / n,
  };
}

/** One approach's figures; µs unless noted. Undefined = not applicable. */
export interface PeerRow {
  peer: string;
  variant: string;
  isolation: string;
  /** Time to a fresh isolated context in which the functions are ready to call. */
  fresh: Summary | undefined;
  /** The first add(1, 2) in that fresh context. */
  firstCall: Summary | undefined;
  /** add(1, 2) in a warm context (for the pool: the call inside run(), on a just-restored sandbox). */
  call: Summary | undefined;
  /** count_byte over 1 MB passed in from the host (copy in + scan). */
  mb: Summary | undefined;
  /** Filled in by run.ts from a child process (memory.ts) measuring `memoryKey`. */
  memory: MemoryPerContext | undefined;
  memoryKey: string;
  notes: string[];
}

export interface Skipped {
  peer: string;
  reason: string;
}

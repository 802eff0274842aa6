/** The vmlet side of the benchmark: call round trips, host calls, build/close and cancel latency. */
import { CancelledError, SandboxBuilder, type Sandbox } from "../src/index.js";
import { guestPath } from "../src/cli/paths.js";
import { median, timeAsync, timeSync } from "../src/cli/stats.js";

export const demoElf = guestPath("demo");

/** The builder every benchmark sandbox uses: the demo guest, host "ping", guest logs at warn. */
export function demoBuilder(): SandboxBuilder {
  return new SandboxBuilder()
    .guest(demoElf)
    .hostFunction("ping", [], "void", () => undefined)
    .maxGuestLogLevel("warn");
}

/** Summary of per-call samples, µs. */
export interface Summary {
  median: number;
  p10: number;
  p90: number;
  n: number;
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return { median: median(sorted), p10: quantile(sorted, 0.1), p90: quantile(sorted, 0.9), n: sorted.length };
}

export const nowNs = (): bigint => process.hrtime.bigint();
export const usSince = (t0: bigint, t1 = nowNs()): number => Number(t1 - t0) / 1000;
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface CallOptions {
  sync: boolean;
  async: boolean;
  hostCall: boolean;
  rounds: number;
  batch: number;
}

/** Per-call µs of each batch: sync = callSync("noop"), ping = callSync("call_ping"), async = await call("noop"). */
export interface CallSamples {
  sync: number[];
  ping: number[];
  async: number[];
}

/**
 * Call latencies on one warm sandbox, appended to `into`. The kinds are interleaved:
 * every round runs one batch of each (in a rotating order), so drift in the machine
 * hits them alike. The figure for a kind is later the median of its batches.
 */
export async function measureCalls(sb: Sandbox, o: CallOptions, into: CallSamples): Promise<void> {
  if (sb.callSync("noop") !== 0) throw new Error('callSync("noop") did not return 0');
  if (o.hostCall && sb.callSync("call_ping") !== 0) throw new Error('callSync("call_ping") did not return 0');
  const kinds: Array<{ key: keyof CallSamples; run: () => Promise<number>; once: () => Promise<unknown> }> = [];
  if (o.sync || o.hostCall) kinds.push({ key: "sync", run: async () => timeSync(() => sb.callSync("noop"), o.batch, 1), once: async () => sb.callSync("noop") });
  if (o.hostCall) kinds.push({ key: "ping", run: async () => timeSync(() => sb.callSync("call_ping"), o.batch, 1), once: async () => sb.callSync("call_ping") });
  if (o.async) kinds.push({ key: "async", run: () => timeAsync(() => sb.call("noop"), o.batch, 1), once: () => sb.call("noop") });
  for (let w = 0; w < 4; w++) for (const k of kinds) await k.run(); // warm-up: JIT, caches, the vCPU thread
  for (let r = 0; r < o.rounds; r++) {
    for (let i = 0; i < kinds.length; i++) {
      const k = kinds[(r + i) % kinds.length]!;
      // One untimed call first: the switch from the other kind (another thread waits for the
      // vCPU or child) is not part of a steady-state call, which is what the C reference times.
      await k.once();
      into[k.key].push(await k.run());
    }
  }
}

/** build() + first callSync("noop"), and close(), µs per sandbox. */
export interface BuildSamples {
  build: number[];
  close: number[];
}

/** Builds, calls once and closes `iterations` sandboxes, timing build+first call and close. */
export async function measureBuild(iterations: number, into: BuildSamples, warmup = 2, idleMs = 0): Promise<void> {
  for (let i = -warmup; i < iterations; i++) {
    if (idleMs > 0) await sleep(idleMs); // untimed: the host idles between requests, as a service does
    const t0 = nowNs();
    const sb = await demoBuilder().build();
    sb.callSync("noop");
    const t1 = nowNs();
    sb.close();
    const t2 = nowNs();
    if (i >= 0) {
      into.build.push(usSince(t0, t1));
      into.close.push(usSince(t1, t2));
    }
  }
}

/**
 * Time from kill() until the pending `await call("spin_forever")` rejects, seen by a
 * rejection handler attached when the call started; appended to `into`. A killed
 * sandbox is poisoned, so every iteration builds a fresh one (not timed).
 */
export async function measureCancel(iterations: number, into: number[], warmup = 1, spinMs = 2): Promise<void> {
  for (let i = -warmup; i < iterations; i++) {
    const sb = await demoBuilder().build();
    sb.callSync("noop");
    let rejectedAt = 0n;
    const settled = sb.call("spin_forever").then(
      () => {
        throw new Error("spin_forever returned");
      },
      (error: unknown) => {
        rejectedAt = nowNs();
        return error;
      },
    );
    await sleep(spinMs); // let the vCPU thread get into the guest's loop
    const t0 = nowNs();
    if (!sb.kill()) throw new Error("kill() found no call running");
    let watchdog: NodeJS.Timeout | undefined;
    const error = await Promise.race([
      settled,
      new Promise<never>((_, reject) => {
        watchdog = setTimeout(() => reject(new Error("kill() did not stop spin_forever within 10 s")), 10_000);
      }),
    ]).finally(() => clearTimeout(watchdog));
    if (!(error instanceof CancelledError)) throw new Error(`expected CancelledError after kill(), got ${String(error)}`);
    sb.close();
    if (i >= 0) into.push(usSince(t0, rejectedAt));
  }
}

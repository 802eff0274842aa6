/**
 * A pool of warm sandboxes made from one snapshot. `run(fn)` checks a clean sandbox
 * out, gives it to `fn`, and when `fn` settles restores it to the snapshot in the
 * background (a setImmediate after the caller got its result) before anyone else
 * gets it. A sandbox whose restore fails is closed and rebuilt. See docs/pool.md.
 */
import { InvalidConfigError } from "../errors/errors.js";
import type { LogLevel } from "../sandbox/logging.js";
import { Sandbox } from "../sandbox/sandbox.js";
import type { Snapshot } from "../snapshot/snapshot.js";
import { PoolClosedError, PoolTimeoutError } from "./errors.js";
import { resolvePoolOptions, type ResolvedPoolOptions, type SandboxPoolOptions } from "./options.js";
import { WaitTimes } from "./wait-times.js";

export type { SandboxPoolOptions } from "./options.js";

/** A snapshot of the pool's counters; see docs/pool.md#stats. */
export interface PoolStats {
  /** The configured size: most sandboxes the pool keeps. */
  readonly size: number;
  /** Clean sandboxes ready to be checked out. */
  readonly idle: number;
  /** Sandboxes checked out (their `fn` has not settled yet). */
  readonly busy: number;
  /** Sandboxes being restored or rebuilt after use, or created for a run. */
  readonly restoring: number;
  /** Sandboxes made with Sandbox.fromSnapshot, including rebuilds. */
  readonly created: number;
  /** Successful restores to the snapshot (one per use, unless the restore failed). */
  readonly restored: number;
  /** Sandboxes closed and rebuilt because their restore failed. */
  readonly recycled: number;
  /** Uses that left the sandbox poisoned (fault, timeout, kill) and that were restored or rebuilt. */
  readonly poisonedRecycled: number;
  /** run() calls waiting for a sandbox. */
  readonly waiting: number;
  /** Median wait for a sandbox over the last 1024 checkouts, ms (0 when it was free at once). */
  readonly waitMsP50: number;
  /** 99th percentile of the same, ms. */
  readonly waitMsP99: number;
}

interface Waiter {
  readonly resolve: (sb: Sandbox) => void;
  readonly reject: (error: unknown) => void;
  readonly since: number;
  timer: NodeJS.Timeout | undefined;
  /** Served, timed out or rejected: skipped when the queue reaches it. */
  done: boolean;
}

export class SandboxPool {
  private readonly options: ResolvedPoolOptions;
  private readonly level: LogLevel;
  /** Clean sandboxes; the most recently restored is checked out first (warmest caches). */
  private readonly idle: Sandbox[] = [];
  private readonly busy = new Set<Sandbox>();
  /** FIFO of waiting runs; `head` is the next to serve. Done entries are skipped. */
  private queue: Waiter[] = [];
  private head = 0;
  private waitingCount = 0;
  /** Released and not yet back (restoring or rebuilding), or being created. */
  private pending = 0;
  /** Sandboxes that count against `size`: idle + busy + pending. */
  private live = 0;
  private closing = false;
  private closedPromise: Promise<void> | undefined;
  private onDrained: (() => void) | undefined;
  private readonly waits = new WaitTimes();
  private readonly counters = { created: 0, restored: 0, recycled: 0, poisonedRecycled: 0 };

  constructor(
    readonly snapshot: Snapshot,
    options?: SandboxPoolOptions,
  ) {
    this.options = resolvePoolOptions(snapshot, options);
    this.level = this.options.sandbox.maxGuestLogLevel ?? snapshot.state.maxGuestLogLevel;
  }

  /** The configured size. */
  get size(): number {
    return this.options.size;
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.closing;
  }

  /**
   * Runs `fn` with a clean sandbox (in the snapshot's state) and resolves or rejects
   * with what `fn` returns or throws. Do not use the sandbox after `fn` settles: it is
   * restored and handed to the next run. Rejects with PoolTimeoutError when no
   * sandbox becomes free within `acquireTimeoutMs`, and with PoolClosedError after close().
   */
  run<T>(fn: (sandbox: Sandbox) => T | PromiseLike<T>): Promise<Awaited<T>> {
    if (typeof fn !== "function") return Promise.reject(new InvalidConfigError("run() takes a function (sandbox) => result"));
    if (this.closing) return Promise.reject(new PoolClosedError("the pool is closed"));
    const sb = this.idle.pop();
    if (sb !== undefined) {
      this.busy.add(sb);
      this.waits.add(0);
      return this.use(sb, fn);
    }
    return this.acquireSlow().then((acquired) => this.use(acquired, fn));
  }

  /** Counters and gauges; cheap enough to call per request. */
  stats(): PoolStats {
    const [waitMsP50, waitMsP99] = this.waits.percentiles(0.5, 0.99);
    return {
      size: this.options.size,
      idle: this.idle.length,
      busy: this.busy.size,
      restoring: this.pending,
      ...this.counters,
      waiting: this.waitingCount,
      waitMsP50: waitMsP50!,
      waitMsP99: waitMsP99!,
    };
  }

  /**
   * Stops taking work: later run() calls and runs still waiting for a sandbox reject
   * with PoolClosedError. Resolves once every checked-out sandbox came back and every
   * VM is closed. Idempotent: every call returns the same promise.
   */
  close(): Promise<void> {
    if (this.closedPromise) return this.closedPromise;
    this.closing = true;
    for (let w = this.shiftWaiter(); w !== undefined; w = this.shiftWaiter()) w.reject(new PoolClosedError("the pool was closed while this run waited for a sandbox"));
    this.queue = [];
    this.head = 0;
    this.closedPromise = new Promise<void>((resolve) => {
      this.onDrained = resolve;
    });
    this.checkDrained();
    return this.closedPromise;
  }

  private async use<T>(sb: Sandbox, fn: (sandbox: Sandbox) => T | PromiseLike<T>): Promise<Awaited<T>> {
    try {
      return await fn(sb);
    } finally {
      this.release(sb);
    }
  }

  /** No idle sandbox: create one if below size, else wait in line. */
  private acquireSlow(): Promise<Sandbox> {
    if (this.live < this.options.size && this.waitingCount === 0) {
      const since = performance.now();
      return this.create().then((sb) => {
        if (this.closing) {
          this.discard(sb);
          throw new PoolClosedError("the pool was closed while this run waited for a sandbox");
        }
        this.busy.add(sb);
        this.waits.add(performance.now() - since);
        return sb;
      });
    }
    return new Promise<Sandbox>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, since: performance.now(), timer: undefined, done: false };
      const limit = this.options.acquireTimeoutMs;
      if (limit !== undefined) {
        waiter.timer = setTimeout(() => {
          if (waiter.done) return;
          waiter.done = true;
          this.waitingCount--;
          reject(new PoolTimeoutError(limit, this.options.size));
        }, limit);
      }
      this.queue.push(waiter);
      this.waitingCount++;
    });
  }

  /** A new sandbox counted against size (live and pending until it is placed). */
  private async create(): Promise<Sandbox> {
    this.live++;
    this.pending++;
    try {
      const sb = await Sandbox.fromSnapshot(this.snapshot, this.options.sandbox);
      this.counters.created++;
      return sb;
    } catch (error) {
      this.live--;
      throw error;
    } finally {
      this.pending--;
      this.afterCapacityChange();
    }
  }

  /** fn settled: restore after the caller has its result, then hand the sandbox on. */
  private release(sb: Sandbox): void {
    this.busy.delete(sb);
    this.pending++;
    setImmediate(() => this.recycle(sb));
  }

  private recycle(sb: Sandbox): void {
    this.pending--;
    if (this.closing) return this.discard(sb);
    const poisoned = sb.poisoned !== undefined;
    try {
      if (sb.maxGuestLogLevel !== this.level) sb.setMaxGuestLogLevel(this.level);
      sb.restore(this.snapshot);
    } catch {
      // Busy (fn left a call running), closed by fn, or the restore itself failed.
      this.discard(sb);
      this.rebuild(poisoned);
      return;
    }
    this.counters.restored++;
    if (poisoned) this.counters.poisonedRecycled++;
    this.place(sb);
  }

  /** Replaces a sandbox whose restore failed; on failure the slot is freed for a later run. */
  private rebuild(poisoned: boolean): void {
    this.create().then(
      (sb) => {
        this.counters.recycled++;
        if (poisoned) this.counters.poisonedRecycled++;
        if (this.closing) this.discard(sb);
        else this.place(sb);
      },
      () => undefined, // the next run() that needs a sandbox creates one and sees the error
    );
  }

  /** A clean sandbox: to the first waiter, else idle. */
  private place(sb: Sandbox): void {
    const waiter = this.shiftWaiter();
    if (waiter === undefined) {
      this.idle.push(sb);
      return;
    }
    this.busy.add(sb);
    this.waits.add(performance.now() - waiter.since);
    waiter.resolve(sb);
  }

  /** Closes a sandbox for good and frees its slot. */
  private discard(sb: Sandbox): void {
    sb.close();
    this.live--;
    this.afterCapacityChange();
  }

  /** A slot may have freed up: waiters can get new sandboxes; a closing pool may be drained. */
  private afterCapacityChange(): void {
    while (!this.closing && this.waitingCount > 0 && this.live < this.options.size) {
      const waiter = this.shiftWaiter()!;
      this.create().then(
        (sb) => {
          this.busy.add(sb);
          this.waits.add(performance.now() - waiter.since);
          waiter.resolve(sb);
          if (this.closing) {
            // fn still runs: it was already in line before close(), and close() waits for it.
          }
        },
        (error: unknown) => waiter.reject(error),
      );
    }
    this.checkDrained();
  }

  private shiftWaiter(): Waiter | undefined {
    while (this.head < this.queue.length) {
      const waiter = this.queue[this.head++]!;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      if (waiter.done) continue;
      waiter.done = true;
      this.waitingCount--;
      clearTimeout(waiter.timer);
      return waiter;
    }
    return undefined;
  }

  private checkDrained(): void {
    if (!this.closing || this.onDrained === undefined || this.busy.size > 0 || this.pending > 0) return;
    for (const sb of this.idle.splice(0)) this.discard(sb);
    const done = this.onDrained;
    this.onDrained = undefined;
    done();
  }
}

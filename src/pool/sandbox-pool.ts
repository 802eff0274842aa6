/**
 * A pool of warm sandboxes made from one snapshot. `run(fn)` checks a clean sandbox
 * out, gives it to `fn`, and when `fn` settles restores it to the snapshot in the
 * background (in a setImmediate, after the caller has its result) before anyone else
 * gets it. A sandbox whose restore fails is closed and rebuilt. See docs/pool.md.
 */
import { InvalidConfigError } from "../errors/errors.js";
import type { LogLevel } from "../sandbox/logging.js";
import { Sandbox } from "../sandbox/sandbox.js";
import type { Snapshot } from "../snapshot/snapshot.js";
import { PoolClosedError, PoolTimeoutError } from "./errors.js";
import { resolvePoolOptions, type ResolvedPoolOptions, type SandboxPoolOptions } from "./options.js";
import { WaitTimes } from "./wait-times.js";
import { nowMs } from "../sandbox/clock.js";

export type { SandboxPoolOptions } from "./options.js";

/** The pool's counters and gauges; see docs/pool.md#stats. */
export interface PoolStats {
  /** The configured size: most sandboxes the pool keeps. */
  readonly size: number;
  /** Clean sandboxes ready to be checked out. */
  readonly idle: number;
  /** Sandboxes checked out (their `fn` has not settled yet). */
  readonly busy: number;
  /** Sandboxes on their way back: waiting for their restore, or being created or rebuilt. */
  readonly restoring: number;
  /** Sandboxes made with Sandbox.fromSnapshot, including rebuilds. */
  readonly created: number;
  /** Successful restores to the snapshot (one per use, unless the restore failed). */
  readonly restored: number;
  /** Sandboxes closed and rebuilt because their restore failed. */
  readonly recycled: number;
  /** Uses that left the sandbox poisoned (fault, timeout, kill) and that were then restored or rebuilt. */
  readonly poisonedRecycled: number;
  /** run() calls waiting for a sandbox. */
  readonly waiting: number;
  /** Median wait for a sandbox over the last 1024 checkouts, ms (0 when one was idle). */
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

const closedWhileWaiting = (): PoolClosedError => new PoolClosedError("the pool was closed while this run waited for a sandbox");

export class SandboxPool {
  private readonly options: ResolvedPoolOptions;
  private readonly level: LogLevel;
  /** Clean sandboxes; the most recently restored is checked out first (warmest caches). */
  private readonly idle: Sandbox[] = [];
  private readonly busy = new Set<Sandbox>();
  /** Released sandboxes waiting for their restore, oldest first. */
  private readonly dirty: Sandbox[] = [];
  private restoreScheduled = false;
  /** FIFO of waiting runs; `head` is the next to serve. Done entries are skipped. */
  private queue: Waiter[] = [];
  private head = 0;
  private waitingCount = 0;
  /** Being created (for waiting runs, or as rebuilds). */
  private creating = 0;
  /** Sandboxes that count against size: idle + busy + dirty + creating. */
  private live = 0;
  private closing = false;
  private closedPromise: Promise<void> | undefined;
  private onDrained: (() => void) | undefined;
  private readonly waits = new WaitTimes();
  private readonly counters = { created: 0, restored: 0, recycled: 0, poisonedRecycled: 0 };
  private readonly restoreDirty = (): void => {
    this.restoreScheduled = false;
    for (let sb = this.dirty.shift(); sb !== undefined; sb = this.dirty.shift()) {
      if (this.closing) this.discard(sb);
      else if (this.restore(sb)) this.place(sb);
    }
  };

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
    let sb = this.idle.pop();
    if (sb === undefined && this.waitingCount === 0 && this.dirty.length > 0) {
      // None idle, but one is only waiting for its restore: this run would wait for exactly
      // that restore, so do it now rather than after a turn of the event loop.
      const since = nowMs();
      const candidate = this.dirty.shift()!;
      if (this.restore(candidate)) {
        sb = candidate;
        this.busy.add(sb);
        this.waits.add(nowMs() - since);
        return this.use(sb, fn);
      }
    }
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
      restoring: this.dirty.length + this.creating,
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
    for (let w = this.shiftWaiter(); w !== undefined; w = this.shiftWaiter()) w.reject(closedWhileWaiting());
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

  /** No idle sandbox: wait in line; supply() creates a sandbox if none is on its way. */
  private acquireSlow(): Promise<Sandbox> {
    return new Promise<Sandbox>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, since: nowMs(), timer: undefined, done: false };
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
      this.supply();
    });
  }

  /**
   * Creates sandboxes while more runs wait than sandboxes are on their way (waiting
   * for a restore, or being created) and the pool is below size: a restore takes
   * microseconds and a new VM about a millisecond, so waiting for a restore beats
   * creating. Then checks whether a closing pool is drained.
   */
  private supply(): void {
    while (!this.closing && this.waitingCount > this.dirty.length + this.creating && this.live < this.options.size) this.spawn(undefined);
    this.checkDrained();
  }

  /**
   * Makes a sandbox that counts against size and places it (first waiter, else idle).
   * If creation fails, the first waiter gets the error. `rebuild` marks a replacement
   * for a sandbox whose restore failed.
   */
  private spawn(rebuild: { poisoned: boolean } | undefined): void {
    this.live++;
    this.creating++;
    Sandbox.fromSnapshot(this.snapshot, this.options.sandbox).then(
      (sb) => {
        this.creating--;
        this.counters.created++;
        if (rebuild) {
          this.counters.recycled++;
          if (rebuild.poisoned) this.counters.poisonedRecycled++;
        }
        this.place(sb);
        this.supply();
      },
      (error: unknown) => {
        this.creating--;
        this.live--;
        this.shiftWaiter()?.reject(error);
        this.supply();
      },
    );
  }

  /** fn settled: the sandbox is restored in a setImmediate, after the caller has its result. */
  private release(sb: Sandbox): void {
    this.busy.delete(sb);
    this.dirty.push(sb);
    if (!this.restoreScheduled) {
      this.restoreScheduled = true;
      setImmediate(this.restoreDirty);
    }
  }

  /**
   * Restores a released sandbox to the snapshot. If that fails (fn left a call running,
   * fn closed it, or the restore itself failed) it is closed (a running call is killed),
   * a replacement is built, and this returns false.
   */
  private restore(sb: Sandbox): boolean {
    const poisoned = sb.poisoned !== undefined;
    try {
      if (sb.maxGuestLogLevel !== this.level) sb.setMaxGuestLogLevel(this.level);
      sb.restore(this.snapshot);
    } catch {
      sb.close();
      this.live--;
      this.spawn({ poisoned });
      return false;
    }
    this.counters.restored++;
    if (poisoned) this.counters.poisonedRecycled++;
    return true;
  }

  /** A clean sandbox: to the first waiter, else idle; closed if the pool is closing. */
  private place(sb: Sandbox): void {
    if (this.closing) return this.discard(sb);
    const waiter = this.shiftWaiter();
    if (waiter === undefined) {
      this.idle.push(sb);
      return;
    }
    this.busy.add(sb);
    this.waits.add(nowMs() - waiter.since);
    waiter.resolve(sb);
  }

  /** Closes a sandbox for good and frees its slot. */
  private discard(sb: Sandbox): void {
    sb.close();
    this.live--;
    this.supply();
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
    if (!this.closing || this.onDrained === undefined || this.busy.size > 0 || this.dirty.length + this.creating > 0) return;
    const done = this.onDrained;
    this.onDrained = undefined;
    for (const sb of this.idle.splice(0)) {
      sb.close();
      this.live--;
    }
    done();
  }
}

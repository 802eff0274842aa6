/** Per-sandbox counters behind sb.stats() (docs/api.md, "Statistics"). */
import type { VmExit } from "../hypervisor/virtual-machine.js";

export interface SandboxStats {
  /** Guest calls started with call() or callSync(), failed ones included. */
  readonly calls: number;
  /**
   * Wall-clock time spent in runs of the guest, in ns: measured around each run, so it
   * includes the crossings into and out of the guest (and, for call(), the hand-over to
   * the sandbox's thread), not the host functions the guest called.
   */
  readonly guestTimeNs: number;
  /** Exits from the guest to the host: one per run (a call's end, a host call, a log record, a timeout slice). */
  readonly exits: number;
  /** Host functions the guest called (calls to a missing function or with a wrong signature excluded). */
  readonly hostCalls: number;
  /**
   * The latest restore(): pages it copied back, and whether it remapped memory instead.
   * pagesCopied is undefined while a deferred restore has not run yet. Undefined before any restore.
   */
  readonly lastRestore: { readonly pagesCopied: number | undefined; readonly remapped: boolean } | undefined;
  /** Guest memory size, bytes. */
  readonly memorySize: number;
}

/** ms as a double: no BigInt allocated per run on the call path. */
const now = (): number => performance.now();

/** The counters; the sandbox brackets each run with runStarted()/ran(). */
export class StatsCounter {
  calls = 0;
  exits = 0;
  hostCalls = 0;
  private guestTimeMs = 0;

  runStarted(): number {
    return now();
  }

  ran(startedAt: number): void {
    this.guestTimeMs += now() - startedAt;
    this.exits++;
  }

  /** Runs `vm` once, counted. */
  run(vm: { run(timeoutNs: number): VmExit }, timeoutNs: number): VmExit {
    const startedAt = now();
    try {
      return vm.run(timeoutNs);
    } finally {
      this.ran(startedAt);
    }
  }

  snapshot(lastRestore: SandboxStats["lastRestore"], memorySize: number): SandboxStats {
    return { calls: this.calls, guestTimeNs: Math.round(this.guestTimeMs * 1e6), exits: this.exits, hostCalls: this.hostCalls, lastRestore, memorySize };
  }
}

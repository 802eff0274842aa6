/** Per-sandbox counters behind sb.stats() (docs/api.md, "Statistics"). */
import type { VmExit } from "../hypervisor/virtual-machine.js";
import { nowMs } from "./clock.js";

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
  /** The guest heap, as the guest SDK's allocator reports it (control block; docs/abi.md). */
  readonly heap: HeapUsage;
}

/**
 * Guest heap figures, bytes. `used` and `peak` are what the guest wrote into its control
 * block (clamped to `size`): a guest can only make its own figures wrong. Guests built with
 * an SDK older than these fields report 0. After restore(), they are the snapshot's.
 */
export interface HeapUsage {
  /** Bytes in allocated blocks, the allocator's headers included. */
  readonly used: number;
  /** The most `used` has been since the guest started (a snapshot keeps it). */
  readonly peak: number;
  /** The heap's size (`heapSize`, less what page alignment takes). */
  readonly size: number;
}

/** Heap figures from the control block's HEAP_USED and HEAP_PEAK words. */
export function heapUsage(words: Uint8Array, size: number): HeapUsage {
  const view = new DataView(words.buffer, words.byteOffset, 16);
  const clamp = (v: bigint): number => (v > BigInt(size) ? size : Number(v));
  const used = clamp(view.getBigUint64(0, true));
  return { used, peak: Math.max(used, clamp(view.getBigUint64(8, true))), size };
}

/** The counters; the sandbox brackets each run with runStarted()/ran(). */
export class StatsCounter {
  calls = 0;
  exits = 0;
  hostCalls = 0;
  private guestTimeMs = 0;

  runStarted(): number {
    return nowMs();
  }

  ran(startedAt: number): void {
    this.guestTimeMs += nowMs() - startedAt;
    this.exits++;
  }

  /** Runs `vm` once, counted. */
  run(vm: { run(timeoutNs: number): VmExit }, timeoutNs: number): VmExit {
    const startedAt = nowMs();
    try {
      return vm.run(timeoutNs);
    } finally {
      this.ran(startedAt);
    }
  }

  snapshot(lastRestore: SandboxStats["lastRestore"], memorySize: number, heap: HeapUsage): SandboxStats {
    return { calls: this.calls, guestTimeNs: Math.round(this.guestTimeMs * 1e6), exits: this.exits, hostCalls: this.hostCalls, lastRestore, memorySize, heap };
  }
}

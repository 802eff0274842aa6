/**
 * The vmlet side of the snapshot benchmarks: restore() after k dirty pages (and the call
 * after it), Sandbox.fromSnapshot() + first call, and the memory (Rss/Pss/Private) that
 * many sandboxes made from one snapshot cost.
 */
import { nowNs, sleep, usSince } from "./measure.js";
import { setVmParking } from "../src/sandbox/parked-vms.js";
import { readFileSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { Sandbox, SandboxBuilder, type HostFunctionDefinition, type Snapshot, type SnapshotSandboxConfig } from "../src/index.js";
import { guestPath } from "../src/cli/paths.js";

export const snapshotElf = guestPath("snapshot");

const MIB = 2 ** 20;
const PAGE_KIB = 4;

/** Heap sizes giving the guest memory sizes the benchmark names (layout adds a few MiB). */
export const HEAP = { "16MiB": 12 * MIB, "64MiB": 60 * MIB, "1GiB": 1000 * MIB } as const;
export type SizeId = keyof typeof HEAP;

const addOne = (x: number): number => x + 1;
/** The config of every sandbox made from a benchmark snapshot: it must offer the snapshot's host function. */
export const fromSnapshotConfig: SnapshotSandboxConfig = {
  // The definition's generic parameters do not survive the array type (as in test/snapshots.test.ts).
  hostFunctions: [{ name: "host_add_one", params: ["i32"], returns: "i32", impl: addOne } as unknown as HostFunctionDefinition],
};

/** A sandbox of the snapshot guest: `heapSize` decides the guest memory size. */
export function snapshotBuilder(heapSize: number): SandboxBuilder {
  return new SandboxBuilder().guest(snapshotElf).heapSize(heapSize).hostFunction("host_add_one", ["i32"], "i32", addOne).maxGuestLogLevel("warn");
}


/** A snapshot of the snapshot guest at one memory size, taken right after build (its sandbox is closed). */
export interface SnapshotFixture {
  size: SizeId;
  snap: Snapshot;
  memMib: number;
}

export async function snapshotFixture(size: SizeId): Promise<SnapshotFixture> {
  const sb = await snapshotBuilder(HEAP[size]).build();
  try {
    if (sb.callSync("get_counter") !== 0) throw new Error("snapshot guest: get_counter() is not 0 after build");
    return { size, snap: sb.snapshot(), memMib: Math.ceil(sb.memorySize / MIB) };
  } finally {
    sb.close();
  }
}

export const RESTORE_PAGES = [1, 16, 256] as const;

export const restoreKey = (size: SizeId, k: number): string => `${size}/k${k}`;

/**
 * One sandbox per (memory size, k), made with fromSnapshot() and restored to that
 * snapshot. Each sandbox always dirties the same k pages, as kvm_ref does in one run.
 * A restore's cost can depend on the sandbox's history (vmlet keeps pages that were
 * dirty cycle after cycle writable, and copies them back on every restore), so mixing
 * k in one sandbox would make the k=1 figure pay for pages of the k=16 iterations.
 */
export interface RestoreSandbox {
  key: string;
  size: SizeId;
  k: number;
  sb: Sandbox;
  snap: Snapshot;
}

/** Creates the restore sandboxes; on failure closes those already made. */
export async function restoreSandboxes(fixtures: readonly SnapshotFixture[]): Promise<RestoreSandbox[]> {
  const out: RestoreSandbox[] = [];
  try {
    for (const f of fixtures) {
      for (const k of RESTORE_PAGES) {
        out.push({ key: restoreKey(f.size, k), size: f.size, k, sb: await Sandbox.fromSnapshot(f.snap, fromSnapshotConfig), snap: f.snap });
      }
    }
    return out;
  } catch (error) {
    for (const r of out) r.sb.close();
    throw error;
  }
}

/** Per (memory size, k): µs of restore(), of restore() + the next call, of the touch call, and pagesCopied. */
export interface RestoreSamples {
  restore: number[];
  restoreNext: number[];
  touch: number[];
  pagesCopied: number[];
  /** The same with restore(snap, { deferred: true }): the native part runs inside the next call. */
  deferredRestore: number[];
  deferredRestoreNext: number[];
  deferredPagesCopied: number[];
}

/** Consecutive iterations on one sandbox, as the C reference runs its loop on one VM. */
export const RESTORE_BATCH = 20;

/**
 * `rounds` rounds; each round visits every sandbox (in a rotating order, so drift in the
 * machine hits them alike) and runs RESTORE_BATCH consecutive iterations with restore(),
 * then as many with restore({ deferred: true }). An iteration: touch_pages(k) (timed
 * separately, as "touch"), then the restore timed alone, then the next
 * callSync("get_counter") timed. Every iteration is kept, the first of each batch (cold
 * after another sandbox ran) included. Appends to `into`, keyed by restoreKey().
 */
export function measureRestore(sandboxes: readonly RestoreSandbox[], rounds: number, into: Map<string, RestoreSamples>, warmup = 1): void {
  for (const c of sandboxes) if (!into.has(c.key)) into.set(c.key, { restore: [], restoreNext: [], touch: [], pagesCopied: [], deferredRestore: [], deferredRestoreNext: [], deferredPagesCopied: [] });
  let n = 0;
  for (let r = -warmup; r < rounds; r++) {
    for (let i = 0; i < sandboxes.length; i++) {
      const { sb, snap, k, key } = sandboxes[(r + warmup + i) % sandboxes.length]!;
      const s = into.get(key)!;
      for (const deferred of [false, true]) {
        for (let b = 0; b < RESTORE_BATCH; b++, n++) {
          const t0 = nowNs();
          if (sb.callSync("touch_pages", k, 1 + ((n * 7) % 250)) !== k) throw new Error(`touch_pages(${k}) did not touch ${k} pages`);
          const t1 = nowNs();
          const report = sb.restore(snap, { deferred });
          const t2 = nowNs();
          const counter = sb.callSync("get_counter");
          const t3 = nowNs();
          if (counter !== 0 || report.remapped) throw new Error(`restore went wrong: get_counter() = ${String(counter)}, remapped = ${report.remapped}`);
          if (r < 0) continue;
          if (deferred) {
            s.deferredRestore.push(usSince(t1, t2));
            s.deferredRestoreNext.push(usSince(t1, t3));
            s.deferredPagesCopied.push(report.pagesCopied); // read after the call: the count the fused run recorded
          } else {
            s.touch.push(usSince(t0, t1));
            s.restore.push(usSince(t1, t2));
            s.restoreNext.push(usSince(t1, t3));
            s.pagesCopied.push(report.pagesCopied);
          }
        }
      }
    }
  }
  // The restores really put the scratch pages back (checked outside the timed part).
  for (const { sb, snap, k, key } of sandboxes) {
    sb.callSync("touch_pages", k, 9);
    sb.restore(snap);
    if (sb.callSync("scratch_sum") !== 0) throw new Error(`${key}: scratch pages not zero after restore()`);
    sb.callSync("touch_pages", k, 9);
    sb.restore(snap, { deferred: true });
    if (sb.callSync("scratch_sum") !== 0) throw new Error(`${key}: scratch pages not zero after a deferred restore()`);
    sb.restore(snap);
  }
}

/** Per memory size: µs of fromSnapshot() + first call, and of fromSnapshot() alone. */
export interface FromSnapshotSamples {
  total: number[];
  create: number[];
}

/** `iterations` sandboxes per fixture, alternating between fixtures; each closed (not timed), with or without VM reuse. */
export async function measureFromSnapshot(
  fixtures: readonly SnapshotFixture[], iterations: number, into: Map<SizeId, FromSnapshotSamples>, reuseVms: boolean, warmup = 2, idleMs = 0,
): Promise<void> {
  for (const f of fixtures) if (!into.has(f.size)) into.set(f.size, { total: [], create: [] });
  // Off: every sandbox gets a new VM, as the first one of a snapshot in a process does. On:
  // a closed sandbox's VM is reused by the next (src/sandbox/parked-vms.ts), the steady state.
  setVmParking(reuseVms);
  try {
    await fromSnapshotLoop(fixtures, iterations, into, warmup, idleMs);
  } finally {
    setVmParking(true);
  }
}

async function fromSnapshotLoop(fixtures: readonly SnapshotFixture[], iterations: number, into: Map<SizeId, FromSnapshotSamples>, warmup: number, idleMs: number): Promise<void> {
  for (let i = -warmup; i < iterations; i++) {
    for (const f of fixtures) {
      if (idleMs > 0) await sleep(idleMs); // untimed: the host idles between requests
      const t0 = nowNs();
      const { created: t1, called: t2 } = await fromSnapshotAndCall(f.snap, "fromSnapshot");
      if (i < 0) continue;
      into.get(f.size)!.total.push(usSince(t0, t2));
      into.get(f.size)!.create.push(usSince(t0, t1));
    }
  }
}

/**
 * Sandbox.fromSnapshot(snap) and its first callSync("get_counter") (which must return 0),
 * then close (not timed). Returns the clock after creation and after the call.
 */
export async function fromSnapshotAndCall(snap: Snapshot, what: string): Promise<{ created: bigint; called: bigint }> {
  const sb = await Sandbox.fromSnapshot(snap, fromSnapshotConfig);
  const created = nowNs();
  let counter: unknown;
  let called: bigint;
  try {
    counter = sb.callSync("get_counter");
    called = nowNs();
  } finally {
    sb.close();
  }
  if (counter !== 0) throw new Error(`${what}: get_counter() = ${String(counter)}`);
  return { created, called };
}

/** /proc/self/smaps_rollup, kB per field. */
export type Smaps = Record<string, number>;

export function readSmapsRollup(): Smaps {
  const out: Smaps = {};
  for (const line of readFileSync("/proc/self/smaps_rollup", "utf8").split("\n")) {
    const m = /^(\w+):\s+(\d+) kB$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** A full GC before reading smaps, so JS garbage does not count as sandbox memory. */
const gc: () => void = (() => {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
})();

export interface RssResult {
  sandboxes: number;
  snapshotMiB: number;
  heapFilledMiB: number;
  pagesStored: number;
  touchPages: number;
  /** smaps_rollup before creating the sandboxes, after (each made one call), and after closing them; kB. */
  before: Smaps;
  after: Smaps;
  afterClose: Smaps;
  /** Pages each sandbox wrote (guest dirty log + host writes), from restore()'s report after the measurement. */
  dirtyPages: { median: number; max: number };
  /** Growth per extra sandbox, KiB. */
  perSandbox: { rss: number; pss: number; private: number; privateDirty: number; shared: number };
  /** Budget per sandbox: its dirty pages + 1 MiB, KiB. */
  budgetKiB: number;
  /** Then `readers` of the sandboxes read the whole heap (heap_check): growth in total, KiB. */
  readers: number;
  heapRead: { rss: number; pss: number; private: number; ms: number };
}

const privateKiB = (s: Smaps): number => (s.Private_Clean ?? 0) + (s.Private_Dirty ?? 0);
const sharedKiB = (s: Smaps): number => (s.Shared_Clean ?? 0) + (s.Shared_Dirty ?? 0);

/**
 * Memory of `count` sandboxes made from one 64 MiB snapshot whose heap holds
 * `fillMiB` MiB of data: smaps_rollup before and after creating them (each runs one
 * touch_pages(touch) call), then `readers` of them read the whole heap. Closes all.
 */
export async function measureRss(count: number, fillMiB = 48, touch = 4, readers = 8): Promise<RssResult> {
  const origin = await snapshotBuilder(HEAP["64MiB"]).build();
  let snap: Snapshot;
  let snapshotMiB: number;
  try {
    if (origin.callSync("heap_fill", fillMiB * MIB, 3) !== true) throw new Error("heap_fill failed");
    snap = origin.snapshot();
    snapshotMiB = Math.ceil(origin.memorySize / MIB);
  } finally {
    origin.close();
  }
  // Warm-up: code paths, the addon, the image's pages in the page cache.
  for (let i = 0; i < 2; i++) {
    const w = await Sandbox.fromSnapshot(snap, fromSnapshotConfig);
    w.callSync("touch_pages", touch, 1);
    w.close();
  }
  const sandboxes: Sandbox[] = [];
  try {
    gc();
    const before = readSmapsRollup();
    for (let i = 0; i < count; i++) {
      const sb = await Sandbox.fromSnapshot(snap, fromSnapshotConfig);
      sandboxes.push(sb);
      if (sb.callSync("touch_pages", touch, 1 + (i % 200)) !== touch) throw new Error("touch_pages failed");
    }
    gc();
    const after = readSmapsRollup();

    const t0 = nowNs();
    for (const sb of sandboxes.slice(0, readers)) if (sb.callSync("heap_check", 3) !== true) throw new Error("heap_check failed: the heap is not the snapshot's");
    const ms = usSince(t0) / 1000;
    gc();
    const afterRead = readSmapsRollup();

    // What each sandbox wrote: restore() copies exactly those pages back (guest dirty log + host writes).
    // The readers' heap_check call is in their count too, so take the others.
    const dirty = sandboxes.slice(readers).map((sb) => sb.restore(snap).pagesCopied).sort((a, b) => a - b);
    for (const sb of sandboxes.splice(0)) sb.close();
    gc();
    const afterClose = readSmapsRollup();

    const per = (f: (s: Smaps) => number): number => (f(after) - f(before)) / count;
    const dirtyMedian = dirty[dirty.length >> 1] ?? 0;
    return {
      sandboxes: count,
      snapshotMiB,
      heapFilledMiB: fillMiB,
      pagesStored: snap.pagesStored,
      touchPages: touch,
      before,
      after,
      afterClose,
      dirtyPages: { median: dirtyMedian, max: dirty[dirty.length - 1] ?? 0 },
      perSandbox: {
        rss: per((s) => s.Rss ?? 0),
        pss: per((s) => s.Pss ?? 0),
        private: per(privateKiB),
        privateDirty: per((s) => s.Private_Dirty ?? 0),
        shared: per(sharedKiB),
      },
      budgetKiB: dirtyMedian * PAGE_KIB + 1024,
      readers,
      heapRead: {
        rss: (afterRead.Rss ?? 0) - (after.Rss ?? 0),
        pss: (afterRead.Pss ?? 0) - (after.Pss ?? 0),
        private: privateKiB(afterRead) - privateKiB(after),
        ms,
      },
    };
  } finally {
    for (const sb of sandboxes) sb.close();
  }
}

/**
 * Crash safety of Snapshot.save: a child process (test/fixtures/crash-saver.ts) saves a
 * changing sandbox to one tag over and over; it is SIGKILLed at random points, and after
 * every kill the layout must load the tag (checkedLoad: every digest verified) in the
 * state of the last save the child reported, or of the one after it (committed, killed
 * before it printed). verify() must pass after every kill and gc() every few rounds must
 * keep the tag. Every tenth round starts on a new layout and kills during the first save,
 * when a kill before the commit must leave "not found", never "invalid".
 *
 * VMLET_CRASH_ROUNDS sets the number of kills (default 120; `npm run test:crash` runs more), VMLET_CRASH_SEED replays a
 * run; `npm run test:crash` runs 2000. Spare children are started ahead (node start-up and
 * loading vmlet take ~250 ms) and wait on stdin for the layout to use; three lanes, each
 * with its own layout and children, run side by side.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Sandbox, SandboxBuilder, Snapshot, SnapshotLayout, SnapshotNotFoundError } from "../src/index.js";
import { guestPath, since } from "./helpers.js";

const ROUNDS = Number(process.env.VMLET_CRASH_ROUNDS ?? 120);
const SEED = Number(process.env.VMLET_CRASH_SEED ?? Date.now() % 1_000_000);
const HEAP = 2 << 20;
const TAG = "t";
/** Independent kill loops run side by side: a round waits mostly on fsync and child start-up, not on the CPU. */
const LANES = 3;
/** Children started ahead per lane (node start-up and loading vmlet take ~250 ms). */
const SPARES = 2;
const GC_EVERY = 8;
const FRESH_EVERY = 10;
const SAVER = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures/crash-saver.js");
const TEMP_PREFIX = ".tmp-";

/** Deterministic random numbers (mulberry32), so a failing seed can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One crash-saver process and what it has printed. */
class Saver {
  readonly proc: ChildProcess;
  /** Counter of the last save the child reported complete. */
  lastSaved: number | undefined;
  readonly saveMs: number[] = [];
  private readonly saveWaiters: Array<{ n: number; resolve: () => void }> = [];
  stderr = "";
  readonly loaded: Promise<void>;
  readonly ready: Promise<number>;
  readonly closed: Promise<void>;
  killed = false;

  constructor() {
    this.proc = spawn(process.execPath, [SAVER, TAG, String(HEAP)], { stdio: ["pipe", "pipe", "pipe"] });
    this.proc.stderr!.setEncoding("utf8").on("data", (s: string) => (this.stderr += s));
    let onLoaded!: () => void;
    let onReady!: (n: number) => void;
    let onFail!: (e: Error) => void;
    this.loaded = new Promise<void>((resolve) => (onLoaded = resolve));
    this.ready = new Promise<number>((resolve, reject) => {
      onReady = resolve;
      onFail = reject;
    });
    this.ready.catch(() => undefined);
    createInterface({ input: this.proc.stdout! }).on("line", (line) => {
      const [word, a, b] = line.split(" ");
      if (word === "loaded") onLoaded();
      else if (word === "ready") onReady(Number(a));
      else if (word === "saved") {
        this.lastSaved = Number(a);
        this.saveMs.push(Number(b));
        for (const w of this.saveWaiters.filter((w) => w.n <= this.saveMs.length)) {
          this.saveWaiters.splice(this.saveWaiters.indexOf(w), 1);
          w.resolve();
        }
      }
    });
    this.closed = new Promise<void>((resolve) => {
      this.proc.on("close", (code, signal) => {
        if (!this.killed) onFail(new Error(`crash-saver exited by itself (code ${code}, signal ${signal}): ${this.stderr}`));
        resolve();
      });
    });
  }

  /** Resolves once the child has reported `n` saves (rejects if it dies first). */
  saves(n: number): Promise<void> {
    if (this.saveMs.length >= n) return Promise.resolve();
    const reported = new Promise<void>((resolve) => this.saveWaiters.push({ n, resolve }));
    return Promise.race([reported, this.ready.then(() => this.closed).then(() => Promise.reject(new Error(`crash-saver died: ${this.stderr}`)))]);
  }

  go(dir: string): void {
    this.proc.stdin!.write(`${dir}\n`);
  }

  async kill(): Promise<void> {
    this.killed = true;
    this.proc.kill("SIGKILL");
    await this.closed;
  }
}

function sleep(ms: number): Promise<void> {
  return ms <= 0 ? new Promise((resolve) => setImmediate(resolve)) : new Promise((resolve) => setTimeout(resolve, ms));
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

const temps = (dir: string): string[] => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.startsWith(TEMP_PREFIX)) : []);

/** The tag's state as a fresh sandbox sees it; throws on any load error but "not found". */
async function loadedCounter(dir: string): Promise<{ counter: number; digest: string } | "not-found"> {
  let snap: Snapshot;
  try {
    snap = await Snapshot.checkedLoad(dir, TAG);
  } catch (error) {
    if (error instanceof SnapshotNotFoundError) return "not-found";
    throw error;
  }
  const sb = await Sandbox.fromSnapshot(snap);
  try {
    const counter = sb.callSync("get_counter") as number;
    const seed = counter & 255;
    assert.equal(sb.callSync("heap_check", seed), true, `heap holds the pattern of counter ${counter}`);
    assert.equal(sb.callSync("scratch_sum"), 256 * seed, `scratch pages hold the byte of counter ${counter}`);
    const digest = new SnapshotLayout(dir).list().find((l) => l.tag === TAG)!.digest;
    return { counter, digest };
  } finally {
    sb.close();
  }
}

test("a layout whose first save was killed before its commit has no snapshot: not found, not invalid", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-crash-first-"));
  try {
    const sb = await new SandboxBuilder().guest(guestPath("snapshot")).heapSize(1 << 20).build();
    sb.callSync("bump");
    const snap = sb.snapshot();
    sb.close();
    // The state a kill just before the index rename leaves: marker, blobs and a temp, no index.json.
    await snap.save(dir, TAG);
    fs.rmSync(path.join(dir, "index.json"));
    fs.writeFileSync(path.join(dir, `${TEMP_PREFIX}0123456789abcdef`), "{");
    await assert.rejects(Snapshot.load(dir, TAG), (e: unknown) => (e as { code?: string }).code === "SNAPSHOT_NOT_FOUND");
    await assert.rejects(Snapshot.checkedLoad(dir, TAG), (e: unknown) => (e as { code?: string }).code === "SNAPSHOT_NOT_FOUND");
    await snap.save(dir, TAG);
    const copy = await Sandbox.fromSnapshot(await Snapshot.checkedLoad(dir, TAG));
    assert.equal(copy.callSync("get_counter"), 1);
    copy.close();
    assert.deepEqual(temps(dir), [], "the next save removed the temp");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

interface Stats {
  saves: number;
  saveMs: number[];
  midWrite: number;
  /** Of those: the new temp was a partial memory blob (≥ 64 KiB), or a small blob / index.json. */
  midMemory: number;
  midSmall: number;
  committedUnreported: number;
  notFound: number;
  freshRounds: number;
  gcRuns: number;
  gcFreedBytes: number;
  phases: { spare: number; ready: number; run: number; load: number; verify: number; gc: number };
}

/** `rounds` kills of crash-saver children saving to layouts under `root`. */
async function killLoop(lane: number, rounds: number, root: string, stats: Stats): Promise<void> {
  const seed = SEED + lane;
  const rnd = random(seed);
  const spares: Saver[] = [];
  let meanSave = 40;
  let firstSave = 60;
  let layout = "";
  let base = 0; // counter the layout holds before the round (0: nothing saved yet)
  try {
    for (let round = 0; round < rounds; round++) {
      const fresh = round % FRESH_EVERY === 0;
      if (fresh) {
        if (layout) fs.rmSync(layout, { recursive: true, force: true });
        layout = path.join(root, `lane${lane}-L${round}`);
        base = 0;
        stats.freshRounds++;
      }
      const tempsBefore = new Set(temps(layout));
      while (spares.length < SPARES + 1) spares.push(new Saver());
      const saver = spares.shift()!;
      let at = performance.now();
      const lap = (k: keyof Stats["phases"]): void => {
        stats.phases[k] += performance.now() - at;
        at = performance.now();
      };
      const name = `lane ${lane} round ${round}`;
      // (ready cannot resolve before go(): in this race it only reports a child that died.)
      await within(Promise.race([saver.loaded, saver.ready.then(() => undefined)]), 20_000, `${name}: the child did not load vmlet`);
      lap("spare");
      saver.go(layout);
      assert.equal(await within(saver.ready, 20_000, `${name}: the child did not start`), base, `${name}: the child resumed from the layout's state`);
      lap("ready");

      // Let the child complete k saves (none in a fresh layout), then kill it at a random
      // point of the next one: just after it starts, or anywhere in its expected duration
      // (lock, stale-temp sweep, marker, memory blob, small blobs, index rename).
      const k = fresh ? 0 : [0, 0, 0, 0, 1, 1, 1, 1, 2, 2][Math.floor(rnd() * 10)]!;
      const expectedMs = k === 0 ? firstSave : meanSave;
      const delay = rnd() < 0.15 ? Math.floor(rnd() * 3) : rnd() * expectedMs * 1.3;
      await within(saver.saves(k), 20_000, `${name}: the child did not save ${k} times`);
      await sleep(delay);
      await saver.kill();
      lap("run");

      stats.saves += saver.saveMs.length;
      stats.saveMs.push(...saver.saveMs);
      // Running estimates of how long a child's first and later saves take.
      saver.saveMs.forEach((ms, i) => {
        if (i === 0) firstSave = 0.8 * firstSave + 0.2 * ms;
        else meanSave = 0.8 * meanSave + 0.2 * ms;
      });
      const newTemps = temps(layout).filter((name) => !tempsBefore.has(name));
      if (newTemps.length > 0) {
        stats.midWrite++;
        if (newTemps.some((name) => fs.statSync(path.join(layout, name)).size >= 64 << 10)) stats.midMemory++;
        else stats.midSmall++;
      }

      const expected = saver.lastSaved ?? base;
      const where = `${name} (seed ${seed}, k ${k}, delay ${delay.toFixed(1)} ms, reported ${String(saver.lastSaved)}, base ${base}, layout ${layout})`;
      let state: Awaited<ReturnType<typeof loadedCounter>>;
      try {
        state = await loadedCounter(layout);
      } catch (error) {
        throw new Error(`${where}: the layout does not load after a kill: ${(error as Error).message}`, { cause: error });
      }
      lap("load");
      if (state === "not-found") {
        assert.equal(expected, 0, `${where}: "not found" although a save was reported`);
        stats.notFound++;
        continue; // the next child starts over in the same (empty) layout
      }
      assert.ok(state.counter === expected || state.counter === expected + 1, `${where}: loaded counter ${state.counter}, expected ${expected} or ${expected + 1}`);
      if (state.counter === expected + 1) stats.committedUnreported++;
      base = state.counter;

      const report = await new SnapshotLayout(layout).verify();
      assert.ok(report.ok, `${where}: verify: ${report.problems.map((p) => `${p.ref}: ${p.error.message}`).join("; ")}`);
      lap("verify");
      if (round % GC_EVERY === GC_EVERY - 1) {
        const gc = await new SnapshotLayout(layout).gc();
        stats.gcRuns++;
        stats.gcFreedBytes += gc.freedBytes;
        assert.deepEqual(temps(layout), [], `${where}: gc removes stale temp files`);
        assert.deepEqual(await loadedCounter(layout), state, `${where}: gc kept the tag`);
        lap("gc");
      }
    }
  } finally {
    await Promise.all(spares.map((s) => s.kill()));
  }
}

test(`SIGKILL during Snapshot.save never corrupts the layout (${ROUNDS} kills)`, { timeout: Math.max(280_000, ROUNDS * 2000) }, async (t) => {
  const start = performance.now();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-crash-"));
  const stats: Stats = {
    saves: 0, saveMs: [], midWrite: 0, midMemory: 0, midSmall: 0, committedUnreported: 0, notFound: 0, freshRounds: 0, gcRuns: 0, gcFreedBytes: 0,
    phases: { spare: 0, ready: 0, run: 0, load: 0, verify: 0, gc: 0 },
  };
  try {
    await Promise.all(Array.from({ length: LANES }, (_, lane) => killLoop(lane, Math.ceil((ROUNDS - lane) / LANES), root, stats)));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  const saveMs = stats.saveMs.sort((a, b) => a - b);
  t.diagnostic(`${ROUNDS} kills in ${(since(start) / 1000).toFixed(1)} s (${LANES} lanes, seed ${SEED}); ${stats.saves} saves completed, median ${saveMs[saveMs.length >> 1]?.toFixed(1)} ms`);
  t.diagnostic(`kills that left a new temp file (mid-write): ${stats.midWrite} (memory blob ${stats.midMemory}, small blob or index ${stats.midSmall}); committed but unreported: ${stats.committedUnreported}; fresh layouts: ${stats.freshRounds}, of which nothing committed: ${stats.notFound}`);
  t.diagnostic(`time per phase, summed over lanes (s): ${Object.entries(stats.phases).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}`).join(", ")}`);
  t.diagnostic(`gc runs: ${stats.gcRuns}, freed ${(stats.gcFreedBytes / 2 ** 20).toFixed(0)} MiB`);
  assert.ok(stats.midWrite > 0 || ROUNDS < 50, "some kills landed in the middle of a save");
});

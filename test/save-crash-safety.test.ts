/**
 * Crash safety of Snapshot.save: a child process (test/fixtures/crash-saver.ts) saves a
 * changing sandbox to one tag over and over; it is SIGKILLed at random points, and after
 * every kill the layout must load the tag (checkedLoad: every digest verified) in the
 * state of the last save the child reported, or of the one after it (committed, killed
 * before it printed). verify() must pass after every kill and gc() every few rounds must
 * keep the tag. Every tenth round starts on a new layout and kills during the first save,
 * when a kill before the commit must leave "not found", never "invalid".
 *
 * VMLET_CRASH_ROUNDS sets the number of kills (default 200); `npm run test:crash` runs 2000.
 * Spare children are started ahead (node start-up and module loading take ~250 ms) and
 * wait on stdin for the layout to use, so a round costs about one save plus the checks.
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
import { guestPath, requireKvm, since } from "./helpers.js";

requireKvm();

const ROUNDS = Number(process.env.VMLET_CRASH_ROUNDS ?? 200);
const SEED = Number(process.env.VMLET_CRASH_SEED ?? Date.now() % 1_000_000);
const HEAP = 4 << 20;
const TAG = "t";
const SPARES = 2;
const GC_EVERY = 5;
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
      }
    });
    this.closed = new Promise<void>((resolve) => {
      this.proc.on("close", (code, signal) => {
        if (!this.killed) onFail(new Error(`crash-saver exited by itself (code ${code}, signal ${signal}): ${this.stderr}`));
        resolve();
      });
    });
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

test(`SIGKILL during Snapshot.save never corrupts the layout (${ROUNDS} kills)`, { timeout: Math.max(120_000, ROUNDS * 1000) }, async (t) => {
  const start = performance.now();
  const rnd = random(SEED);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-crash-"));
  const spares: Saver[] = [];
  const stats = { saves: 0, midWrite: 0, committedUnreported: 0, notFound: 0, freshRounds: 0, gcRuns: 0, gcFreedBytes: 0 };
  const saveMs: number[] = [];
  let meanSave = 40;
  let firstSave = 60;
  let layout = "";
  let base = 0; // counter the layout holds before the round (0: nothing saved yet)
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const fresh = round % FRESH_EVERY === 0;
      if (fresh) {
        if (layout) fs.rmSync(layout, { recursive: true, force: true });
        layout = path.join(root, `L${round}`);
        base = 0;
        stats.freshRounds++;
      }
      while (spares.length < SPARES + 1) spares.push(new Saver());
      const saver = spares.shift()!;
      await within(saver.loaded, 20_000, `round ${round}: the child did not load vmlet`);
      saver.go(layout);
      assert.equal(await within(saver.ready, 20_000, `round ${round}: the child did not start`), base, `round ${round}: the child resumed from the layout's state`);

      // Kill at a random point: often within the first save (lock, stale-temp sweep, marker,
      // memory blob, small blobs, index), otherwise anywhere in a later save.
      const r = rnd();
      const delay = fresh ? rnd() * firstSave * 1.2
        : r < 0.25 ? Math.floor(rnd() * 4)
        : r < 0.75 ? rnd() * meanSave * 1.5
        : rnd() * meanSave * 5;
      await sleep(delay);
      await saver.kill();

      stats.saves += saver.saveMs.length;
      saveMs.push(...saver.saveMs);
      if (saver.saveMs.length > 1) meanSave = 0.8 * meanSave + 0.2 * (saver.saveMs.slice(1).reduce((a, b) => a + b, 0) / (saver.saveMs.length - 1));
      if (fresh && saver.saveMs.length > 0) firstSave = 0.7 * firstSave + 0.3 * saver.saveMs[0]!;
      if (temps(layout).length > 0) stats.midWrite++;

      const expected = saver.lastSaved ?? base;
      const where = `round ${round} (seed ${SEED}, delay ${delay.toFixed(1)} ms, reported ${String(saver.lastSaved)}, base ${base}, layout ${layout})`;
      let state: Awaited<ReturnType<typeof loadedCounter>>;
      try {
        state = await loadedCounter(layout);
      } catch (error) {
        throw new Error(`${where}: the layout does not load after a kill: ${(error as Error).message}`, { cause: error });
      }
      if (state === "not-found") {
        assert.equal(expected, 0, `${where}: "not found" although a save was reported`);
        stats.notFound++;
        continue; // the next fresh child starts over in the same (empty) layout
      }
      assert.ok(state.counter === expected || state.counter === expected + 1, `${where}: loaded counter ${state.counter}, expected ${expected} or ${expected + 1}`);
      if (state.counter === expected + 1) stats.committedUnreported++;
      base = state.counter;

      const report = await new SnapshotLayout(layout).verify();
      assert.ok(report.ok, `${where}: verify: ${report.problems.map((p) => `${p.ref}: ${p.error.message}`).join("; ")}`);
      if (round % GC_EVERY === GC_EVERY - 1) {
        const gc = await new SnapshotLayout(layout).gc();
        stats.gcRuns++;
        stats.gcFreedBytes += gc.freedBytes;
        assert.deepEqual(temps(layout), [], `${where}: gc removes stale temp files`);
        const after = await loadedCounter(layout);
        assert.deepEqual(after, state, `${where}: gc kept the tag`);
      }
    }
  } finally {
    await Promise.all(spares.map((s) => s.kill()));
    fs.rmSync(root, { recursive: true, force: true });
  }
  saveMs.sort((a, b) => a - b);
  const seconds = since(start) / 1000;
  t.diagnostic(`${ROUNDS} kills in ${seconds.toFixed(1)} s (seed ${SEED}); ${stats.saves} saves completed, median ${saveMs[saveMs.length >> 1]?.toFixed(1)} ms`);
  t.diagnostic(`kills that left temp files (mid-write): ${stats.midWrite}; committed but unreported: ${stats.committedUnreported}; fresh layouts: ${stats.freshRounds}, of which not found after the kill: ${stats.notFound}`);
  t.diagnostic(`gc runs: ${stats.gcRuns}, freed ${(stats.gcFreedBytes / 2 ** 20).toFixed(0)} MiB`);
  assert.ok(stats.midWrite > 0 || ROUNDS < 50, "some kills landed in the middle of a save");
});

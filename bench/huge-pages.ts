/**
 * Huge pages (mem/huge-pages.ts) with and without, side by side, on the backend this run
 * uses: the time to touch every page of a 1 GiB guest heap (built, and from a snapshot),
 * a restore after k dirty heap pages, and Snapshot.load + fromSnapshot + first call at
 * 16 MiB and 1 GiB. One more row needs no backend: KVM's host memory (anonymous) mapped
 * from a 1 GiB snapshot image and touched by the host, the path by which a KVM guest's
 * first touches fault on the host. Ratios are off / on: above 1, huge pages are faster.
 *
 *   npm run bench:huge                 # this section alone (node dist/bench/huge-pages.js [--json])
 *   node dist/bench/run.js --only huge
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createSandbox, Sandbox, Snapshot, backendInfo, type HugePages } from "../src/index.js";
import { median } from "../src/cli/stats.js";
import { GuestMemory } from "../src/mem/guest-memory.js";
import type { MemoryLayout } from "../src/mem/layout.js";
import { packageRoot } from "../src/cli/paths.js";

const MIB = 2 ** 20;
const PAGE = 4096;
const ELF = path.join(packageRoot, "guests/build/snapshot.elf");
const MODES = ["off", "on"] as const;

/** Repetitions (the figure is the median): a 1 GiB touch takes seconds on the 2-core development VM. */
const PLAN = { touchReps: 2, restoreReps: 15, restoreKs: [1, 16, 256], loadReps: 7, hostTouchReps: 2 };

interface Row {
  readonly label: string;
  readonly off: number;
  readonly on: number;
}

const layoutOf = (sb: Sandbox): MemoryLayout => (sb as unknown as { parts: { layout: MemoryLayout } }).parts.layout;
const ms = (t0: number): number => performance.now() - t0;

/** Touches every page of the heap in one guest call; ms. */
function touchHeap(sb: Sandbox): number {
  const { address, size } = layoutOf(sb).heap;
  const t0 = performance.now();
  sb.callSync("touch_range", BigInt(address), BigInt(size), 1);
  return ms(t0);
}

async function build(heapSize: number, hugePages: HugePages): Promise<Sandbox> {
  return createSandbox({ guest: ELF, heapSize, hugePages });
}

async function touchRows(): Promise<Row[]> {
  const built: Record<string, number[]> = { off: [], on: [] }, loaded: Record<string, number[]> = { off: [], on: [] };
  for (let rep = 0; rep < PLAN.touchReps; rep++) {
    for (const mode of MODES) {
      const sb = await build(1000 * MIB, mode);
      const snap = sb.snapshot();
      built[mode]!.push(touchHeap(sb));
      sb.close();
      const again = await Sandbox.fromSnapshot(snap, { hugePages: mode });
      loaded[mode]!.push(touchHeap(again));
      again.close();
    }
  }
  return [
    { label: "touch all of a 1 GiB heap (built), ms", off: median(built.off!), on: median(built.on!) },
    { label: "touch all of a 1 GiB heap (from a snapshot), ms", off: median(loaded.off!), on: median(loaded.on!) },
  ];
}

async function restoreRows(): Promise<Row[]> {
  const figures: Record<string, Record<number, number[]>> = { off: {}, on: {} };
  for (const mode of MODES) {
    const sb = await build(1000 * MIB, mode);
    const snap = sb.snapshot();
    const heap = layoutOf(sb).heap;
    for (const k of PLAN.restoreKs) {
      const samples: number[] = (figures[mode]![k] = []);
      for (let rep = 0; rep < PLAN.restoreReps + 2; rep++) {
        sb.callSync("touch_range", BigInt(heap.address + 64 * MIB), BigInt(k * PAGE), rep + 1);
        const t0 = performance.now();
        sb.restore(snap);
        if (rep >= 2) samples.push(ms(t0) * 1000); // two warm-up rounds
      }
    }
    sb.close();
  }
  return PLAN.restoreKs.map((k) => ({ label: `restore after ${k} dirty heap page(s), 1 GiB, µs`, off: median(figures.off![k]!), on: median(figures.on![k]!) }));
}

async function loadRows(dir: string): Promise<Row[]> {
  const rows: Row[] = [];
  for (const [name, heapSize] of [["16 MiB", 12 * MIB], ["1 GiB", 1000 * MIB]] as const) {
    const figures: Record<string, number[]> = { off: [], on: [] };
    for (const mode of MODES) {
      const sb = await build(heapSize, mode);
      sb.callSync("heap_fill", Math.min(heapSize / 2, 8 * MIB), 3);
      await sb.snapshot().save(dir, `${mode}-${heapSize}`);
      sb.close();
    }
    for (let rep = 0; rep < PLAN.loadReps; rep++) {
      for (const mode of MODES) {
        const t0 = performance.now();
        const snap = await Snapshot.load(dir, `${mode}-${heapSize}`);
        const sb = await Sandbox.fromSnapshot(snap, { hugePages: mode });
        sb.callSync("bump");
        figures[mode]!.push(ms(t0));
        sb.close();
      }
    }
    rows.push({ label: `load + fromSnapshot + first call, ${name}, ms`, off: median(figures.off!), on: median(figures.on!) });
  }
  return rows;
}

/** AnonHugePages of this process, KiB. */
function anonHugeKiB(): number {
  const m = /AnonHugePages:\s+(\d+) kB/.exec(fs.readFileSync("/proc/self/smaps_rollup", "utf8"));
  return m ? Number(m[1]) : 0;
}

/** KVM's memory path without KVM: anonymous guest memory mapped from a 1 GiB image, every heap page written by the host. */
async function hostTouchRow(): Promise<{ row: Row; hugeKiB: number }> {
  const sb = await build(1000 * MIB, "off");
  const snap = sb.snapshot();
  const { address, size } = layoutOf(sb).heap;
  sb.close();
  const figures: Record<string, number[]> = { off: [], on: [] };
  let hugeKiB = 0;
  for (let rep = 0; rep < PLAN.hostTouchReps; rep++) {
    for (const mode of MODES) {
      const memory = GuestMemory.allocate(snap.memorySize, mode === "on");
      memory.mapImage(snap.image);
      const before = anonHugeKiB();
      const t0 = performance.now();
      for (let at = address; at < address + size; at += PAGE) memory.bytes[at] = 1;
      figures[mode]!.push(ms(t0));
      if (mode === "on") hugeKiB = anonHugeKiB() - before;
      memory.release();
    }
  }
  return { row: { label: "KVM's host memory from a 1 GiB image, host touches the heap, ms", off: median(figures.off!), on: median(figures.on!) }, hugeKiB };
}

function thpSettings(): string {
  const read = (file: string): string => {
    try {
      return /\[(\w+)\]/.exec(fs.readFileSync(`/sys/kernel/mm/transparent_hugepage/${file}`, "utf8"))?.[1] ?? "?";
    } catch {
      return "absent";
    }
  };
  return `THP enabled=${read("enabled")}, shmem_enabled=${read("shmem_enabled")}`;
}

export async function measureHugePages(progress: (m: string) => void = () => {}): Promise<{ rows: Row[]; lines: string[] }> {
  const dir = fs.mkdtempSync(path.join(process.env.VMLET_BENCH_DIR ?? os.tmpdir(), "vmlet-huge-"));
  try {
    progress("touch");
    const rows = await touchRows();
    progress("restore");
    rows.push(...(await restoreRows()));
    progress("load");
    rows.push(...(await loadRows(dir)));
    progress("host touch");
    const host = await hostTouchRow();
    rows.push(host.row);
    const width = Math.max(...rows.map((r) => r.label.length));
    const fmt = (v: number): string => (v >= 100 ? v.toFixed(0) : v.toFixed(2)).padStart(9);
    const lines = [
      `huge pages, ${backendInfo().name} backend (${thpSettings()}); off = 4 KiB, on = hugePages "on"; ratio = off / on`,
      `${"".padEnd(width)}       off        on   ratio`,
      ...rows.map((r) => `${r.label.padEnd(width)} ${fmt(r.off)} ${fmt(r.on)}   ${(r.off / r.on).toFixed(2)}×`),
      `host touch with huge pages: AnonHugePages grew ${host.hugeKiB} KiB`,
    ];
    return { rows, lines };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith("huge-pages.js")) {
  const json = process.argv.includes("--json");
  measureHugePages((m) => process.stderr.write(`[huge] ${m}\n`)).then(
    ({ rows, lines }) => process.stdout.write(json ? JSON.stringify(rows, null, 2) + "\n" : lines.join("\n") + "\n"),
    (error: unknown) => {
      process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}

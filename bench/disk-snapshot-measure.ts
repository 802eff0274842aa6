/**
 * Snapshots on disk (OCI layouts): Snapshot.save against `dd … conv=fsync` of the same
 * bytes, Snapshot.load + first call at 16 MiB and 1 GiB, Snapshot.checkedLoad against
 * `sha256sum`, and a cold start in a new process from a disk snapshot against one from
 * the guest ELF; diff layers (bench/disk-layers-measure.ts). Every reference is measured in
 * the same run, on the same disk.
 *
 *   npm run bench:disk            # this section alone (node dist/bench/disk-snapshot-measure.js [--json])
 *   node dist/bench/run.js --only disk
 *
 * The layouts go to a fresh directory under $VMLET_BENCH_DIR (default: the OS temp dir),
 * removed at the end.
 */
import { cKey, runCReference } from "./cref.js";
import { setVmParking } from "../src/sandbox/parked-vms.js";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { constants as perfConstants, PerformanceObserver } from "node:perf_hooks";
import { backendInfo, Snapshot } from "../src/index.js";
import { median } from "../src/cli/stats.js";
import { fromSnapshotAndCall, snapshotBuilder, snapshotElf } from "./snapshot-measure.js";
import { alternately, row, runTimed, type DiskRow } from "./disk-rows.js";
import { measureLayers } from "./disk-layers-measure.js";

export type { DiskRow } from "./disk-rows.js";
import { spawnTimed } from "./spawn-timed.js";

const MIB = 2 ** 20;
const nowNs = (): bigint => process.hrtime.bigint();
const msSince = (t0: bigint, t1 = nowNs()): number => Number(t1 - t0) / 1e6;

/** Guests of the section: heapSize for each memory size (the layout adds a few MiB), and how much of the heap heap_fill fills. */
const GUESTS = {
  "16MiB": { heap: 12 * MIB, fill: 11 * MIB },
  "256MiB": { heap: 252 * MIB, fill: 250 * MIB },
  "1GiB": { heap: 1000 * MIB, fill: 0 },
} as const;
type GuestId = keyof typeof GUESTS;

/** Repetitions; the figure is the median. Sized to keep the section near 45 s on the 2-core development machine. */
export const DISK_PLAN = {
  saveReps: { "16MiB": 9, "256MiB": 3 } as Record<"16MiB" | "256MiB", number>,
  loadReps: 20, // per size, alternating
  checkedReps: { "16MiB": 5, "256MiB": 3 } as Record<"16MiB" | "256MiB", number>,
  coldStartReps: 7, // per kind, interleaved
};

export const DISK_TARGET = { saveThroughput: 0.8, loadScaling: 1.2, checkedLoad: 1.2, coldStart: null as number | null };

export interface DiskResult {
  dir: string;
  filesystem: string;
  backend: { name: string; flavour: string };
  plan: typeof DISK_PLAN;
  rows: DiskRow[];
  coldStart: Record<string, unknown>;
  durationS: number;
  lines: string[];
  missed: string[];
}

/** The file system `dir` is on (df -T), for the header. */
function filesystemOf(dir: string): string {
  const r = spawnSync("df", ["-T", "-P", dir], { encoding: "utf8" });
  const line = r.stdout?.trim().split("\n")[1]?.split(/\s+/);
  return line ? `${line[0]} (${line[1]}, mounted on ${line[6]})` : "unknown";
}

/** `dd if=src of=dst bs=1M conv=fsync`: ms of wall time, and dd's own figure (open to fsync done, without the exec). */
function ddCopy(src: string, dst: string): { wallMs: number; ddMs: number } {
  const r = runTimed("dd", [`if=${src}`, `of=${dst}`, "bs=1M", "conv=fsync"]);
  const m = /copied, ([\d.]+) s/.exec(r.stderr);
  return { wallMs: r.ms, ddMs: m ? Number(m[1]) * 1000 : r.ms };
}

/** Drops one file's pages from the page cache (posix_fadvise DONTNEED through dd): no system-wide cache drop. */
function dropFileCache(file: string): void {
  runTimed("dd", [`if=${file}`, "iflag=nocache", "count=0", "status=none"]);
}

const blobFile = (dir: string, digest: string): string => path.join(dir, "blobs/sha256", digest.slice("sha256:".length));

async function manifestMemoryBlob(dir: string, manifestDigest: string): Promise<{ digest: string; size: number }> {
  const manifest = JSON.parse(await fs.promises.readFile(blobFile(dir, manifestDigest), "utf8")) as { layers: Array<{ mediaType: string; digest: string; size: number }> };
  const layer = manifest.layers.find((l) => l.mediaType.includes("memory")) ?? manifest.layers[0]!;
  return { digest: layer.digest, size: layer.size };
}

const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);

/** A guest of `id`, optionally with `fill` bytes of its heap filled (heap_fill, non-zero pattern). Returns `count` snapshots of it, each a separate image (so none knows its digest yet), and closes the sandbox. */
async function snapshotsOf(id: GuestId, fill: number, count: number): Promise<{ snaps: Snapshot[]; memorySize: number }> {
  const sb = await snapshotBuilder(GUESTS[id].heap).build();
  try {
    if (fill > 0 && sb.callSync("heap_fill", fill, 7) !== true) throw new Error(`heap_fill(${fill}) failed`);
    if (sb.callSync("get_counter") !== 0) throw new Error("get_counter() is not 0");
    const snaps: Snapshot[] = [];
    // A sandbox not modified since its last snapshot returns that same snapshot (whose digest a
    // save remembers), so a call comes between them: each is a new image, hashed when saved.
    for (let i = 0; i < count; i++) {
      if (i > 0 && sb.callSync("get_counter") !== 0) throw new Error("get_counter() is not 0");
      snaps.push(sb.snapshot());
      if (i > 0 && snaps[i] === snaps[i - 1]) throw new Error("sandbox.snapshot() returned the previous snapshot");
    }
    return { snaps, memorySize: sb.memorySize };
  } finally {
    sb.close();
  }
}

interface SaveCase {
  id: string;
  label: string;
  guest: "16MiB" | "256MiB";
  fill: number;
}

/**
 * Save: one untimed warm-up save (its memory blob is dd's source, in the page cache as
 * vmlet's source is in memory), then `reps` rounds of one vmlet save of a fresh snapshot
 * image (its digest unknown, as on a first save) into a fresh layout and one dd of the
 * same bytes into a new file of that layout, alternating which goes first.
 */
async function measureSave(root: string, c: SaveCase, reps: number, progress: (m: string) => void): Promise<DiskRow> {
  progress(`save ${c.label}`);
  const { snaps, memorySize } = await snapshotsOf(c.guest, c.fill, reps + 1);
  const warm = path.join(root, `save-${c.id}-warm`);
  const warmDigest = await snaps[0]!.save(warm, "t");
  const blob = await manifestMemoryBlob(warm, warmDigest);
  if (blob.size !== memorySize) throw new Error(`memory blob is ${blob.size} bytes, guest memory ${memorySize}`);
  const source = blobFile(warm, blob.digest);
  const vmletMs: number[] = [], ddMs: number[] = [], ddWallMs: number[] = [];
  for (let i = 0; i < reps; i++) {
    const dir = path.join(root, `save-${c.id}-${i}`);
    const runVmlet = async (): Promise<void> => {
      const t0 = nowNs();
      await snaps[i + 1]!.save(dir, "t");
      vmletMs.push(msSince(t0));
    };
    const runDd = (): void => {
      fs.mkdirSync(dir, { recursive: true });
      const d = ddCopy(source, path.join(dir, "dd.out"));
      ddMs.push(d.ddMs);
      ddWallMs.push(d.wallMs);
    };
    await alternately(i, runVmlet, runDd);
  }
  const stored = snaps[0]!.pagesStored;
  return row({
    id: `save/${c.id}`, label: `save() ${c.label}`, unit: "MB/s",
    vmlet: mbps(memorySize, median(vmletMs)), ref: mbps(memorySize, median(ddMs)), refLabel: "dd bs=1M conv=fsync",
    target: { op: "≥", value: DISK_TARGET.saveThroughput },
    samples: { vmlet: vmletMs, ref: ddMs },
    detail: { memoryBytes: memorySize, pagesStored: stored, dataMiB: (stored * 4096) / MIB, vmletMs: median(vmletMs), ddMs: median(ddMs), ddWallMs: median(ddWallMs) },
  });
}

/** Snapshot.load + fromSnapshot + first call, alternating between the sizes; parts split out. Steady state (VMs reused) carries the target; new VMs are shown beside it. */
async function measureLoad(root: string, reps: number, progress: (m: string) => void): Promise<DiskRow[]> {
  progress("load + first call, 16 MiB and 1 GiB");
  const sizes = ["16MiB", "1GiB"] as const;
  const dirs: Record<string, string> = {};
  const mem: Record<string, number> = {};
  for (const id of sizes) {
    const { snaps, memorySize } = await snapshotsOf(id, GUESTS[id].fill, 1);
    dirs[id] = path.join(root, `load-${id}`);
    await snaps[0]!.save(dirs[id], "t");
    mem[id] = memorySize;
  }
  const reused = await loadLoop(dirs, reps, true);
  const fresh = await loadLoop(dirs, reps, false);
  const parts = (t: LoadTimes, id: string): Record<string, number> =>
    ({ majorGcs: t.majorGcs, memoryMiB: mem[id]! / MIB, load: median(t.load[id]!), fromSnapshot: median(t.create[id]!), firstCall: median(t.call[id]!) });
  const { total, load, create } = reused;
  return [
    row({
      id: "load/16MiB", label: "load() + fromSnapshot() + first call 16 MiB", unit: "ms",
      vmlet: median(total["16MiB"]!), ref: Number.NaN, refLabel: "(for the ÷ row)", target: null,
      samples: { vmlet: total["16MiB"]!, ref: [] }, detail: parts(reused, "16MiB"),
    }),
    row({
      id: "load/scaling", label: "load() + fromSnapshot() + first call 1 GiB ÷ 16 MiB", unit: "ms",
      vmlet: median(total["1GiB"]!), ref: median(total["16MiB"]!), refLabel: "vmlet, 16 MiB",
      target: { op: "≤", value: DISK_TARGET.loadScaling },
      samples: { vmlet: total["1GiB"]!, ref: total["16MiB"]! }, detail: parts(reused, "1GiB"),
    }),
    row({
      id: "load/load-only", label: "  of which load() alone, 1 GiB ÷ 16 MiB", unit: "ms",
      vmlet: median(load["1GiB"]!), ref: median(load["16MiB"]!), refLabel: "vmlet, 16 MiB", target: null,
      samples: { vmlet: load["1GiB"]!, ref: load["16MiB"]! },
    }),
    row({
      id: "load/from-snapshot-only", label: "  of which fromSnapshot() alone, 1 GiB ÷ 16 MiB", unit: "ms",
      vmlet: median(create["1GiB"]!), ref: median(create["16MiB"]!), refLabel: "vmlet, 16 MiB", target: null,
      samples: { vmlet: create["1GiB"]!, ref: create["16MiB"]! },
    }),
    row({
      id: "load/new-vm-scaling", label: "  with a new VM each (first sandbox of a snapshot)", unit: "ms",
      vmlet: median(fresh.total["1GiB"]!), ref: median(fresh.total["16MiB"]!), refLabel: "vmlet, 16 MiB, new VM", target: null,
      samples: { vmlet: fresh.total["1GiB"]!, ref: fresh.total["16MiB"]! }, detail: parts(fresh, "1GiB"),
    }),
    // The C reference creates KVM VMs: a comparison for the KVM backend only (it needs /dev/kvm).
    ...(backendInfo().name === "kvm" ? [kernelShareRow(mem["16MiB"]! / MIB, mem["1GiB"]! / MIB, median(fresh.total["1GiB"]!) - median(fresh.total["16MiB"]!))] : []),
  ];
}

interface LoadTimes {
  readonly total: Record<string, number[]>;
  readonly load: Record<string, number[]>;
  readonly create: Record<string, number[]>;
  readonly call: Record<string, number[]>;
  readonly majorGcs: number;
}

/** `reps` rounds of load + fromSnapshot + call per size, alternating, each sandbox closed (not timed); VM reuse on or off. */
async function loadLoop(dirs: Record<string, string>, reps: number, reuseVms: boolean): Promise<LoadTimes> {
  const sizes = ["16MiB", "1GiB"] as const;
  const total: Record<string, number[]> = { "16MiB": [], "1GiB": [] };
  const load: Record<string, number[]> = { "16MiB": [], "1GiB": [] };
  const create: Record<string, number[]> = { "16MiB": [], "1GiB": [] };
  const call: Record<string, number[]> = { "16MiB": [], "1GiB": [] };
  // Full (mark-compact) GCs during the measured iterations: they land in whichever part runs next.
  let majorGcs = 0;
  let measuredFrom = Number.POSITIVE_INFINITY;
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.startTime >= measuredFrom && (e as unknown as { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) majorGcs++;
    }
  });
  gcObserver.observe({ entryTypes: ["gc"] });
  setVmParking(reuseVms);
  try {
    for (let i = -2; i < reps; i++) {
      if (i === 0) measuredFrom = performance.now();
      for (const id of i % 2 ? sizes : [...sizes].reverse()) {
        const t0 = nowNs();
        const snap = await Snapshot.load(dirs[id]!, "t");
        const t1 = nowNs();
        const { created: t2, called: t3 } = await fromSnapshotAndCall(snap, "load");
        if (i < 0) continue;
        total[id]!.push(msSince(t0, t3));
        load[id]!.push(msSince(t0, t1));
        create[id]!.push(msSince(t1, t2));
        call[id]!.push(msSince(t2, t3));
      }
    }
  } finally {
    setVmParking(true);
  }
  await new Promise((resolve) => setTimeout(resolve, 50)); // let the observer see the last entries
  gcObserver.disconnect();
  return { total, load, create, call, majorGcs };
}

/**
 * What the kernel adds for a larger guest: the C reference's VM creation (KVM_CREATE_VM,
 * the memory slot, the vCPU, the first exit) at both sizes, in this run. Its growth is
 * KVM's per-page memslot setup (rmap arrays, dirty bitmap), which any VM of that size pays.
 */
function kernelShareRow(smallMib: number, bigMib: number, vmletExtraMs: number): DiskRow {
  const jobs = [smallMib, bigMib].map((memMib) => ({ metrics: ["create_us"] as const, memMib: Math.ceil(memMib), iters: 40 }));
  const c = runCReference(jobs);
  const at = (mib: number): number => c.metrics[cKey("create_us", Math.ceil(mib))]!.median / 1000;
  const cExtra = at(bigMib) - at(smallMib);
  return row({
    id: "load/kernel-share", label: "  1 GiB − 16 MiB: vmlet vs C VM create", unit: "ms",
    vmlet: vmletExtraMs, ref: cExtra, refLabel: "C create_us 1 GiB − 16 MiB", target: null,
    samples: { vmlet: [vmletExtraMs], ref: [cExtra] },
  });
}

/**
 * checkedLoad (which hashes the whole memory blob) against sha256sum of that blob, both
 * from the page cache (vmlet's warm-up run leaves the blob there), alternating which goes first.
 */
async function measureChecked(root: string, id: "16MiB" | "256MiB", reps: number, progress: (m: string) => void): Promise<DiskRow> {
  progress(`checkedLoad ${id}`);
  const dir = path.join(root, `save-${id}-filled-warm`);
  const index = JSON.parse(fs.readFileSync(path.join(dir, "index.json"), "utf8")) as { manifests: Array<{ digest: string }> };
  const blob = await manifestMemoryBlob(dir, index.manifests[0]!.digest);
  const file = blobFile(dir, blob.digest);
  const vmletMs: number[] = [], refMs: number[] = [];
  const runVmlet = async (keep: boolean): Promise<void> => {
    const t0 = nowNs();
    const snap = await Snapshot.checkedLoad(dir, "t");
    const ms = msSince(t0);
    if (snap.memorySize !== blob.size) throw new Error("checkedLoad: wrong memory size");
    if (keep) vmletMs.push(ms);
  };
  const runRef = (keep: boolean): void => {
    const r = runTimed("sha256sum", [file]);
    if (r.stdout.split(" ")[0] !== blob.digest.slice("sha256:".length)) throw new Error("sha256sum disagrees with the blob's digest");
    if (keep) refMs.push(r.ms);
  };
  await runVmlet(false); // warm-up; it also leaves the blob in the page cache for both
  for (let i = 0; i < reps; i++) {
    await alternately(i, () => runVmlet(true), () => runRef(true));
  }
  // For information: the same hash with the page cache dropped for the blob (one of each).
  dropFileCache(file);
  const c0 = nowNs();
  await Snapshot.checkedLoad(dir, "t");
  const coldVmlet = msSince(c0);
  dropFileCache(file);
  const coldRef = runTimed("sha256sum", [file]).ms;
  // And what Node's own sha256 costs over the bytes in memory (the floor of an in-process hash).
  const bytes = fs.readFileSync(file);
  const h0 = nowNs();
  createHash("sha256").update(bytes).digest();
  const nodeHashMs = msSince(h0);
  return row({
    id: `checked-load/${id}`, label: `checkedLoad() ${id.replace("MiB", " MiB")} (heap filled)`, unit: "ms",
    vmlet: median(vmletMs), ref: median(refMs), refLabel: "sha256sum of the blob",
    target: { op: "≤", value: DISK_TARGET.checkedLoad },
    samples: { vmlet: vmletMs, ref: refMs },
    detail: { memoryBytes: blob.size, coldCache: { vmletMs: coldVmlet, sha256sumMs: coldRef }, nodeSha256InMemoryMs: nodeHashMs },
  });
}

/** Cold start in a new process: from the disk snapshot vs from the ELF, plus `node -e 0`; interleaved. */
async function measureColdStart(root: string, reps: number, progress: (m: string) => void): Promise<{ rows: DiskRow[]; detail: Record<string, unknown> }> {
  progress("cold start in a new process");
  const child = fileURLToPath(new URL("./cold-start-child.js", import.meta.url));
  const dir = path.join(root, "load-16MiB");
  const kinds = {
    snapshot: [child, "snapshot", dir, "t"],
    elf: [child, "elf", snapshotElf, String(GUESTS["16MiB"].heap)],
    bare: ["-e", "0"],
  } as const;
  type Kind = keyof typeof kinds;
  const first: Record<Kind, number[]> = { snapshot: [], elf: [], bare: [] };
  const exit: Record<Kind, number[]> = { snapshot: [], elf: [], bare: [] };
  const inner: Record<"snapshot" | "elf", Array<Record<string, number>>> = { snapshot: [], elf: [] };
  const order = Object.keys(kinds) as Kind[];
  for (let i = -1; i < reps; i++) {
    for (let j = 0; j < order.length; j++) {
      const kind = order[(i + 1 + j) % order.length]!;
      const r = await spawnTimed([...kinds[kind]]);
      if (kind !== "bare") {
        const parsed = JSON.parse(r.line) as { result: unknown; t: Record<string, number> };
        if (parsed.result !== 0) throw new Error(`cold start (${kind}): get_counter() = ${String(parsed.result)}`);
        if (i >= 0) inner[kind].push(parsed.t);
      }
      if (i < 0) continue;
      first[kind].push(r.firstMs);
      exit[kind].push(r.exitMs);
    }
  }
  const innerMedian = (k: "snapshot" | "elf"): Record<string, number> => {
    const keys = Object.keys(inner[k][0] ?? {});
    return Object.fromEntries(keys.map((key) => [key, median(inner[k].map((t) => t[key]!).filter((v) => !Number.isNaN(v)))]));
  };
  const detail = {
    bareNodeExitMs: median(exit.bare),
    snapshot: { firstMs: median(first.snapshot), exitMs: median(exit.snapshot), inChild: innerMedian("snapshot") },
    elf: { firstMs: median(first.elf), exitMs: median(exit.elf), inChild: innerMedian("elf") },
  };
  const rows = [
    row({
      id: "cold-start/first", label: "cold start → first result (16 MiB)", unit: "ms",
      vmlet: median(first.snapshot), ref: median(first.elf), refLabel: "same, build from ELF", target: null,
      samples: { vmlet: first.snapshot, ref: first.elf }, detail,
    }),
    row({
      id: "cold-start/exit", label: "cold start → exit (16 MiB)", unit: "ms",
      vmlet: median(exit.snapshot), ref: median(exit.elf), refLabel: "same, build from ELF", target: null,
      samples: { vmlet: exit.snapshot, ref: exit.elf },
    }),
    row({
      id: "cold-start/bare", label: "cold start → exit, vs bare node", unit: "ms",
      vmlet: median(exit.snapshot), ref: median(exit.bare), refLabel: "node -e 0", target: null,
      samples: { vmlet: exit.snapshot, ref: exit.bare },
    }),
  ];
  return { rows, detail };
}

const fmt = (v: number): string => (Number.isNaN(v) ? "—" : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));

function table(rows: readonly DiskRow[]): string[] {
  const head = ["", "vmlet", "reference", "", "ratio", "target", ""];
  const body = rows.map((r) => [
    r.label,
    `${fmt(r.vmlet)} ${r.unit}`,
    Number.isNaN(r.ref) ? "" : `${fmt(r.ref)} ${r.unit}`,
    r.refLabel,
    Number.isNaN(r.ratio) ? "" : r.ratio.toFixed(2),
    r.target === null ? "—" : `${r.target.op} ${r.target.value.toFixed(2)}`,
    r.meetsTarget === null ? "(info)" : r.meetsTarget ? "ok" : "MISSED",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 || i === 3 || i === 6 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd();
  return [line(head), widths.map((w) => "─".repeat(w)).join("  "), ...body.map(line)];
}

/** The whole section. `progress` gets one line per step. */
export async function measureDiskSnapshots(progress: (msg: string) => void = () => undefined): Promise<DiskResult> {
  const started = performance.now();
  const base = process.env.VMLET_BENCH_DIR ?? os.tmpdir();
  fs.mkdirSync(base, { recursive: true });
  const root = fs.mkdtempSync(path.join(base, "vmlet-bench-disk-"));
  const backend = backendInfo();
  const rows: DiskRow[] = [];
  let cold: { rows: DiskRow[]; detail: Record<string, unknown> };
  try {
    const saveCases: SaveCase[] = [
      { id: "16MiB-filled", label: "16 MiB, heap filled (11 MiB data)", guest: "16MiB", fill: GUESTS["16MiB"].fill },
      { id: "256MiB-filled", label: "256 MiB, heap filled (250 MiB data)", guest: "256MiB", fill: GUESTS["256MiB"].fill },
      { id: "16MiB-sparse", label: "16 MiB, as built (sparse)", guest: "16MiB", fill: 0 },
      { id: "256MiB-sparse", label: "256 MiB, as built (sparse)", guest: "256MiB", fill: 0 },
    ];
    for (const c of saveCases) rows.push(await measureSave(root, c, DISK_PLAN.saveReps[c.guest], progress));
    rows.push(...(await measureLoad(root, DISK_PLAN.loadReps, progress)));
    for (const id of ["16MiB", "256MiB"] as const) rows.push(await measureChecked(root, id, DISK_PLAN.checkedReps[id], progress));
    rows.push(...(await measureLayers(root, progress)));
    cold = await measureColdStart(root, DISK_PLAN.coldStartReps, progress);
    rows.push(...cold.rows);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  const filesystem = filesystemOf(base);
  const durationS = Math.round((performance.now() - started) / 100) / 10;
  const missed = rows.filter((r) => r.meetsTarget === false).map((r) => r.id);
  const flavour =
    backend.flavour === "pvm"
      ? "PVM — software-virtualised KVM for a nested host: VM creation and every exit cost far more than with hardware KVM"
      : `"${backend.flavour}"`;
  const d = cold.detail as { bareNodeExitMs: number; snapshot: { inChild: Record<string, number> }; elf: { inChild: Record<string, number> } };
  const inChild = (t: Record<string, number>): string =>
    `import ${fmt(t.import! - t.importStart!)}, ${Number.isNaN(t.load ?? Number.NaN) ? "" : `load ${fmt(t.load! - t.import!)}, fromSnapshot ${fmt(t.ready! - t.load!)}`}` +
    `${Number.isNaN(t.load ?? Number.NaN) ? `build ${fmt(t.ready! - t.import!)}` : ""}, call ${fmt(t.call! - t.ready!)}; result at ${fmt(t.call!)} ms after process start`;
  const saveRows = rows.filter((r) => r.id.startsWith("save/"));
  const lines = [
    `disk snapshots — backend ${backend.name}, flavour ${flavour}. Layouts on ${filesystem}.`,
    ...table(rows),
    "",
    `save: MB/s = guest memory bytes / median time of ${DISK_PLAN.saveReps["16MiB"]} (16 MiB) or ${DISK_PLAN.saveReps["256MiB"]} (256 MiB) saves, each of a fresh snapshot image (digest not yet known) into a fresh layout;` +
      " vmlet = the whole Snapshot.save() (sha256 of the image, sparse write, fsync of the blobs and dirs, index). dd copies the saved memory blob (in the page cache) into a new file" +
      " of the same layout (dd's own elapsed time: open to fsync done). Medians ms, vmlet / dd: " +
      saveRows.map((r) => `${r.id.slice(5)} ${fmt((r.detail as { vmletMs: number }).vmletMs)} / ${fmt((r.detail as { ddMs: number }).ddMs)}`).join(", ") + ".",
    `load: median of ${DISK_PLAN.loadReps} per size, alternating; Snapshot.load(dir, tag) + Sandbox.fromSnapshot() + callSync("get_counter"), page cache warm. Parts (ms): ` +
      ["load/16MiB", "load/scaling"].map((id) => {
        const p = rows.find((r) => r.id === id)!.detail as Record<string, number>;
        return `${p.memoryMiB} MiB: load ${fmt(p.load!)}, fromSnapshot ${fmt(p.fromSnapshot!)}, call ${fmt(p.firstCall!)}`;
      }).join("; ") + `; ${(rows.find((r) => r.id === "load/16MiB")!.detail as { majorGcs: number }).majorGcs} full GCs in the ${2 * DISK_PLAN.loadReps} measured iterations.`,
    "checkedLoad: median of runs from the page cache (sha256sum: wall time of the process). Page cache dropped for the blob (one run each, info): " +
      rows.filter((r) => r.id.startsWith("checked-load/")).map((r) => {
        const x = r.detail as { coldCache: { vmletMs: number; sha256sumMs: number }; nodeSha256InMemoryMs: number };
        return `${r.id.slice(13)} ${fmt(x.coldCache.vmletMs)} vs ${fmt(x.coldCache.sha256sumMs)} ms (Node's sha256 of the bytes in memory: ${fmt(x.nodeSha256InMemoryMs)} ms)`;
      }).join("; ") + ".",
    `cold start: median of ${DISK_PLAN.coldStartReps} new processes per kind (interleaved), spawn → first line on stdout / → exit; bare \`node -e 0\` exits in ${fmt(d.bareNodeExitMs)} ms. In the child (ms):` +
      ` snapshot: ${inChild(d.snapshot.inChild)}; ELF: ${inChild(d.elf.inChild)}.`,
    missed.length ? `disk targets missed: ${missed.join(", ")}` : "disk targets: all met",
    `disk section took ${durationS} s`,
  ];
  return { dir: base, filesystem, backend: { name: backend.name, flavour: backend.flavour }, plan: DISK_PLAN, rows, coldStart: cold.detail, durationS, lines, missed };
}

// Run alone: node dist/bench/disk-snapshot-measure.js [--json]
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const json = process.argv.includes("--json");
  measureDiskSnapshots((m) => void (json || process.stderr.write(`[bench:disk] ${m}\n`))).then(
    (r) => process.stdout.write(json ? JSON.stringify({ ...r, lines: undefined }, null, 2) + "\n" : r.lines.join("\n") + "\n"),
    (error: unknown) => {
      process.stderr.write(`bench:disk failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}

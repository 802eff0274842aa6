/**
 * Diff layers in the disk section (issue 15's figures): save({ base }) of k changed pages
 * over a 1 GiB base against `dd conv=fsync` of k pages, and the diff's bytes on disk against
 * k × 4 KiB + 64 KiB; load + fromSnapshot + first call through chains of 1, 4 and 16 layers
 * at 16 MiB and 1 GiB; checkedLoad of a 16-layer chain against sha256sum of its blobs.
 * Every reference is measured in the same run, on the same disk.
 */
import fs from "node:fs";
import path from "node:path";
import { Snapshot, type Sandbox } from "../src/index.js";
import { median } from "../src/cli/stats.js";
import { alternately, row, runTimed, type DiskRow } from "./disk-rows.js";
import { fromSnapshotAndCall, snapshotBuilder } from "./snapshot-measure.js";

const MIB = 2 ** 20;
const PAGE = 4096;
const nowNs = (): bigint => process.hrtime.bigint();
const msSince = (t0: bigint, t1 = nowNs()): number => Number(t1 - t0) / 1e6;

/** Guests: heap size per memory size, and how much of it is filled (the full layer's data). */
const GUESTS = { "16MiB": { heap: 12 * MIB, fill: 11 * MIB }, "1GiB": { heap: 1000 * MIB, fill: 0 } } as const;
const DIFF_PAGES = [1, 16, 256] as const;
const DEPTHS = [1, 4, 16] as const;

export const LAYER_PLAN = { diffSaveReps: 9, chainLoadReps: 12, checkedReps: 7 };
export const LAYER_TARGET = { diffSave: 2, diffDiskSlackBytes: 64 * 1024, chainLoad: 1.3, checkedLoad: 1.2 };

export async function measureLayers(root: string, progress: (m: string) => void): Promise<DiskRow[]> {
  const rows = await measureDiffSaves(root, progress);
  const chains: Record<string, string> = {};
  for (const id of ["16MiB", "1GiB"] as const) {
    progress(`layers: a chain of 16 at ${id}`);
    chains[id] = await buildChain(root, id);
  }
  for (const id of ["16MiB", "1GiB"] as const) rows.push(...(await measureChainLoad(chains[id]!, id, progress)));
  rows.push(await measureChainChecked(chains["16MiB"]!, progress));
  return rows;
}

const blobFile = (dir: string, digest: string): string => path.join(dir, "blobs/sha256", digest.slice("sha256:".length));

/** The blobs of tag's manifest (manifest, config, layers) as files, and its memory layers. */
function snapshotBlobs(dir: string, tag: string): { files: string[]; memory: Array<{ digest: string; size: number }> } {
  const index = JSON.parse(fs.readFileSync(path.join(dir, "index.json"), "utf8")) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const entry = index.manifests.find((d) => d.annotations?.["org.opencontainers.image.ref.name"] === tag)!;
  const manifest = JSON.parse(fs.readFileSync(blobFile(dir, entry.digest), "utf8")) as { config: { digest: string }; layers: Array<{ mediaType: string; digest: string; size: number }> };
  return {
    files: [entry.digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)].map((d) => blobFile(dir, d)),
    memory: manifest.layers.filter((l) => l.mediaType.includes("memory")),
  };
}

/** `dd if=src of=dst bs=4096 count=k conv=fsync`: dd's own elapsed time (open to fsync done). */
function ddPages(src: string, dst: string, k: number): number {
  const r = runTimed("dd", [`if=${src}`, `of=${dst}`, "bs=4096", `count=${k}`, "conv=fsync"]);
  const m = /copied, ([\d.]+) s/.exec(r.stderr);
  return m ? Number(m[1]) * 1000 : r.ms;
}

/**
 * One 1 GiB sandbox: its snapshot saved as the base, then for each k, rounds of restore to
 * the base, k scratch pages written, a snapshot and its timed diff save over the base,
 * alternating with dd of k pages (from a file in the page cache) into the same layout.
 */
async function measureDiffSaves(root: string, progress: (m: string) => void): Promise<DiskRow[]> {
  progress("layers: diff saves over a 1 GiB base");
  const dir = path.join(root, "diff-saves");
  const sb = await snapshotBuilder(GUESTS["1GiB"].heap).build();
  const rows: DiskRow[] = [];
  try {
    const base = sb.snapshot();
    await base.save(dir, "base");
    for (const k of DIFF_PAGES) {
      const src = path.join(root, `dd-source-${k}`);
      fs.writeFileSync(src, Buffer.alloc(k * PAGE, 0x5a));
      const vmletMs: number[] = [], ddMs: number[] = [];
      let lastTag = "";
      for (let i = -1; i < LAYER_PLAN.diffSaveReps; i++) {
        const snap = changedSnapshot(sb, base, k, i + 2);
        lastTag = `k${k}-${i + 1}`;
        const runVmlet = async (): Promise<void> => {
          const t0 = nowNs();
          await snap.save(dir, lastTag, { base: "base" });
          if (i >= 0) vmletMs.push(msSince(t0));
        };
        const runDd = (): void => {
          const ms = ddPages(src, path.join(dir, `dd-${k}-${i + 1}`), k);
          if (i >= 0) ddMs.push(ms);
        };
        await alternately(i, runVmlet, runDd);
      }
      const diff = snapshotBlobs(dir, lastTag).memory.at(-1)!;
      const diskBytes = fs.statSync(blobFile(dir, diff.digest)).blocks * 512;
      const limit = k * PAGE + LAYER_TARGET.diffDiskSlackBytes;
      rows.push(
        row({
          id: `layers/diff-save-k${k}`, label: `save({ base }) k=${k} over 1 GiB`, unit: "ms",
          vmlet: median(vmletMs), ref: median(ddMs), refLabel: `dd ${k} page${k === 1 ? "" : "s"} conv=fsync`,
          target: { op: "≤", value: LAYER_TARGET.diffSave }, samples: { vmlet: vmletMs, ref: ddMs },
          detail: { diffBlobBytes: diff.size, diffPages: (diff.size - PAGE) / PAGE, diskBytes },
        }),
        row({
          id: `layers/diff-disk-k${k}`, label: `  its diff layer on disk, k=${k}`, unit: "KiB",
          vmlet: diskBytes / 1024, ref: limit / 1024, refLabel: "k × 4 KiB + 64 KiB",
          target: { op: "≤", value: 1 }, samples: { vmlet: [diskBytes / 1024], ref: [limit / 1024] },
        }),
      );
    }
  } finally {
    sb.close();
  }
  return rows;
}

/** The sandbox back at `base`, then k scratch pages written with `byte`: a snapshot whose diff over the base is those pages (and the few a call writes). */
function changedSnapshot(sb: Sandbox, base: Snapshot, k: number, byte: number): Snapshot {
  sb.restore(base);
  if (sb.callSync("touch_pages", k, (byte % 255) + 1) !== k) throw new Error(`touch_pages(${k}) failed`);
  return sb.snapshot();
}

/** Tags c1 (full) … c16, each a diff of 16 scratch pages over the one before; get_counter stays 0. */
async function buildChain(root: string, id: "16MiB" | "1GiB"): Promise<string> {
  const dir = path.join(root, `chain-${id}`);
  const sb = await snapshotBuilder(GUESTS[id].heap).build();
  try {
    if (GUESTS[id].fill > 0 && sb.callSync("heap_fill", GUESTS[id].fill, 7) !== true) throw new Error("heap_fill failed");
    await sb.snapshot().save(dir, "c1");
    for (let d = 2; d <= DEPTHS.at(-1)!; d++) {
      sb.callSync("touch_pages", 16, d);
      await sb.snapshot().save(dir, `c${d}`, { base: `c${d - 1}` });
    }
  } finally {
    sb.close();
  }
  return dir;
}

/** load + fromSnapshot + first call of c1, c4 and c16, rotating the order, two warm-up rounds; page cache warm, VMs reused. */
async function measureChainLoad(dir: string, id: "16MiB" | "1GiB", progress: (m: string) => void): Promise<DiskRow[]> {
  progress(`layers: load through chains of 1/4/16 at ${id}`);
  const total: Record<number, number[]> = { 1: [], 4: [], 16: [] };
  const load: Record<number, number[]> = { 1: [], 4: [], 16: [] };
  for (let i = -2; i < LAYER_PLAN.chainLoadReps; i++) {
    for (let j = 0; j < DEPTHS.length; j++) {
      const depth = DEPTHS[(i + 2 + j) % DEPTHS.length]!;
      const t0 = nowNs();
      const snap = await Snapshot.load(dir, `c${depth}`);
      const t1 = nowNs();
      const { called } = await fromSnapshotAndCall(snap, `chain of ${depth}`);
      if (i < 0) continue;
      total[depth]!.push(msSince(t0, called));
      load[depth]!.push(msSince(t0, t1));
    }
  }
  const label = id.replace("MiB", " MiB").replace("GiB", " GiB");
  return [
    row({
      id: `layers/chain-load-${id}-1`, label: `load + fromSnapshot + call, 1 layer, ${label}`, unit: "ms",
      vmlet: median(total[1]!), ref: Number.NaN, refLabel: "(for the ÷ rows)", target: null,
      samples: { vmlet: total[1]!, ref: [] }, detail: { loadMs: median(load[1]!) },
    }),
    ...([4, 16] as const).map((depth) =>
      row({
        id: `layers/chain-load-${id}-${depth}`, label: `  chain of ${depth} ÷ 1 layer, ${label}`, unit: "ms",
        vmlet: median(total[depth]!), ref: median(total[1]!), refLabel: "vmlet, 1 layer",
        target: { op: "≤", value: LAYER_TARGET.chainLoad }, samples: { vmlet: total[depth]!, ref: total[1]! },
        detail: { loadMs: median(load[depth]!), loadMsOneLayer: median(load[1]!) },
      }),
    ),
  ];
}

/** checkedLoad of c16 (16 MiB, heap filled) against sha256sum of the same blobs, page cache warm, alternating. */
async function measureChainChecked(dir: string, progress: (m: string) => void): Promise<DiskRow> {
  progress("layers: checkedLoad of a 16-layer chain");
  const { files, memory } = snapshotBlobs(dir, "c16");
  const vmletMs: number[] = [], refMs: number[] = [];
  for (let i = -1; i < LAYER_PLAN.checkedReps; i++) {
    const runVmlet = async (): Promise<void> => {
      const t0 = nowNs();
      await Snapshot.checkedLoad(dir, "c16");
      if (i >= 0) vmletMs.push(msSince(t0));
    };
    const runRef = (): void => {
      const ms = runTimed("sha256sum", files).ms;
      if (i >= 0) refMs.push(ms);
    };
    await alternately(i, runVmlet, runRef);
  }
  return row({
    id: "layers/checked-load-16MiB-16", label: "checkedLoad(), chain of 16, 16 MiB (heap filled)", unit: "ms",
    vmlet: median(vmletMs), ref: median(refMs), refLabel: `sha256sum of its ${files.length} blobs`,
    target: { op: "≤", value: LAYER_TARGET.checkedLoad }, samples: { vmlet: vmletMs, ref: refMs },
    detail: { memoryLayerBytes: memory.reduce((n, l) => n + l.size, 0) },
  });
}

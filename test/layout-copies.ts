/**
 * Copies of the committed golden layout (test/golden/snapshots) to break, for tests that
 * need no KVM: edits re-hash what they change and re-point the index, so only the edit
 * itself can be what a loader refuses. Also the CLI in a child process.
 */
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { MAX_BYTES } from "../src/snapshot/file/format.js";
import { readBlob, readEntry, readIndex } from "../src/snapshot/file/reader.js";
import { openMemoryLayers } from "../src/snapshot/file/memory-layers.js";
import { Snapshot } from "../src/snapshot/snapshot.js";
import { repoRoot } from "./helpers.js";

export type Obj = Record<string, unknown>;

export const GOLDEN = path.join(repoRoot, "test/golden/snapshots");
/** A tag of the golden layout (2 MiB of guest memory). */
export const TAG = "basic-v1";
export const GOLDEN_MEMORY_SIZE = 2 * 1024 * 1024;

let copies = 0;

/** A writable copy of the golden layout under `root`. */
export function copyGolden(root: string): string {
  const dir = path.join(root, `layout-${copies++}`);
  fs.cpSync(GOLDEN, dir, { recursive: true });
  spawnSync("chmod", ["-R", "u+w", dir]);
  return dir;
}

export const blobFile = (dir: string, digest: string): string => path.join(dir, "blobs/sha256", digest.slice("sha256:".length));
const readJson = (file: string): Obj => JSON.parse(fs.readFileSync(file, "utf8")) as Obj;
export const readIndexJson = (dir: string): Obj => readJson(path.join(dir, "index.json"));
export const writeIndexJson = (dir: string, index: Obj): void => fs.writeFileSync(path.join(dir, "index.json"), JSON.stringify(index));

/** Writes `text` as a blob under its digest; returns its descriptor fields. */
export function putBlob(dir: string, text: string): { digest: string; size: number } {
  const bytes = Buffer.from(text);
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  fs.writeFileSync(blobFile(dir, digest), bytes);
  return { digest, size: bytes.length };
}

function entryIndex(dir: string, tag: string): number {
  const i = (readIndexJson(dir).manifests as Obj[]).findIndex((d) => (d.annotations as Obj | undefined)?.["org.opencontainers.image.ref.name"] === tag);
  if (i < 0) throw new Error(`no tag ${tag}`);
  return i;
}

export const manifestText = (dir: string, tag = TAG): string =>
  fs.readFileSync(blobFile(dir, (readIndexJson(dir).manifests as Obj[])[entryIndex(dir, tag)]!.digest as string), "utf8");

/** Replaces the tag's manifest by `text` (any bytes), re-pointing the index entry at it. */
export function replaceManifest(dir: string, text: string, tag = TAG): void {
  const index = readIndexJson(dir);
  const manifests = index.manifests as Obj[];
  const at = entryIndex(dir, tag);
  manifests[at] = { ...manifests[at], ...putBlob(dir, text) };
  writeIndexJson(dir, index);
}

export const configText = (dir: string, tag = TAG): string =>
  fs.readFileSync(blobFile(dir, ((JSON.parse(manifestText(dir, tag)) as Obj).config as Obj).digest as string), "utf8");

/** Replaces the tag's config blob by `text`, re-pointing its manifest (and the index) at it. */
export function replaceConfig(dir: string, text: string, tag = TAG): void {
  const manifest = JSON.parse(manifestText(dir, tag)) as Obj;
  Object.assign(manifest.config as Obj, putBlob(dir, text));
  replaceManifest(dir, JSON.stringify(manifest), tag);
}

/**
 * Rewrites the tag's memory blob: `edit` changes a copy of its bytes, which is stored under
 * its new digest; the manifest (and the index) are re-pointed at it.
 */
export function editMemory(dir: string, edit: (memory: Buffer) => void, tag = TAG): void {
  const manifest = JSON.parse(manifestText(dir, tag)) as Obj;
  const layer = (manifest.layers as Obj[])[0]!;
  const bytes = fs.readFileSync(blobFile(dir, layer.digest as string));
  edit(bytes);
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  fs.writeFileSync(blobFile(dir, digest), bytes);
  Object.assign(layer, { digest, size: bytes.length });
  replaceManifest(dir, JSON.stringify(manifest), tag);
}

export const CLI = path.join(repoRoot, "dist/src/cli/main.js");

export interface CliResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the built CLI; a hang is killed after `timeoutMs` (signal set) instead of hanging the suite. */
export function vmlet(args: readonly string[], timeoutMs = 30_000): CliResult {
  const start = performance.now();
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: timeoutMs });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - start };
}

/** The `error.code` of a `--json` CLI run that failed. */
export function jsonErrorCode(r: CliResult): string | undefined {
  return ((JSON.parse(r.stdout) as Obj).error as Obj | undefined)?.code as string | undefined;
}

/**
 * The golden snapshot as a Snapshot, read with the loader's own readers but without its
 * CPU check (which needs KVM): enough to exercise save() on a machine without KVM.
 */
export async function goldenSnapshotWithoutKvm(): Promise<Snapshot> {
  const entry = readEntry(GOLDEN, readIndex(GOLDEN), TAG);
  const image = await openMemoryLayers(GOLDEN, entry.memoryLayers, entry.state.layout.memorySize, { verify: () => false });
  const guestElf = readBlob(GOLDEN, entry.guestElf, MAX_BYTES.guestElf);
  return new Snapshot(entry.state, image, { id: entry.state.lineage, guestElf, generation: entry.state.generation });
}

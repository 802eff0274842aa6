/**
 * Hostile diff layers: a layout whose memory chain lies — a diff with no base, a base that
 * is missing or other than the one its manifest names, page indexes that overlap, are
 * unsorted or point past the memory, a cycle, a chain too deep, a diff smuggling foreign
 * supervisor pages. Each is a typed error from load, checkedLoad and verify, never a crash.
 * Needs no backend: diffs are written by hand over copies of the golden layout.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Snapshot, SnapshotLayout, VmletError } from "../src/index.js";
import { encodeDiffPrefix } from "../src/snapshot/file/diff-layer.js";
import { MAX_MEMORY_LAYERS, MEDIA_TYPE } from "../src/snapshot/file/format.js";
import { blobFile, copyGolden, GOLDEN_MEMORY_SIZE, manifestText, replaceManifest, TAG, type Obj } from "./layout-copies.js";

const PAGE = 4096;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-hostile-layers-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** Pages of the golden guest's heap: plain guest data, no supervisor page. */
const HEAP_PAGE = 0x12b;

interface Layer {
  mediaType: string;
  digest: string;
  size: number;
}

function putBytes(dir: string, bytes: Uint8Array): { digest: string; size: number } {
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  fs.writeFileSync(blobFile(dir, digest), bytes);
  return { digest, size: bytes.byteLength };
}

/** A diff layer blob over `base`: `pages` as listed (any order), each filled with `byte(page)` (default: its low byte + 1). */
function diffBytes(base: string, pages: number[], edit?: (prefix: Uint8Array) => void, byte = (p: number): number => (p & 0xff) + 1): Uint8Array {
  const prefix = encodeDiffPrefix({ memorySize: GOLDEN_MEMORY_SIZE, pageCount: pages.length, base }, Uint32Array.from(pages));
  edit?.(prefix);
  const bytes = new Uint8Array(prefix.byteLength + pages.length * PAGE);
  bytes.set(prefix);
  pages.forEach((p, i) => bytes.fill(byte(p), prefix.byteLength + i * PAGE, prefix.byteLength + (i + 1) * PAGE));
  return bytes;
}

const manifest = (dir: string): { layers: Layer[] } & Obj => JSON.parse(manifestText(dir)) as { layers: Layer[] } & Obj;
const memoryOf = (m: { layers: Layer[] }): Layer[] => m.layers.filter((l) => l.mediaType !== MEDIA_TYPE.guestElf);

/** A golden copy whose tag's memory layers become `layers(full)` (the ELF kept last). */
function withLayers(layers: (dir: string, full: Layer) => Layer[]): string {
  const dir = copyGolden(root);
  const m = manifest(dir);
  const full = memoryOf(m)[0]!;
  const elf = m.layers.find((l) => l.mediaType === MEDIA_TYPE.guestElf)!;
  replaceManifest(dir, JSON.stringify({ ...m, layers: [...layers(dir, full), elf] }));
  return dir;
}

const diff = (dir: string, bytes: Uint8Array): Layer => ({ mediaType: MEDIA_TYPE.memoryDiff, ...putBytes(dir, bytes) });

/** load, checkedLoad and verify each fail with `code`, the message matching `mentions`. */
async function refusedEverywhere(dir: string, code: string, mentions: RegExp): Promise<void> {
  for (const load of [() => Snapshot.load(dir, TAG), () => Snapshot.checkedLoad(dir, TAG)]) {
    await assert.rejects(load(), (e: unknown) => {
      assert.ok(e instanceof VmletError, `a VmletError, got ${String(e)}`);
      assert.equal(e.code, code, e.message);
      assert.match(e.message, mentions);
      return true;
    });
  }
  const report = await new SnapshotLayout(dir).verify();
  const problem = report.problems.find((p) => p.ref === TAG);
  assert.ok(problem, `verify reports ${TAG}: ${JSON.stringify(report.problems.map((p) => p.error.message))}`);
  assert.equal(problem.error.code, code, problem.error.message);
  assert.match(problem.error.message, mentions);
}

describe("a well-formed hand-written chain loads (the cases below fail only because of their edit)", () => {
  test("two diffs over the golden memory: the top one wins, zero pages included", async () => {
    const dir = withLayers((d, full) => {
      const one = diff(d, diffBytes(full.digest, [HEAP_PAGE, HEAP_PAGE + 1]));
      const two = diff(d, diffBytes(one.digest, [HEAP_PAGE + 1], undefined, () => 0)); // a page put back to zero
      return [full, one, two];
    });
    for (const snap of [await Snapshot.load(dir, TAG), await Snapshot.checkedLoad(dir, TAG)]) {
      assert.deepEqual([...snap.image.read(HEAP_PAGE * PAGE, 8)], new Array(8).fill((HEAP_PAGE & 0xff) + 1));
      assert.deepEqual([...snap.image.read((HEAP_PAGE + 1) * PAGE, 8)], new Array(8).fill(0));
    }
    assert.ok((await new SnapshotLayout(dir).verify()).ok);
  });
});

describe("hostile chains: typed errors from load, checkedLoad and verify", () => {
  test("a diff with no base below it", async () => {
    const dir = withLayers((d, full) => [diff(d, diffBytes(full.digest, [HEAP_PAGE]))]);
    await refusedEverywhere(dir, "SNAPSHOT_INVALID", /has no base: the bottom memory layer must be a full/);
  });

  test("a diff whose base blob is missing from the layout", async () => {
    const dir = withLayers((d, full) => [full, diff(d, diffBytes(full.digest, [HEAP_PAGE]))]);
    fs.rmSync(blobFile(dir, memoryOf(manifest(dir))[0]!.digest));
    await refusedEverywhere(dir, "SNAPSHOT_INVALID", /is missing/);
  });

  test("a diff over another base than the one its manifest places it on", async () => {
    const other = `sha256:${"ab".repeat(32)}`;
    const dir = withLayers((d, full) => [full, diff(d, diffBytes(other, [HEAP_PAGE]))]);
    await refusedEverywhere(dir, "SNAPSHOT_INVALID", /is a diff over sha256:abab.* but its manifest places it over/);
  });

  test("two diffs in the wrong order (each over the other's base)", async () => {
    const dir = withLayers((d, full) => {
      const one = diff(d, diffBytes(full.digest, [HEAP_PAGE]));
      const two = diff(d, diffBytes(one.digest, [HEAP_PAGE + 1]));
      return [full, two, one];
    });
    await refusedEverywhere(dir, "SNAPSHOT_INVALID", /but its manifest places it over/);
  });

  test("overlapping page index entries", async () => {
    const dir = withLayers((d, full) => [full, diff(d, diffBytes(full.digest, [HEAP_PAGE, HEAP_PAGE]))]);
    await refusedEverywhere(dir, "SNAPSHOT_INVALID", /entries 0 and 1 overlap/);
  });

  test("an unsorted page index", async () => {
    const dir = withLayers((d, full) => [full, diff(d, diffBytes(full.digest, [HEAP_PAGE + 1, HEAP_PAGE]))]);
    await refusedEverywhere(dir, "SNAPSHOT_INVALID", /page index is unsorted/);
  });

  test("a page index pointing past the end of memory", async () => {
    const dir = withLayers((d, full) => [full, diff(d, diffBytes(full.digest, [HEAP_PAGE, GOLDEN_MEMORY_SIZE / PAGE]))]);
    await refusedEverywhere(dir, "SNAPSHOT_INVALID", /past the end of guest memory/);
  });

  test("more pages than memory holds, claimed in the header", async () => {
    const dir = withLayers((d, full) => [full, diff(d, diffBytes(full.digest, [HEAP_PAGE], (p) => new DataView(p.buffer).setBigUint64(24, 2n ** 40n, true)))]);
    await refusedEverywhere(dir, "SNAPSHOT_INVALID", /says it holds 1099511627776 pages/);
  });

  test("a diff for another memory size", async () => {
    const dir = withLayers((d, full) => [full, diff(d, diffBytes(full.digest, [HEAP_PAGE], (p) => new DataView(p.buffer).setBigUint64(16, BigInt(2 * GOLDEN_MEMORY_SIZE), true)))]);
    await refusedEverywhere(dir, "SNAPSHOT_INVALID", /is for 4194304 bytes of guest memory/);
  });

  test("a diff cut short (its descriptor says so too)", async () => {
    const dir = withLayers((d, full) => [full, diff(d, diffBytes(full.digest, [HEAP_PAGE, HEAP_PAGE + 1]).subarray(0, 2 * PAGE))]);
    await refusedEverywhere(dir, "SNAPSHOT_INVALID", /a diff layer of 2 pages is 12288 bytes; its descriptor says 8192/);
  });

  test("a diff layer of a later version: SNAPSHOT_INCOMPATIBLE", async () => {
    const dir = withLayers((d, full) => [full, diff(d, diffBytes(full.digest, [HEAP_PAGE], (p) => new DataView(p.buffer).setUint32(8, 2, true)))]);
    await refusedEverywhere(dir, "SNAPSHOT_INCOMPATIBLE", /diff layer version 2 is not supported/);
  });

  test("a cycle: the same diff twice in one chain", async () => {
    const dir = withLayers((d, full) => {
      const one = diff(d, diffBytes(full.digest, [HEAP_PAGE]));
      return [full, one, one];
    });
    await refusedEverywhere(dir, "SNAPSHOT_INVALID", /twice: a cycle/);
  });

  test(`a chain deeper than ${MAX_MEMORY_LAYERS} layers, refused before any diff is read`, async () => {
    const dir = withLayers((d, full) => {
      const chain = [full];
      for (let i = 0; i < MAX_MEMORY_LAYERS; i++) chain.push(diff(d, diffBytes(chain.at(-1)!.digest, [HEAP_PAGE])));
      return chain;
    });
    await refusedEverywhere(dir, "SNAPSHOT_INVALID", new RegExp(`a chain of ${MAX_MEMORY_LAYERS + 1} memory layers is deeper than the limit of ${MAX_MEMORY_LAYERS}`));
  });

  test("a second full layer over the first", async () => {
    const dir = withLayers((_d, full) => [full, { ...full, digest: `sha256:${"cd".repeat(32)}` }]);
    await refusedEverywhere(dir, "SNAPSHOT_INVALID", /only the bottom memory layer may be a full one/);
  });

  test("a diff that rewrites a supervisor page (the IDT)", async () => {
    const dir = withLayers((d, full) => [full, diff(d, diffBytes(full.digest, [2]))]);
    await refusedEverywhere(dir, "SNAPSHOT_INVALID", /supervisor page 0x2000 \(idt\) is not what vmlet builds/);
  });

  test("a diff whose bytes do not match its digest: checkedLoad and verify refuse it, load (which trusts the disk) does not", async () => {
    const dir = withLayers((d, full) => [full, diff(d, diffBytes(full.digest, [HEAP_PAGE]))]);
    const top = memoryOf(manifest(dir))[1]!;
    const file = blobFile(dir, top.digest);
    const bytes = fs.readFileSync(file);
    bytes.writeUInt8(bytes.readUInt8(bytes.byteLength - 1) ^ 0xff, bytes.byteLength - 1);
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, bytes);
    await Snapshot.load(dir, TAG);
    await assert.rejects(Snapshot.checkedLoad(dir, TAG), (e: unknown) => (e as VmletError).code === "SNAPSHOT_DIGEST_MISMATCH");
    const report = await new SnapshotLayout(dir).verify();
    assert.deepEqual(report.problems.map((p) => [p.ref, p.error.code]), [[TAG, "SNAPSHOT_DIGEST_MISMATCH"]]);
  });
});

/**
 * Diff layers (issue 15 part 1): save({ base }) writes only the pages changed since the
 * base as one more layer over the base's layers; load places the layers bottom-up; chains,
 * shared bases, squash, gc, the CLI's --base, and the refusals of a base that is not an
 * ancestor or a chain too deep.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Sandbox, SandboxBuilder, SandboxPool, Snapshot, SnapshotLayout } from "../src/index.js";
import { MAX_MEMORY_LAYERS, MEDIA_TYPE } from "../src/snapshot/file/format.js";
import { MAX_HISTORY_DEPTH, PageHistory } from "../src/snapshot/page-history.js";
import { guestPath, rejectsWith } from "./helpers.js";
import { blobFile, readIndexJson, vmlet } from "./layout-copies.js";

type Obj = Record<string, unknown>;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-layers-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (name: string): string => path.join(root, `${name}-${n++}`);

/** The snapshot guest with a 1 MiB heap (no host functions, so the CLI can run it too). */
const build = (): Promise<Sandbox> => new SandboxBuilder().guest(guestPath("snapshot")).heapSize(1 << 20).build();

function manifestOf(dir: string, tag: string): { layers: Array<{ mediaType: string; digest: string; size: number }> } {
  const entry = (readIndexJson(dir).manifests as Obj[]).find((d) => (d.annotations as Obj | undefined)?.["org.opencontainers.image.ref.name"] === tag)!;
  return JSON.parse(fs.readFileSync(blobFile(dir, entry.digest as string), "utf8")) as ReturnType<typeof manifestOf>;
}
const memoryLayers = (dir: string, tag: string): Array<{ mediaType: string; digest: string; size: number }> =>
  manifestOf(dir, tag).layers.filter((l) => l.mediaType !== MEDIA_TYPE.guestElf);

/** counter, heap pattern and scratch sum of a sandbox made from the snapshot at dir:ref, loaded both ways. */
async function stateAt(dir: string, ref: string): Promise<[number, boolean, number]> {
  const states: Array<[number, boolean, number]> = [];
  for (const snap of [await Snapshot.load(dir, ref), await Snapshot.checkedLoad(dir, ref)]) {
    const sb = await Sandbox.fromSnapshot(snap);
    try {
      states.push([sb.callSync("get_counter") as number, sb.callSync("heap_check", 7) as boolean, sb.callSync("scratch_sum") as number]);
    } finally {
      sb.close();
    }
  }
  assert.deepEqual(states[0], states[1], "load and checkedLoad agree");
  return states[0]!;
}

describe("a chain of diff layers", () => {
  let dir: string;
  const digests: string[] = [];

  before(async () => {
    dir = fresh("chain");
    const sb = await build();
    try {
      sb.callSync("bump");
      assert.equal(sb.callSync("heap_fill", 20000, 7), true);
      digests.push(await sb.snapshot().save(dir, "g1"));
      sb.callSync("bump");
      sb.callSync("touch_pages", 16, 3);
      digests.push(await sb.snapshot().save(dir, "g2", { base: "g1" }));
      sb.callSync("bump");
      sb.callSync("touch_pages", 4, 0); // four pages back to zero: the diff holds them as zero pages
      digests.push(await sb.snapshot().save(dir, "g3", { base: "g2" }));
    } finally {
      sb.close();
    }
  });

  test("each generation is one more layer over the previous one's, the base's layers shared, not copied", () => {
    const [g1, g2, g3] = ["g1", "g2", "g3"].map((t) => memoryLayers(dir, t));
    assert.deepEqual(g1!.map((l) => l.mediaType), [MEDIA_TYPE.memory]);
    assert.deepEqual(g2!.map((l) => l.mediaType), [MEDIA_TYPE.memory, MEDIA_TYPE.memoryDiff]);
    assert.deepEqual(g3!.slice(0, 2), g2, "g3 lies over g2's layers");
    assert.deepEqual(g2!.slice(0, 1), g1);
    const blobs = fs.readdirSync(path.join(dir, "blobs/sha256"));
    assert.equal(blobs.length, 3 * 2 + 3 + 1, "3 manifests and configs, 3 memory layers, 1 guest ELF");
  });

  test("a diff layer holds the changed pages only: at most k × 4 KiB + 64 KiB", () => {
    for (const tag of ["g2", "g3"]) {
      const diff = memoryLayers(dir, tag).at(-1)!;
      assert.ok(diff.size <= 64 * 4096 + 64 * 1024, `${tag}'s diff is ${diff.size} bytes`);
      assert.ok(fs.statSync(blobFile(dir, diff.digest)).blocks * 512 <= 64 * 4096 + 64 * 1024);
    }
  });

  test("load and checkedLoad place the layers bottom-up: each generation's own state", async () => {
    assert.deepEqual(await stateAt(dir, "g1"), [1, true, 0]);
    assert.deepEqual(await stateAt(dir, "g2"), [2, true, 16 * 3]);
    assert.deepEqual(await stateAt(dir, "g3"), [3, true, 12 * 3]);
    assert.deepEqual(await stateAt(dir, digests[2]!), [3, true, 12 * 3]);
  });

  test("verify hashes every layer once and finds nothing wrong", async () => {
    const report = await new SnapshotLayout(dir).verify();
    assert.ok(report.ok, JSON.stringify(report.problems.map((p) => p.error.message)));
    assert.equal(report.blobsVerified, 3 * 2 + 3 + 1);
  });

  test("inspect and ls show the chain with each layer's size", () => {
    const i = new SnapshotLayout(dir).inspect("g3");
    assert.deepEqual(i.memoryLayers.map((l) => [l.kind, l.descriptor.digest]), memoryLayers(dir, "g3").map((l, k) => [k === 0 ? "full" : "diff", l.digest]));
    assert.ok(i.memoryLayers[1]!.pages! >= 16 && i.memoryLayers[1]!.pages! < 64, `g2's diff holds ${i.memoryLayers[1]!.pages} pages`);
    assert.deepEqual(new SnapshotLayout(dir).list().map((l) => [l.tag, l.memoryLayers]), [["g1", 1], ["g2", 2], ["g3", 3]]);
  });
});

test("a diff over a loaded snapshot (another process's save): only what the sandbox changed", async () => {
  const dir = fresh("loaded");
  const sb = await build();
  sb.callSync("bump");
  await sb.snapshot().save(dir, "base");
  sb.close();
  const base = await Snapshot.load(dir, "base");
  const child = await Sandbox.fromSnapshot(base);
  try {
    child.callSync("touch_pages", 8, 5);
    const snap = child.snapshot();
    await snap.save(dir, "next", { base: "base" });
    assert.equal(memoryLayers(dir, "next").length, 2);
    assert.deepEqual(await stateAt(dir, "next"), [1, false, 40]);
    // Saved over itself, no layer is added: the same manifest.
    const digest = await snap.save(dir, "self", { base: "next" });
    assert.deepEqual(memoryLayers(dir, "self"), memoryLayers(dir, "next"));
    assert.equal(digest, (readIndexJson(dir).manifests as Obj[]).find((d) => (d.annotations as Obj)["org.opencontainers.image.ref.name"] === "next")!.digest);
  } finally {
    child.close();
  }
});

test("diff: true saves what changed since the snapshot a sandbox or pool came from, with no base named; a full layer where the layout holds none", async () => {
  const dir = fresh("auto");
  const sb = await build();
  sb.callSync("bump");
  await sb.snapshot().save(dir, "v1");
  sb.close();
  const v1 = await Snapshot.load(dir, "v1");
  const child = await Sandbox.fromSnapshot(v1);
  try {
    child.callSync("touch_pages", 8, 5);
    await child.snapshot().save(dir, "v2", { diff: true });
    assert.equal(memoryLayers(dir, "v2").length, 2, "one diff over v1's layer");
    assert.deepEqual(memoryLayers(dir, "v2")[0], memoryLayers(dir, "v1")[0]);
    child.callSync("bump");
    await child.snapshot().save(dir, "v3", { diff: true });
    assert.equal(memoryLayers(dir, "v3").length, 3, "the nearest ancestor is v2, saved by this sandbox");
    assert.deepEqual(await stateAt(dir, "v3"), [2, false, 40]);
    const elsewhere = fresh("auto-elsewhere");
    await child.snapshot().save(elsewhere, "v3", { diff: true });
    assert.equal(memoryLayers(elsewhere, "v3").length, 1, "a layout without an ancestor gets a full layer");
  } finally {
    child.close();
  }
  const pool = new SandboxPool(v1, { size: 1 });
  try {
    await pool.run(async (pooled) => {
      pooled.callSync("touch_pages", 2, 9);
      await pooled.snapshot().save(dir, "from-pool", { diff: true });
    });
    assert.equal(memoryLayers(dir, "from-pool").length, 2);
    assert.deepEqual(memoryLayers(dir, "from-pool")[0], memoryLayers(dir, "v1")[0]);
  } finally {
    await pool.close();
  }
  await rejectsWith(v1.save(dir, "both", { base: "v1", diff: true }), "INVALID_CONFIG", /base or diff/);
  await rejectsWith(v1.save(dir, "bad", { diff: "yes" as unknown as boolean }), "INVALID_CONFIG", /diff/);
});

describe("refusals", () => {
  test("a base that is not an ancestor, of another guest build, or missing: typed errors, nothing written", async () => {
    const dir = fresh("refuse");
    const a = await build();
    const b = await build();
    try {
      a.callSync("bump");
      await a.snapshot().save(dir, "a1");
      b.callSync("touch_pages", 2, 1);
      await b.snapshot().save(dir, "b1");
      a.callSync("bump");
      const a2 = a.snapshot();
      const before = fs.readdirSync(path.join(dir, "blobs/sha256")).sort();
      await rejectsWith(a2.save(dir, "x", { base: "b1" }), "SNAPSHOT_MISMATCH", /another guest build/);
      await rejectsWith(a2.save(dir, "x", { base: "nope" }), "SNAPSHOT_NOT_FOUND");
      await rejectsWith(a2.save(dir, "x", { base: "not a tag!" }), "INVALID_CONFIG");
      assert.deepEqual(fs.readdirSync(path.join(dir, "blobs/sha256")).sort(), before);
      // Same lineage, not an ancestor: a sibling made from a1 by another sandbox.
      const sibling = await Sandbox.fromSnapshot(await Snapshot.load(dir, "a1"));
      try {
        sibling.callSync("touch_pages", 3, 9);
        await sibling.snapshot().save(dir, "s1", { base: "a1" });
        await rejectsWith(a2.save(dir, "x", { base: "s1" }), "SNAPSHOT_MISMATCH", /does not descend from that base/);
      } finally {
        sibling.close();
      }
      assert.equal(new SnapshotLayout(dir).list().some((l) => l.tag === "x"), false);
    } finally {
      a.close();
      b.close();
    }
  });

  test(`a chain may hold ${MAX_MEMORY_LAYERS} memory layers; one more is INVALID_CONFIG until squashed`, async () => {
    const dir = fresh("deep");
    const sb = await build();
    try {
      await sb.snapshot().save(dir, "l1");
      for (let i = 2; i <= MAX_MEMORY_LAYERS; i++) {
        sb.callSync("bump");
        await sb.snapshot().save(dir, `l${i}`, { base: `l${i - 1}` });
      }
      assert.equal(memoryLayers(dir, `l${MAX_MEMORY_LAYERS}`).length, MAX_MEMORY_LAYERS);
      assert.deepEqual(await stateAt(dir, `l${MAX_MEMORY_LAYERS}`), [MAX_MEMORY_LAYERS - 1, false, 0]);
      sb.callSync("bump");
      const next = sb.snapshot();
      await rejectsWith(next.save(dir, "over", { base: `l${MAX_MEMORY_LAYERS}` }), "INVALID_CONFIG", /squash/);
      await new SnapshotLayout(dir).squash(`l${MAX_MEMORY_LAYERS}`, "flat");
      const child = await Sandbox.fromSnapshot(await Snapshot.load(dir, "flat"));
      try {
        child.callSync("bump");
        await child.snapshot().save(dir, "over", { base: "flat" });
      } finally {
        child.close();
      }
      assert.equal(memoryLayers(dir, "over").length, 2);
      assert.deepEqual(await stateAt(dir, "over"), [MAX_MEMORY_LAYERS, false, 0]);
    } finally {
      sb.close();
    }
  });
});

describe("squash and gc", () => {
  test("two tags over one base store it once; squash merges a chain; gc keeps every layer a tag needs", async () => {
    const dir = fresh("share");
    const sb = await build();
    try {
      assert.equal(sb.callSync("heap_fill", 100000, 7), true);
      const base = sb.snapshot();
      await base.save(dir, "base");
      sb.callSync("touch_pages", 5, 2);
      await sb.snapshot().save(dir, "left", { base: "base" });
      sb.restore(base);
      sb.callSync("bump");
      await sb.snapshot().save(dir, "right", { base: "base" });
    } finally {
      sb.close();
    }
    const full = memoryLayers(dir, "base")[0]!;
    assert.equal(memoryLayers(dir, "left")[0]!.digest, full.digest);
    assert.equal(memoryLayers(dir, "right")[0]!.digest, full.digest);
    assert.deepEqual(await stateAt(dir, "left"), [0, true, 10]);
    assert.deepEqual(await stateAt(dir, "right"), [1, true, 0]);

    const layout = new SnapshotLayout(dir);
    const digest = await layout.squash("left", "left-flat");
    assert.deepEqual(memoryLayers(dir, "left-flat").map((l) => l.mediaType), [MEDIA_TYPE.memory]);
    assert.deepEqual(await stateAt(dir, "left-flat"), [0, true, 10]);
    assert.equal(await layout.squash("left", "left-flat"), digest, "squashing again makes the same manifest");

    // Removing the base's own tag frees nothing: both diffs need its full layer.
    assert.equal(await layout.remove("base"), true);
    assert.deepEqual((await layout.gc()).removedBlobs.filter((b) => b === full.digest), []);
    assert.ok(fs.existsSync(blobFile(dir, full.digest)));
    assert.deepEqual(await stateAt(dir, "right"), [1, true, 0]);
    await layout.remove("left");
    await layout.remove("right");
    const gc = await layout.gc();
    assert.ok(gc.removedBlobs.includes(full.digest), "no tag needs the base any more");
    assert.deepEqual(await stateAt(dir, "left-flat"), [0, true, 10]);
    assert.ok((await layout.verify()).ok);
  });
});

test("vmlet snapshot create --base, inspect, ls and squash", async () => {
  const dir = fresh("cli");
  const elf = guestPath("snapshot");
  const run = (...args: string[]): ReturnType<typeof vmlet> => {
    const r = vmlet(args);
    assert.equal(r.status, 0, `${args.join(" ")}: ${r.stderr}${r.stdout}`);
    return r;
  };
  run("snapshot", "create", elf, dir, "one", "--call", "bump");
  const created = JSON.parse(run("snapshot", "create", elf, dir, "two", "--base", "one", "--call", "touch_pages", "4", "6", "--json").stdout) as Obj;
  assert.equal(created.base, "one");
  assert.equal(memoryLayers(dir, "two").length, 2);
  assert.deepEqual(await stateAt(dir, "two"), [1, false, 24]);
  const inspect = JSON.parse(run("snapshot", "inspect", dir, "two", "--json").stdout) as { memoryLayers: Array<{ kind: string; pages: number | null; size: number }> };
  assert.deepEqual(inspect.memoryLayers.map((l) => l.kind), ["full", "diff"]);
  assert.ok(inspect.memoryLayers[1]!.pages! >= 4);
  assert.match(run("snapshot", "inspect", dir, "two").stdout, /memory layers \(2, bottom first\)\n.*\n\s+0\s+full\s+-.*\n\s+1\s+diff\s+\d+/);
  assert.match(run("snapshot", "ls", dir).stdout, /^two\s+sha256:\S+\s+2\s/m);
  assert.match(run("snapshot", "squash", dir, "two", "flat").stdout, /^sha256:[a-f0-9]{64}\n$/);
  assert.equal(memoryLayers(dir, "flat").length, 1);
  assert.deepEqual(await stateAt(dir, "flat"), [1, false, 24]);
  const bad = vmlet(["snapshot", "create", elf, dir, "three", "--base", "one", "--heap-size", "2M"]);
  assert.equal(bad.status, 2, bad.stderr);
});

describe("PageHistory: the record a diff save reads", () => {
  test("the union of the pages changed back to the ancestor saved as a digest; undefined for a stranger", () => {
    const root = PageHistory.root();
    root.savedAs.add("sha256:a");
    const one = PageHistory.over(root, [5, 3, 5], 1024);
    const two = PageHistory.over(one, [7, 3], 1024);
    assert.deepEqual([...one.changed], [3, 5], "sorted, each page once");
    assert.deepEqual([...two.changedSince("sha256:a")!], [3, 5, 7]);
    one.savedAs.add("sha256:b");
    assert.deepEqual([...two.changedSince("sha256:b")!], [3, 7]);
    assert.deepEqual([...root.changedSince("sha256:a")!], [], "itself: nothing changed");
    assert.equal(two.changedSince("sha256:other"), undefined);
  });

  test(`at most ${MAX_HISTORY_DEPTH} ancestors, and no more page numbers than memory has pages`, () => {
    const root = PageHistory.root();
    root.savedAs.add("sha256:root");
    let at = root;
    for (let i = 0; i < MAX_HISTORY_DEPTH - 2; i++) at = PageHistory.over(at, [i], 1 << 20);
    assert.ok(at.changedSince("sha256:root"), "within the limit");
    for (let i = 0; i < 2; i++) at = PageHistory.over(at, [i], 1 << 20);
    assert.equal(at.changedSince("sha256:root"), undefined, "forgotten beyond the limit");
    const big = PageHistory.root();
    big.savedAs.add("sha256:big");
    const child = PageHistory.over(PageHistory.over(big, [0, 1, 2], 4), [3, 2], 4);
    assert.equal(child.changedSince("sha256:big"), undefined, "5 page numbers remembered for 4 pages of memory: cut");
  });
});

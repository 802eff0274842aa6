/**
 * A layout whose files and directories are hostile: symlinked `blobs` or `blobs/sha256`,
 * symlinks and directories among the blobs and temps, FIFOs where vmlet opens a file.
 * Nothing outside the layout may be read, written or deleted, and nothing may block: each
 * case ends in a typed error or is skipped. Needs no KVM (copies of the golden layout).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Snapshot, SnapshotLayout, VmletError } from "../src/index.js";
import { LayoutDir } from "../src/snapshot/file/layout-dir.js";
import { copyGolden, GOLDEN, goldenSnapshotWithoutKvm, jsonErrorCode, readIndexJson, TAG, vmlet, writeIndexJson } from "./layout-copies.js";
import { rejectsWith, repoRoot } from "./helpers.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-hostile-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (name: string): string => path.join(root, `${name}-${n++}`);

/** A directory outside the layout holding one file, to see whether anything touches it. */
function victim(): { dir: string; file: string } {
  const dir = fresh("victim");
  fs.mkdirSync(dir);
  const file = path.join(dir, "a".repeat(64));
  fs.writeFileSync(file, "precious");
  return { dir, file };
}

/** A golden copy whose index references nothing: gc then wants to delete every blob it finds. */
function emptiedLayout(): string {
  const dir = copyGolden(root);
  writeIndexJson(dir, { ...readIndexJson(dir), manifests: [] });
  return dir;
}

describe("gc deletes nothing outside the layout", () => {
  test("blobs/sha256 a symlink to another directory: refused, that directory untouched", async () => {
    const dir = emptiedLayout();
    const outside = victim();
    fs.rmSync(path.join(dir, "blobs/sha256"), { recursive: true });
    fs.symlinkSync(outside.dir, path.join(dir, "blobs/sha256"));
    await rejectsWith(new SnapshotLayout(dir).gc(), "SNAPSHOT_INVALID", /blobs\/sha256: is not a directory/);
    assert.equal(fs.readFileSync(outside.file, "utf8"), "precious");
  });

  test("blobs a symlink to another directory: refused, that directory untouched", async () => {
    const dir = emptiedLayout();
    const outside = victim();
    fs.mkdirSync(path.join(outside.dir, "sha256"));
    const nested = path.join(outside.dir, "sha256", "b".repeat(64));
    fs.writeFileSync(nested, "precious");
    fs.rmSync(path.join(dir, "blobs"), { recursive: true });
    fs.symlinkSync(outside.dir, path.join(dir, "blobs"));
    await rejectsWith(new SnapshotLayout(dir).gc(), "SNAPSHOT_INVALID", /blobs: is not a directory/);
    assert.equal(fs.readFileSync(nested, "utf8"), "precious");
  });

  test("a symlink, a directory and a FIFO among unreferenced blobs are left in place and reported; regular files go", async () => {
    const dir = emptiedLayout();
    const outside = victim();
    const blobs = path.join(dir, "blobs/sha256");
    fs.symlinkSync(outside.file, path.join(blobs, "c".repeat(64)));
    fs.mkdirSync(path.join(blobs, "d".repeat(64)));
    fs.writeFileSync(path.join(blobs, "d".repeat(64), "inner"), "kept");
    assert.equal(spawnSync("mkfifo", [path.join(blobs, "e".repeat(64))]).status, 0);
    const report = await new SnapshotLayout(dir).gc();
    assert.deepEqual([...report.skipped].sort(), ["c", "d", "e"].map((h) => `blobs/sha256/${h.repeat(64)}`));
    assert.equal(report.removedBlobs.length, fs.readdirSync(path.join(GOLDEN, "blobs/sha256")).length, "every golden blob was unreferenced");
    assert.equal(fs.readFileSync(outside.file, "utf8"), "precious");
    assert.ok(fs.lstatSync(path.join(blobs, "c".repeat(64))).isSymbolicLink());
    assert.equal(fs.readFileSync(path.join(blobs, "d".repeat(64), "inner"), "utf8"), "kept");
  });

  test("a directory or symlink named like a temp file is left alone, not a raw error", async () => {
    const dir = copyGolden(root);
    const outside = victim();
    fs.mkdirSync(path.join(dir, ".tmp-dir"));
    fs.symlinkSync(outside.file, path.join(dir, ".tmp-link"));
    fs.writeFileSync(path.join(dir, ".tmp-stale"), "left by a crashed writer");
    const report = await new SnapshotLayout(dir).gc();
    assert.equal(report.removedTempFiles, 1);
    assert.ok(fs.existsSync(path.join(dir, ".tmp-dir")));
    assert.equal(fs.readFileSync(outside.file, "utf8"), "precious");
  });
});

describe("reads and writes stay inside the layout", () => {
  test("load and verify refuse a symlinked blobs/sha256 whose target holds the right blobs", async () => {
    const dir = copyGolden(root);
    const moved = fresh("moved-blobs");
    fs.renameSync(path.join(dir, "blobs/sha256"), moved);
    fs.symlinkSync(moved, path.join(dir, "blobs/sha256"));
    await rejectsWith(Snapshot.load(dir, TAG), "SNAPSHOT_INVALID", /blobs\/sha256: is not a directory/);
    const report = await new SnapshotLayout(dir).verify();
    assert.equal(report.ok, false);
    assert.ok(report.problems.every((p) => p.error.code === "SNAPSHOT_INVALID"));
  });

  test("save refuses a symlinked blobs/sha256 and writes nothing through it", async () => {
    const snap = await goldenSnapshotWithoutKvm();
    const dir = fresh("save");
    const outside = victim();
    fs.mkdirSync(path.join(dir, "blobs"), { recursive: true });
    fs.symlinkSync(outside.dir, path.join(dir, "blobs/sha256"));
    await rejectsWith(snap.save(dir, "t"), "SNAPSHOT_INVALID", /blobs\/sha256: is not a directory/);
    assert.deepEqual(fs.readdirSync(outside.dir), ["a".repeat(64)]);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith(".tmp-")), [], "no temp left behind");
  });

  test("save into a fresh directory still works (and a second save of the same snapshot writes no blob)", async () => {
    const snap = await goldenSnapshotWithoutKvm();
    const dir = fresh("save-ok");
    const digest = await snap.save(dir, "t");
    const blobs = fs.readdirSync(path.join(dir, "blobs/sha256")).sort();
    assert.equal(blobs.length, 4);
    assert.equal(await snap.save(dir, "u"), digest);
    assert.deepEqual(fs.readdirSync(path.join(dir, "blobs/sha256")).sort(), blobs);
    assert.equal((await new SnapshotLayout(dir).verify()).ok, true);
  });
});

describe("a directory swapped for a symlink after it was opened cannot redirect anything", () => {
  /** blobs/sha256 held open, then renamed away and replaced by a symlink to a victim directory holding a same-named file. */
  function swapped(): { held: LayoutDir; rootDir: LayoutDir; moved: string; outside: { dir: string; file: string }; name: string } {
    const dir = fresh("swap");
    const name = "a".repeat(64);
    fs.mkdirSync(path.join(dir, "blobs/sha256"), { recursive: true });
    fs.writeFileSync(path.join(dir, "blobs/sha256", name), "inside");
    const rootDir = LayoutDir.open(dir);
    const blobs = rootDir.openDir("blobs");
    const held = blobs.openDir("sha256");
    blobs.close();
    const moved = fresh("moved");
    fs.renameSync(path.join(dir, "blobs/sha256"), moved);
    const outside = victim();
    fs.symlinkSync(outside.dir, path.join(dir, "blobs/sha256"));
    return { held, rootDir, moved, outside, name };
  }

  test("an unlink lands in the directory that was opened, not in the symlink's target", () => {
    const { held, rootDir, moved, outside, name } = swapped();
    try {
      assert.ok(held.unlinkRegularFile(name));
      assert.equal(fs.existsSync(path.join(moved, name)), false);
      assert.equal(fs.readFileSync(outside.file, "utf8"), "precious");
    } finally {
      held.close();
      rootDir.close();
    }
  });

  test("an open reads the directory that was opened; opening the path anew refuses the symlink", () => {
    const { held, rootDir, name } = swapped();
    try {
      const { fd } = held.openRegularFile(name, fs.constants.O_RDONLY);
      try {
        assert.equal(fs.readFileSync(fd, "utf8"), "inside");
      } finally {
        fs.closeSync(fd);
      }
      assert.throws(() => rootDir.openDir("blobs").openDir("sha256"), (e: unknown) => e instanceof VmletError && e.code === "SNAPSHOT_INVALID");
    } finally {
      held.close();
      rootDir.close();
    }
  });
});

describe("FIFOs never block (each case in a child process, killed if it hangs)", () => {
  const HANG_MS = 15_000;

  /** Runs an ES module snippet in a child with `dir` as its argument; prints the error code it gets. */
  function child(script: string, dir: string): { code: string; ms: number; signal: NodeJS.Signals | null } {
    const wrapped = `
      import * as vmlet from ${JSON.stringify(path.join(repoRoot, "dist/src/index.js"))};
      import * as copies from ${JSON.stringify(path.join(repoRoot, "dist/test/layout-copies.js"))};
      const dir = process.argv[1];
      try { ${script}; console.log("OK"); } catch (e) { console.log(e.code ?? String(e)); }`;
    const start = performance.now();
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", wrapped, dir], { encoding: "utf8", timeout: HANG_MS });
    return { code: r.stdout.trim(), ms: performance.now() - start, signal: r.signal };
  }

  function withFifo(at: string): string {
    const dir = copyGolden(root);
    fs.rmSync(path.join(dir, at), { force: true });
    assert.equal(spawnSync("mkfifo", [path.join(dir, at)]).status, 0);
    return dir;
  }

  for (const [what, script] of [
    ["gc", "await new vmlet.SnapshotLayout(dir).gc()"],
    ["remove", `await new vmlet.SnapshotLayout(dir).remove(${JSON.stringify(TAG)})`],
    ["save", "await (await copies.goldenSnapshotWithoutKvm()).save(dir, 'again')"],
  ] as const) {
    test(`${what} with a FIFO at .vmlet.lock: SNAPSHOT_INVALID at once`, () => {
      const r = child(script, withFifo(".vmlet.lock"));
      assert.equal(r.signal, null, `${what} hung on the FIFO (killed after ${HANG_MS} ms)`);
      assert.equal(r.code, "SNAPSHOT_INVALID");
    });
  }

  test("vmlet snapshot gc with a FIFO at .vmlet.lock exits 1 with SNAPSHOT_INVALID", () => {
    const r = vmlet(["snapshot", "gc", withFifo(".vmlet.lock"), "--json"], HANG_MS);
    assert.equal(r.signal, null, "the CLI hung on the FIFO");
    assert.equal(r.status, 1, r.stderr);
    assert.equal(jsonErrorCode(r), "SNAPSHOT_INVALID");
  });

  for (const at of ["index.json", "oci-layout"]) {
    test(`load and verify with a FIFO at ${at}: SNAPSHOT_INVALID at once`, () => {
      const dir = withFifo(at);
      assert.deepEqual(
        [child(`await vmlet.Snapshot.load(dir, ${JSON.stringify(TAG)})`, dir), child("const r = await new vmlet.SnapshotLayout(dir).verify(); throw r.problems[0].error", dir)].map((r) => [r.signal, r.code]),
        [[null, "SNAPSHOT_INVALID"], [null, "SNAPSHOT_INVALID"]],
      );
    });
  }
});

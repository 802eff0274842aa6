/**
 * Snapshots on disk: save → load/checkedLoad round trips, dedup and sparse blobs,
 * tag replacement, lazy loading, concurrent writers, and storage failures that leave
 * the previous layout intact.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import {
  DigestMismatchError, InvalidConfigError, LayoutLockedError, Sandbox, Snapshot, SnapshotLayout, SnapshotNotFoundError, StorageError,
} from "../src/index.js";
import { repoRoot } from "./helpers.js";
import { addOne, assertPreparedState as assertSnapshotState, prepared } from "./snapshot-guest.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-files-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => path.join(root, `layout-${dirs++}`);

function assertPreparedState(sb: Sandbox): void {
  assertSnapshotState(sb);
  assert.equal(sb.callSync("call_host", 41), 42, "host-function round trip");
}

const blobFiles = (dir: string): string[] => fs.readdirSync(path.join(dir, "blobs/sha256")).sort();
const diskBytes = (file: string): number => fs.statSync(file).blocks * 512;

describe("round trips", () => {
  test("save, then load and checkedLoad (by tag and by digest) resume the exact state", async () => {
    const { sb, snap } = await prepared();
    const dir = freshDir();
    const digest = await snap.save(dir, "demo-v1");
    assert.match(digest, /^sha256:[a-f0-9]{64}$/);
    for (const loaded of [await Snapshot.load(dir, "demo-v1"), await Snapshot.checkedLoad(dir, digest)]) {
      assert.equal(loaded.generation, snap.generation);
      assert.deepEqual(loaded.functions, snap.functions);
      assert.deepEqual(loaded.hostFunctions, snap.hostFunctions);
      assert.deepEqual(Buffer.from(loaded.guestElf), Buffer.from(snap.guestElf), "the guest ELF travels with the snapshot");
      const copy = await Sandbox.fromSnapshot(loaded, { hostFunctions: [addOne] });
      try {
        assertPreparedState(copy);
        copy.callSync("bump");
        copy.restore(loaded);
        assert.equal(copy.callSync("get_counter"), 3, "restore to a loaded snapshot");
      } finally {
        copy.close();
      }
    }
    sb.close();
  });

  test("a loaded snapshot's sandbox can be snapshotted, saved and loaded again (a second generation)", async () => {
    const { sb, snap } = await prepared(8 << 20);
    sb.close();
    const dir = freshDir();
    await snap.save(dir, "gen1");
    const copy = await Sandbox.fromSnapshot(await Snapshot.load(dir, "gen1"), { hostFunctions: [addOne] });
    copy.callSync("bump");
    copy.callSync("touch_pages", 4, 3);
    const gen2 = copy.snapshot();
    copy.close();
    await gen2.save(dir, "gen2");
    const again = await Sandbox.fromSnapshot(await Snapshot.checkedLoad(dir, "gen2"), { hostFunctions: [addOne] });
    try {
      assert.equal(again.callSync("get_counter"), 4);
      assert.equal(again.callSync("scratch_sum"), 4 * 3);
      assert.equal(again.callSync("heap_check", 7), true);
      assert.equal((await Snapshot.load(dir, "gen2")).generation, snap.generation + 1);
    } finally {
      again.close();
    }
  });

  test("the log level and the host-function rule hold for loaded snapshots", async () => {
    const { sb, snap } = await prepared();
    sb.close();
    const dir = freshDir();
    await snap.save(dir, "t");
    const loaded = await Snapshot.load(dir, "t");
    await assert.rejects(Sandbox.fromSnapshot(loaded, {}), (e: unknown) => (e as { code?: string }).code === "HOST_FUNCTIONS_INCOMPATIBLE");
    const records: string[] = [];
    const copy = await Sandbox.fromSnapshot(loaded, { hostFunctions: [addOne], maxGuestLogLevel: "debug", guestLogger: (r) => records.push(r.level) });
    try {
      copy.callSync("log_at", 4); // debug
      assert.deepEqual(records, ["debug"]);
    } finally {
      copy.close();
    }
  });
});

describe("what is written", () => {
  test("re-saving rewrites nothing; a second tag of the same snapshot adds no blob; identical blobs are stored once", async () => {
    const { sb, snap } = await prepared();
    const dir = freshDir();
    const digest = await snap.save(dir, "a");
    const inodes = (): string => blobFiles(dir).map((f) => `${f}:${fs.statSync(path.join(dir, "blobs/sha256", f)).ino}`).join(",") + `|${fs.statSync(path.join(dir, "index.json")).ino}`;
    const before = inodes();
    assert.equal(await snap.save(dir, "a"), digest);
    assert.equal(inodes(), before, "no blob and not the index were replaced");
    assert.equal(await snap.save(dir, "b"), digest);
    assert.equal(blobFiles(dir).length, 4, "manifest, config, memory, ELF: once each");
    sb.callSync("bump");
    await sb.snapshot().save(dir, "c");
    assert.equal(blobFiles(dir).length, 4 + 3, "a new snapshot of the same guest shares the ELF blob");
    assert.deepEqual(new SnapshotLayout(dir).list().map((l) => l.tag), ["a", "b", "c"]);
    sb.close();
  });

  test("re-saving a tag replaces it", async () => {
    const { sb, snap } = await prepared();
    const dir = freshDir();
    await snap.save(dir, "t");
    sb.callSync("bump");
    const newer = await sb.snapshot().save(dir, "t");
    const list = new SnapshotLayout(dir).list();
    assert.deepEqual(list.map((l) => [l.tag, l.digest]), [["t", newer]]);
    const copy = await Sandbox.fromSnapshot(await Snapshot.load(dir, "t"), { hostFunctions: [addOne] });
    assert.equal(copy.callSync("get_counter"), 4);
    copy.close();
    sb.close();
  });

  test("zero pages are holes: a 256 MiB guest that used little costs little disk, its digest covers all bytes", async () => {
    const { sb, snap } = await prepared(256 << 20);
    sb.close();
    const dir = freshDir();
    await snap.save(dir, "big");
    const [listing] = new SnapshotLayout(dir).list();
    assert.ok(listing);
    assert.ok(listing.memorySize >= 256 << 20);
    assert.ok(listing.memoryDiskBytes < 4 << 20, `memory blob uses ${listing.memoryDiskBytes} bytes of disk for ${listing.memorySize} bytes`);
    const memoryBlob = blobFiles(dir).map((f) => path.join(dir, "blobs/sha256", f)).find((f) => fs.statSync(f).size === listing.memorySize);
    assert.ok(memoryBlob);
    const sum = spawnSync("sha256sum", [memoryBlob], { encoding: "utf8" }).stdout.split(" ")[0];
    assert.equal(`sha256:${sum}`, `sha256:${path.basename(memoryBlob)}`, "the blob's name is the sha256 of its full bytes");
    assert.ok(diskBytes(memoryBlob) === listing.memoryDiskBytes);
  });

  test("blobs and the index are read-only files; no temp file is left behind", async () => {
    const { sb, snap } = await prepared();
    sb.close();
    const dir = freshDir();
    await snap.save(dir, "t");
    for (const f of blobFiles(dir)) assert.equal(fs.statSync(path.join(dir, "blobs/sha256", f)).mode & 0o222, 0, `${f} is not writable`);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith(".tmp-")), []);
    assert.deepEqual(fs.readdirSync(dir).sort(), [".vmlet.lock", "blobs", "index.json", "oci-layout"]);
  });
});

describe("loading", () => {
  test("load maps memory lazily: a 1 GiB snapshot loads without reading its memory", async () => {
    const { sb, snap } = await prepared(1 << 30);
    sb.close();
    const dir = freshDir();
    await snap.save(dir, "huge");
    const rss = process.memoryUsage.rss();
    const loaded = await Snapshot.load(dir, "huge");
    const copy = await Sandbox.fromSnapshot(loaded, { hostFunctions: [addOne] });
    try {
      assert.equal(copy.callSync("heap_check", 7), true);
      const grown = process.memoryUsage.rss() - rss;
      assert.ok(grown < 64 << 20, `loading + one call grew RSS by ${grown} bytes for a ${loaded.memorySize}-byte snapshot`);
    } finally {
      copy.close();
    }
  });

  test("checkedLoad finds a flipped byte in the memory blob; load does not hash it", async () => {
    const { sb, snap } = await prepared();
    sb.close();
    const dir = freshDir();
    await snap.save(dir, "t");
    const [listing] = new SnapshotLayout(dir).list();
    const memoryBlob = blobFiles(dir).map((f) => path.join(dir, "blobs/sha256", f)).find((f) => fs.statSync(f).size === listing!.memorySize)!;
    fs.chmodSync(memoryBlob, 0o644);
    const fd = fs.openSync(memoryBlob, "r+");
    fs.writeSync(fd, Buffer.from([0x5a]), 0, 1, 0x200000 + 123);
    fs.closeSync(fd);
    await assert.rejects(Snapshot.checkedLoad(dir, "t"), (e: unknown) => e instanceof DigestMismatchError && e.actual !== e.expected);
    await Snapshot.load(dir, "t"); // by design: only checkedLoad hashes the memory blob
    const report = await new SnapshotLayout(dir).verify();
    assert.equal(report.ok, false);
    assert.equal(report.problems[0]?.error.code, "SNAPSHOT_DIGEST_MISMATCH");
  });

  test("unknown tags, digests and directories are SnapshotNotFoundError; bad tags are InvalidConfigError", async () => {
    const { sb, snap } = await prepared();
    sb.close();
    const dir = freshDir();
    await snap.save(dir, "t");
    await assert.rejects(Snapshot.load(dir, "nope"), SnapshotNotFoundError);
    await assert.rejects(Snapshot.load(dir, `sha256:${"0".repeat(64)}`), SnapshotNotFoundError);
    await assert.rejects(Snapshot.load(path.join(root, "missing"), "t"), SnapshotNotFoundError);
    await assert.rejects(Snapshot.load(dir, "../etc"), SnapshotNotFoundError);
    for (const bad of ["", "-x", ".x", "a/b", "a:b", "x".repeat(129), 42 as unknown as string]) {
      await assert.rejects(snap.save(dir, bad), InvalidConfigError, `tag ${JSON.stringify(bad)}`);
    }
  });
});

describe("writers", () => {
  test("concurrent saves into one layout serialise on the lock; both tags end up in the index", async () => {
    const a = await prepared(64 << 20);
    const b = await prepared(64 << 20);
    b.sb.callSync("bump");
    const snapB = b.sb.snapshot();
    const dir = freshDir();
    const [da, db] = await Promise.all([a.snap.save(dir, "a"), snapB.save(dir, "b")]);
    assert.deepEqual(new SnapshotLayout(dir).list().map((l) => [l.tag, l.digest]).sort(), [["a", da], ["b", db]]);
    assert.equal((await new SnapshotLayout(dir).verify()).ok, true);
    a.sb.close();
    b.sb.close();
  });

  test("a writer that cannot get the lock in time gets LayoutLockedError and changes nothing", async () => {
    const { sb, snap } = await prepared(256 << 20);
    sb.callSync("touch_pages", 200, 1);
    sb.callSync("heap_fill", 4 << 20, 3);
    const big = sb.snapshot();
    const dir = freshDir();
    await snap.save(dir, "first");
    const slow = big.save(dir, "big"); // hashes and writes in slices, yielding: holds the lock meanwhile
    await new Promise((resolve) => setTimeout(resolve, 5));
    await assert.rejects(snap.save(dir, "second", { lockTimeoutMs: 0 }), LayoutLockedError);
    await slow;
    assert.deepEqual(new SnapshotLayout(dir).list().map((l) => l.tag), ["first", "big"]);
    sb.close();
  });
});

/** Runs test/fixtures/save-big in a child whose file-size limit the parent lowers to 4 MiB after its snapshot is taken. */
async function saveUnderFileSizeLimit(dir: string): Promise<string> {
  const child = spawn(process.execPath, [path.join(repoRoot, "dist/test/fixtures/save-big.js"), dir], { stdio: ["pipe", "pipe", "inherit"] });
  let out = "";
  child.stdout.setEncoding("utf8");
  await new Promise<void>((resolve) => child.stdout.on("data", (chunk: string) => {
    out += chunk;
    if (out.includes("READY")) resolve();
  }));
  assert.equal(spawnSync("prlimit", [`--pid=${child.pid}`, "--fsize=4194304"]).status, 0, "prlimit");
  child.stdin.write("go\n");
  await new Promise((resolve) => child.on("exit", resolve));
  return out;
}

describe("storage failures leave the previous layout intact", () => {
  const canMount = process.env.VMLET_TEST_NO_MOUNT !== "1" && process.getuid?.() === 0 && spawnSync("sh", ["-c", "d=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs $d && umount $d && rmdir $d"]).status === 0;

  /** A tmpfs of `size` at a new mount point (root), or a plain folder (others). */
  function scratchFs(size: string): { dir: string; remountReadOnly: () => void; done: () => void } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-fs-"));
    if (canMount) {
      assert.equal(spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]).status, 0);
      return {
        dir,
        remountReadOnly: () => assert.equal(spawnSync("mount", ["-o", "remount,ro", dir]).status, 0),
        done: () => {
          spawnSync("umount", ["-l", dir]); // lazy: mappings of loaded blobs live until they are collected
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    return {
      dir,
      remountReadOnly: () => {
        if (process.getuid?.() === 0) throw new Error("cannot make a read-only file system here: running as root (permissions do not bind) without permission to mount");
        fs.chmodSync(path.join(dir, "layout"), 0o555);
        fs.chmodSync(path.join(dir, "layout/blobs/sha256"), 0o555);
      },
      done: () => {
        spawnSync("chmod", ["-R", "u+w", dir]);
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }

  test("a read-only layout: StorageError, and the old snapshot still loads", async () => {
    const { sb, snap } = await prepared();
    const scratch = scratchFs("64m");
    try {
      const dir = path.join(scratch.dir, "layout");
      const old = await snap.save(dir, "t");
      scratch.remountReadOnly();
      sb.callSync("bump");
      await assert.rejects(sb.snapshot().save(dir, "t"), (e: unknown) => e instanceof StorageError && ["EROFS", "EACCES"].includes(e.errno ?? ""));
      assert.equal(new SnapshotLayout(dir).list()[0]?.digest, old);
      const copy = await Sandbox.fromSnapshot(await Snapshot.checkedLoad(dir, "t"), { hostFunctions: [addOne] });
      assert.equal(copy.callSync("get_counter"), 3);
      copy.close();
    } finally {
      scratch.done();
      sb.close();
    }
  });

  test("a full disk (or file-size limit): StorageError, no temp file left, the old snapshot still loads", async () => {
    const { sb, snap } = await prepared();
    sb.close();
    if (canMount) {
      const scratch = scratchFs("8m");
      try {
        const dir = path.join(scratch.dir, "layout");
        const old = await snap.save(dir, "t");
        const big = await prepared(64 << 20);
        big.sb.callSync("heap_fill", 12 << 20, 5); // ~12 MiB of data: more than the file system has left
        await assert.rejects(big.sb.snapshot().save(dir, "t"), (e: unknown) => e instanceof StorageError && e.errno === "ENOSPC");
        big.sb.close();
        assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith(".tmp-")), [], "the partial blob was removed");
        assert.equal(new SnapshotLayout(dir).list()[0]?.digest, old);
        assert.equal((await new SnapshotLayout(dir).verify()).ok, true);
      } finally {
        scratch.done();
      }
      return;
    }
    // No mounts: the same failure path through RLIMIT_FSIZE on a child (EFBIG instead of ENOSPC).
    const dir = freshDir();
    const old = await snap.save(dir, "t");
    assert.match(await saveUnderFileSizeLimit(dir), /STORAGE EFBIG/);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith(".tmp-")), []);
    assert.equal(new SnapshotLayout(dir).list()[0]?.digest, old);
    assert.equal((await new SnapshotLayout(dir).verify()).ok, true);
  });
});

test("remove and gc of a directory without a layout: SnapshotNotFoundError, and nothing is created there", async () => {
  const missing = path.join(root, "no-such-layout");
  await assert.rejects(new SnapshotLayout(missing).remove("t"), SnapshotNotFoundError);
  await assert.rejects(new SnapshotLayout(missing).gc(), SnapshotNotFoundError);
  assert.equal(fs.existsSync(missing), false);
  const empty = freshDir();
  fs.mkdirSync(empty);
  await assert.rejects(new SnapshotLayout(empty).gc(), SnapshotNotFoundError);
  assert.deepEqual(fs.readdirSync(empty), [], "no stray lock file");
});

test("writers in several processes share one layout: every save lands, the layout verifies", async () => {
  const dir = freshDir();
  const rounds = 8;
  const tags = ["p0", "p1", "p2"];
  const outputs = await Promise.all(tags.map((tag) => new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repoRoot, "dist/test/fixtures/concurrent-saver.js"), dir, tag, String(rounds)], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`writer ${tag} exited ${code}: ${err}`))));
  })));
  for (const out of outputs) assert.match(out, new RegExp(`SAVED ${rounds}`));
  const layout = new SnapshotLayout(dir);
  assert.deepEqual(layout.list().map((l) => l.tag).sort(), tags);
  assert.equal((await layout.verify()).ok, true);
  for (const tag of tags) {
    const sb = await Sandbox.fromSnapshot(await Snapshot.checkedLoad(dir, tag), { hostFunctions: [addOne] });
    assert.equal(sb.callSync("get_counter"), rounds, `${tag} holds its last save`);
    sb.close();
  }
});

/**
 * Guest ELF files kept per process while unchanged (src/sandbox/guest-files.ts): a settled
 * file is read once; any change (content, even with the same size and an mtime set back,
 * or a replaced file) is read again; a file changed in the last two seconds is never kept,
 * since file-system timestamps are coarse. The cache is bounded in files and bytes. What
 * callers reach of the bytes (Snapshot.guestElf) is a copy.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { guestFileCacheStats, readGuestFile } from "../src/sandbox/guest-files.js";
import { createSandbox, Snapshot } from "../src/index.js";
import { guestPath } from "./helpers.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-guest-files-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** Runs `fn` and says how many times it read a file (rather than taking the kept copy). */
async function readsDuring(fn: () => Promise<unknown>): Promise<number> {
  const before = guestFileCacheStats().reads;
  await fn();
  return guestFileCacheStats().reads - before;
}

const longAgo = new Date(Date.now() - 60_000);
const file = (name: string): string => path.join(root, name);

// Files that settle (their change time more than two seconds past) before the tests run.
before(async () => {
  fs.writeFileSync(file("a.elf"), new Uint8Array([1, 2, 3, 4]));
  fs.writeFileSync(file("b.elf"), new Uint8Array([1, 2, 3, 4]));
  fs.writeFileSync(file("c.elf"), new Uint8Array([5, 5]));
  fs.writeFileSync(file("c-new.elf"), new Uint8Array([6, 6]));
  await new Promise((resolve) => setTimeout(resolve, 2200));
});

test("a settled file is read once: the next read takes the kept bytes", async () => {
  let first: Uint8Array = new Uint8Array();
  assert.equal(await readsDuring(async () => (first = await readGuestFile(file("a.elf")))), 1);
  assert.deepEqual([...first], [1, 2, 3, 4]);
  let second: Uint8Array = new Uint8Array();
  assert.equal(await readsDuring(async () => (second = await readGuestFile(file("a.elf")))), 0, "kept");
  assert.equal(second, first, "shared: no copy per build");
});

test("a kept file rewritten with the same size and its mtime set back is read again", async () => {
  const b = file("b.elf");
  fs.utimesSync(b, longAgo, longAgo);
  await new Promise((resolve) => setTimeout(resolve, 2200)); // settled again after the utimes
  await readGuestFile(b);
  assert.equal(await readsDuring(() => readGuestFile(b)), 0, "kept");
  fs.writeFileSync(b, new Uint8Array([9, 9, 9, 9]));
  fs.utimesSync(b, longAgo, longAgo); // same size, same mtime as before: the change time still moves
  let second: Uint8Array = new Uint8Array();
  assert.equal(await readsDuring(async () => (second = await readGuestFile(b))), 1);
  assert.deepEqual([...second], [9, 9, 9, 9]);
});

test("a kept file replaced by another (rename over it) is read again", async () => {
  const c = file("c.elf");
  await readGuestFile(c);
  assert.equal(await readsDuring(() => readGuestFile(c)), 0, "kept");
  fs.renameSync(file("c-new.elf"), c);
  assert.deepEqual([...(await readGuestFile(c))], [6, 6]);
});

test("a file changed in the last two seconds is not kept: each read reads it", async () => {
  const d = file("d.elf");
  fs.writeFileSync(d, new Uint8Array([7]));
  assert.equal(await readsDuring(() => readGuestFile(d)), 1);
  assert.equal(await readsDuring(() => readGuestFile(d)), 1);
  fs.writeFileSync(d, new Uint8Array([8])); // within the same timestamp tick, maybe
  assert.deepEqual([...(await readGuestFile(d))], [8]);
});

test("a file that cannot be read is an error, and is not kept", async () => {
  await assert.rejects(readGuestFile(file("missing.elf")), { code: "ENOENT" });
});

test("the cache keeps at most 64 MiB of files and none over 16 MiB, dropping the oldest first", async () => {
  const big = (name: string, mib: number): string => {
    const f = file(name);
    fs.writeFileSync(f, new Uint8Array(mib << 20).fill(mib));
    fs.utimesSync(f, longAgo, longAgo);
    return f;
  };
  const files = [big("big1.elf", 15), big("big2.elf", 15), big("big3.elf", 15), big("big4.elf", 15), big("big5.elf", 15)];
  const huge = big("huge.elf", 17);
  await new Promise((resolve) => setTimeout(resolve, 2200)); // settled (utimes moved the change time)
  for (const f of files) await readGuestFile(f);
  assert.ok(guestFileCacheStats().bytes <= 64 << 20, `${guestFileCacheStats().bytes} bytes kept`);
  assert.equal(await readsDuring(() => readGuestFile(files[4]!)), 0, "the newest is kept");
  assert.equal(await readsDuring(() => readGuestFile(files[0]!)), 1, "the oldest was dropped");
  assert.equal(await readsDuring(() => readGuestFile(huge)), 1);
  assert.equal(await readsDuring(() => readGuestFile(huge)), 1, "a file over 16 MiB is never kept");
  assert.deepEqual((await readGuestFile(huge)).subarray(0, 4), Uint8Array.of(17, 17, 17, 17));
});

test("Snapshot.guestElf is the caller's copy: writing to it changes no later build of the file, nor what the snapshot saves", async () => {
  const elf = file("demo-copy.elf");
  fs.copyFileSync(guestPath("demo"), elf);
  fs.utimesSync(elf, longAgo, longAgo);
  await new Promise((resolve) => setTimeout(resolve, 2200)); // settled: the cache keeps it
  const first = await createSandbox({ guest: elf });
  const snap = first.snapshot();
  const mine = snap.guestElf;
  mine.fill(0);
  assert.notDeepEqual(snap.guestElf, mine, "the snapshot still has the ELF");
  first.close();
  const second = await createSandbox({ guest: elf }); // from the kept bytes
  try {
    assert.equal(second.callSync("add", 2, 3), 5);
  } finally {
    second.close();
  }
  const dir = fs.mkdtempSync(path.join(root, "layout-"));
  await snap.save(dir, "t");
  assert.deepEqual(new Uint8Array((await Snapshot.load(dir, "t")).guestElf), new Uint8Array(fs.readFileSync(elf)));
});

for (const kind of ["Uint8Array", "Buffer"] as const) {
  test(`a guest given as bytes (${kind}) is the build's own: writing to the caller's buffer, or to snap.guestElf, changes no snapshot of it`, async () => {
    const original = new Uint8Array(fs.readFileSync(guestPath("demo")));
    const bytes = kind === "Buffer" ? fs.readFileSync(guestPath("demo")) : new Uint8Array(original);
    const sb = await createSandbox({ guest: bytes });
    try {
      const snap = sb.snapshot();
      bytes.fill(0);
      snap.guestElf.fill(7);
      assert.deepEqual(new Uint8Array(snap.guestElf), original);
      assert.equal(sb.callSync("add", 1, 2), 3);
    } finally {
      sb.close();
    }
  });
}

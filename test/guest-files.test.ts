/**
 * Guest ELF files kept per process while unchanged (src/sandbox/guest-files.ts): a settled
 * file is read once; any change (content, even with the same size and an mtime set back,
 * or a replaced file) is read again; a file changed in the last two seconds is never kept,
 * since file-system timestamps are coarse.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { readGuestFile } from "../src/sandbox/guest-files.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-guest-files-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

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

test("a settled file is read once: the next read returns the same bytes object", async () => {
  const first = await readGuestFile(file("a.elf"));
  assert.deepEqual([...first], [1, 2, 3, 4]);
  assert.equal(await readGuestFile(file("a.elf")), first);
});

test("a kept file rewritten with the same size and its mtime set back is read again", async () => {
  const b = file("b.elf");
  fs.utimesSync(b, longAgo, longAgo);
  await new Promise((resolve) => setTimeout(resolve, 2200)); // settled again after the utimes
  const first = await readGuestFile(b);
  assert.equal(await readGuestFile(b), first, "kept");
  fs.writeFileSync(b, new Uint8Array([9, 9, 9, 9]));
  fs.utimesSync(b, longAgo, longAgo); // same size, same mtime as before: the change time still moves
  const second = await readGuestFile(b);
  assert.notEqual(second, first);
  assert.deepEqual([...second], [9, 9, 9, 9]);
});

test("a kept file replaced by another (rename over it) is read again", async () => {
  const c = file("c.elf");
  const first = await readGuestFile(c);
  assert.equal(await readGuestFile(c), first, "kept");
  fs.renameSync(file("c-new.elf"), c);
  assert.deepEqual([...(await readGuestFile(c))], [6, 6]);
});

test("a file changed in the last two seconds is not kept: each read reads it", async () => {
  const d = file("d.elf");
  fs.writeFileSync(d, new Uint8Array([7]));
  const first = await readGuestFile(d);
  const second = await readGuestFile(d);
  assert.notEqual(second, first);
  fs.writeFileSync(d, new Uint8Array([8])); // within the same timestamp tick, maybe
  assert.deepEqual([...(await readGuestFile(d))], [8]);
});

test("a file that cannot be read is an error, and is not kept", async () => {
  await assert.rejects(readGuestFile(file("missing.elf")), { code: "ENOENT" });
});

/**
 * A loaded snapshot's memory blob changed under a running process (issue 11 item 8): load
 * copies the blob's stored pages into private memory, so truncating it afterwards cannot
 * kill Node with SIGBUS (restore, a reused VM, a new sandbox, a second snapshot), and
 * rewriting it in place cannot change what a checkedLoad-ed snapshot runs.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { Sandbox, Snapshot, type HostFunctionDefinition } from "../src/index.js";
import { blobFile, copyGolden, readIndexJson, TAG } from "./layout-copies.js";

const host = (name: string, params: string[], returns: string, impl: (...a: number[]) => unknown): HostFunctionDefinition =>
  ({ name, params, returns, impl }) as unknown as HostFunctionDefinition;
/** The golden guest's host functions. */
const config = { hostFunctions: [host("golden_twice", ["i32"], "i32", (x) => 2 * x!), host("golden_extra", [], "void", () => undefined)] };
const root = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-blob-change-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** The memory blob's file of the golden copy's snapshot (the largest blob of its manifest). */
function memoryBlob(dir: string): string {
  const index = readIndexJson(dir) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const entry = index.manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === TAG)!;
  const manifest = JSON.parse(fs.readFileSync(blobFile(dir, entry.digest), "utf8")) as { layers: Array<{ digest: string; size: number }> };
  const largest = manifest.layers.reduce((a, b) => (b.size > a.size ? b : a));
  return blobFile(dir, largest.digest);
}

test("truncating the memory blob after load: restore, a reused VM and new sandboxes keep working", async () => {
  const dir = copyGolden(path.join(root, "truncate"));
  const snap = await Snapshot.load(dir, TAG);
  const sb = await Sandbox.fromSnapshot(snap, config);
  const marker = sb.callSync("get_marker");
  sb.callSync("prepare", 1, 100000, 3);
  fs.truncateSync(memoryBlob(dir), 4096);
  sb.restore(snap); // used to copy from a mapping of the cut file: SIGBUS
  assert.equal(sb.callSync("get_marker"), marker);
  sb.close(); // parks its VM for the next sandbox of this snapshot
  const again = await Sandbox.fromSnapshot(snap, config);
  assert.equal(again.callSync("get_marker"), marker);
  again.snapshot();
  again.close();
  fs.truncateSync(memoryBlob(dir), 0);
  const fresh = await Sandbox.fromSnapshot(snap, config);
  assert.equal(fresh.callSync("get_marker"), marker);
  fresh.close();
});

test("rewriting the memory blob in place after checkedLoad does not change what runs", async () => {
  const dir = copyGolden(path.join(root, "rewrite"));
  const snap = await Snapshot.checkedLoad(dir, TAG);
  const expected = await Sandbox.fromSnapshot(snap, config);
  const hash = expected.callSync("pattern_hash");
  expected.close();
  const file = memoryBlob(dir);
  const size = fs.statSync(file).size;
  fs.writeFileSync(file, Buffer.alloc(size, 0x5a)); // same size, other bytes
  const sb = await Sandbox.fromSnapshot(snap, config);
  try {
    assert.equal(sb.callSync("pattern_hash"), hash);
  } finally {
    sb.close();
  }
});

/**
 * Golden snapshots: layouts saved by an earlier vmlet (test/golden/snapshots, made by
 * `npm run golden:regenerate`) must load with today's loader and resume with today's
 * host. If this fails, the on-disk format or the guest ABI changed incompatibly: read
 * docs/snapshot-versioning.md before regenerating anything.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { HostFunctionsIncompatibleError, Sandbox, Snapshot, SnapshotLayout, type HostFunctionDefinition } from "../src/index.js";
import { repoRoot } from "./helpers.js";

interface Expected {
  digest: string;
  prepared: { marker: number; len: number; seed: number };
  generation: number;
  functions: string[];
  hostFunctions: string[];
  memorySize: number;
  marker: number;
  patternHash: number;
  hostRoundTrip: { arg: number; result: number };
}

const dir = path.join(repoRoot, "test/golden/snapshots");
const expected = JSON.parse(fs.readFileSync(path.join(repoRoot, "test/golden/expected.json"), "utf8")) as Record<string, Expected>;
const host = (name: string, params: string[], returns: string, impl: (...a: number[]) => unknown): HostFunctionDefinition =>
  ({ name, params, returns, impl }) as unknown as HostFunctionDefinition;
const hostFunctions = [host("golden_twice", ["i32"], "i32", (x) => 2 * x!), host("golden_extra", [], "void", () => undefined)];

/** FNV-1a of the guest's pattern, computed here rather than trusted from the file. */
function patternHash({ len, seed }: { len: number; seed: number }): number {
  let h = 2166136261;
  for (let i = 0; i < len; i++) h = Math.imul(h ^ ((seed * i) & 0xff), 16777619) >>> 0;
  return h;
}

test("the golden layout verifies and lists every golden tag with its recorded digest", async () => {
  const report = await new SnapshotLayout(dir).verify();
  assert.equal(report.ok, true, report.problems.map((p) => `${p.ref}: ${p.error.message}`).join("\n"));
  const listed = Object.fromEntries(new SnapshotLayout(dir).list().map((l) => [l.tag, l.digest]));
  assert.deepEqual(listed, Object.fromEntries(Object.entries(expected).map(([tag, e]) => [tag, e.digest])));
});

for (const [tag, want] of Object.entries(expected)) {
  describe(`golden ${tag}`, () => {
    test("loads with its recorded metadata", async () => {
      const snap = await Snapshot.checkedLoad(dir, tag);
      assert.equal(snap.generation, want.generation);
      assert.deepEqual(snap.functions, want.functions);
      assert.deepEqual(snap.hostFunctions, want.hostFunctions);
      assert.equal(snap.memorySize, want.memorySize);
    });

    test("resumes: the static, the heap pattern and a host-function round trip", async () => {
      const snap = await Snapshot.load(dir, tag);
      const sb = await Sandbox.fromSnapshot(snap, { hostFunctions });
      try {
        assert.equal(sb.callSync("get_marker"), want.prepared.marker);
        assert.equal(sb.callSync("pattern_hash"), patternHash(want.prepared));
        assert.equal(want.patternHash, patternHash(want.prepared), "expected.json agrees with the pattern's definition");
        assert.equal(sb.callSync("host_round_trip", 5), 2 * 5 + want.prepared.marker);
        sb.callSync("prepare", 1, 10, 1);
        sb.restore(snap);
        assert.equal(sb.callSync("pattern_hash"), patternHash(want.prepared), "restore to a golden snapshot");
      } finally {
        sb.close();
      }
    });

    test("still requires the host functions it was taken with", async () => {
      const snap = await Snapshot.load(dir, tag);
      await assert.rejects(Sandbox.fromSnapshot(snap, {}), HostFunctionsIncompatibleError);
    });
  });
}

test("the second generation kept the log level and the host function registered after creation", async () => {
  const snap = await Snapshot.load(dir, "second-generation-v1");
  assert.equal(snap.state.maxGuestLogLevel, "debug");
  assert.ok(snap.hostFunctions.includes("golden_extra() -> void"));
});

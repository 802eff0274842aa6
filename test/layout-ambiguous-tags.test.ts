/**
 * A tag that names two different manifests is refused by every reader (load,
 * checkedLoad, inspect, verify, scan, the CLI) with SNAPSHOT_INVALID naming the tag and
 * both digests: nothing picks one of them silently. A tag listed twice for the same
 * manifest is not ambiguous. Needs no KVM (copies of the golden layout).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Snapshot, SnapshotLayout, VmletError } from "../src/index.js";
import { copyGolden, jsonErrorCode, readIndexJson, TAG, vmlet, writeIndexJson, type Obj } from "./layout-copies.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-tags-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const REF_NAME = "org.opencontainers.image.ref.name";
const OTHER = "second-generation-v1";

/** A golden copy where `OTHER`'s manifest is also tagged TAG (or, with `sameManifest`, TAG's entry is listed twice). */
function layoutWithTagTwice(sameManifest = false): { dir: string; digests: string[] } {
  const dir = copyGolden(root);
  const index = readIndexJson(dir);
  const manifests = index.manifests as Obj[];
  const first = manifests.find((d) => (d.annotations as Obj)[REF_NAME] === TAG)!;
  const second = sameManifest ? { ...first } : manifests.find((d) => (d.annotations as Obj)[REF_NAME] === OTHER)!;
  const duplicate = { ...second, annotations: { [REF_NAME]: TAG } };
  writeIndexJson(dir, { ...index, manifests: [...manifests, duplicate] });
  return { dir, digests: [first.digest as string, second.digest as string] };
}

function isAmbiguous(digests: readonly string[]): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof VmletError, `a VmletError, got ${String(e)}`);
    assert.equal(e.code, "SNAPSHOT_INVALID", e.message);
    assert.match(e.message, new RegExp(`tag "${TAG}" names 2 different manifests`));
    for (const d of digests) assert.ok(e.message.includes(d), `names ${d}`);
    return true;
  };
}

describe("a tag naming two manifests", () => {
  test("load and checkedLoad refuse it (whichever entry comes first)", async () => {
    const { dir, digests } = layoutWithTagTwice();
    await assert.rejects(Snapshot.load(dir, TAG), isAmbiguous(digests));
    await assert.rejects(Snapshot.checkedLoad(dir, TAG), isAmbiguous(digests));
    assert.throws(() => new SnapshotLayout(dir).inspect(TAG), isAmbiguous(digests));
  });

  test("verify and scan report it under the tag; the layout is not ok", async () => {
    const { dir, digests } = layoutWithTagTwice();
    const report = await new SnapshotLayout(dir).verify();
    assert.equal(report.ok, false);
    const problem = report.problems.find((p) => p.ref === TAG);
    assert.ok(problem, JSON.stringify(report.problems.map((p) => p.ref)));
    isAmbiguous(digests)(problem.error);
    assert.ok(new SnapshotLayout(dir).scan().problems.some((p) => p.ref === TAG && isAmbiguous(digests)(p.error)));
  });

  test("the CLI: verify, ls, inspect and run exit 1 with SNAPSHOT_INVALID", () => {
    const { dir } = layoutWithTagTwice();
    const verify = vmlet(["snapshot", "verify", dir, "--json"]);
    assert.equal(verify.status, 1, verify.stderr);
    assert.ok((JSON.parse(verify.stdout) as { problems: Array<{ ref: string; code: string }> }).problems.some((p) => p.ref === TAG && p.code === "SNAPSHOT_INVALID"));
    const ls = vmlet(["snapshot", "ls", dir]);
    assert.equal(ls.status, 1, ls.stderr);
    assert.match(ls.stderr, /SNAPSHOT_INVALID: .*names 2 different manifests/);
    for (const args of [["snapshot", "inspect", dir, TAG, "--json"], ["run", `${dir}:${TAG}`, "f", "--json"]]) {
      const r = vmlet(args);
      assert.equal(r.status, 1, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(jsonErrorCode(r), "SNAPSHOT_INVALID", args.join(" "));
    }
  });

  test("the other tags of the layout still resolve, and rm of the ambiguous tag removes both entries", async () => {
    const { dir } = layoutWithTagTwice();
    assert.equal(new SnapshotLayout(dir).inspect("xsave-resume-v1").tag, "xsave-resume-v1");
    assert.equal(await new SnapshotLayout(dir).remove(TAG), true);
    assert.equal((await new SnapshotLayout(dir).verify()).ok, true);
  });

  test("the same manifest listed twice under one tag is not ambiguous", async () => {
    const { dir, digests } = layoutWithTagTwice(true);
    assert.equal(new SnapshotLayout(dir).inspect(TAG).descriptor.digest, digests[0]);
    assert.equal((await new SnapshotLayout(dir).verify()).ok, true);
  });
});

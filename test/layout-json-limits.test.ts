/**
 * Deeply nested JSON in index.json, a manifest or a config blob is SNAPSHOT_INVALID from
 * load, checkedLoad, verify, ls and the CLI: never a raw RangeError, never "internal
 * error". The nesting bound is checked on the bytes before parsing, exactly at its limit.
 * Needs no KVM (copies of the golden layout; every case fails before the CPU check).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Snapshot, SnapshotLayout, VmletError } from "../src/index.js";
import { integer, MAX_JSON_BYTES, MAX_JSON_DEPTH, parseJson } from "../src/snapshot/file/json-checks.js";
import { configText, copyGolden, jsonErrorCode, manifestText, replaceConfig, replaceManifest, TAG, vmlet } from "./layout-copies.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-json-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** An array nested `depth` deep: [[[…]]]. Deep enough, JSON.stringify of it overflows the stack. */
const nested = (depth: number): string => "[".repeat(depth) + "]".repeat(depth);
const DEEP = 200_000;

/** `text` with the value of its first `"key":` replaced by `value` (the documents are compact JSON). */
function withValue(text: string, key: string, value: string): string {
  const parsed = JSON.parse(text) as Record<string, unknown>;
  const marker = "\u0000VALUE\u0000";
  parsed[key] = marker;
  return JSON.stringify(parsed).replace(JSON.stringify(marker), value);
}

function isInvalid(e: unknown): boolean {
  assert.ok(e instanceof VmletError, `a VmletError, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  assert.equal(e.code, "SNAPSHOT_INVALID", e.message);
  assert.match(e.message, new RegExp(`more than ${MAX_JSON_DEPTH} deep`));
  return true;
}

const cases: Array<[string, (dir: string) => void]> = [
  ["index.json", (dir) => fs.writeFileSync(path.join(dir, "index.json"), withValue(fs.readFileSync(path.join(dir, "index.json"), "utf8"), "schemaVersion", nested(DEEP)))],
  ["the manifest", (dir) => replaceManifest(dir, withValue(manifestText(dir), "schemaVersion", nested(DEEP)))],
  ["the config blob", (dir) => replaceConfig(dir, withValue(configText(dir), "formatVersion", nested(DEEP)))],
];

describe("deeply nested JSON is SNAPSHOT_INVALID everywhere", () => {
  for (const [where, edit] of cases) {
    test(`in ${where}: load, checkedLoad, verify, scan and the CLI`, async () => {
      const dir = copyGolden(root);
      edit(dir);
      await assert.rejects(Snapshot.load(dir, TAG), isInvalid);
      await assert.rejects(Snapshot.checkedLoad(dir, TAG), isInvalid);
      const report = await new SnapshotLayout(dir).verify();
      assert.equal(report.ok, false);
      assert.ok(report.problems.length > 0 && report.problems.every((p) => isInvalid(p.error)));
      if (where === "index.json") assert.throws(() => new SnapshotLayout(dir).scan(), isInvalid);
      else assert.ok(new SnapshotLayout(dir).scan().problems.some((p) => isInvalid(p.error)));
      const verify = vmlet(["snapshot", "verify", dir]);
      assert.equal(verify.status, 1, verify.stderr);
      assert.match(verify.stdout + verify.stderr, /SNAPSHOT_INVALID/);
      assert.doesNotMatch(verify.stderr, /internal error/);
      for (const args of [["snapshot", "ls", dir, "--json"], ["snapshot", "inspect", dir, TAG, "--json"], ["run", `${dir}:${TAG}`, "f", "--json"]]) {
        const r = vmlet(args);
        assert.equal(r.status, 1, `${args.join(" ")}: ${r.stderr}`);
        assert.doesNotMatch(r.stderr, /internal error/, args.join(" "));
        const code = jsonErrorCode(r) ?? ((JSON.parse(r.stdout) as { problems: Array<{ code: string }> }).problems[0]?.code);
        assert.equal(code, "SNAPSHOT_INVALID", args.join(" "));
      }
    });
  }
});

describe("the bound on the bytes", () => {
  const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
  const refusesDepth = (text: string): void => void assert.throws(() => parseJson(bytes(text), "x"), isInvalid);

  test(`${MAX_JSON_DEPTH} levels parse; ${MAX_JSON_DEPTH + 1} are refused, for arrays, objects and a mix`, () => {
    assert.deepEqual(parseJson(bytes(nested(MAX_JSON_DEPTH)), "x"), JSON.parse(nested(MAX_JSON_DEPTH)));
    refusesDepth(nested(MAX_JSON_DEPTH + 1));
    const objects = (depth: number): string => '{"a":'.repeat(depth - 1) + "{}" + "}".repeat(depth - 1);
    assert.ok(parseJson(bytes(objects(MAX_JSON_DEPTH)), "x"));
    refusesDepth(objects(MAX_JSON_DEPTH + 1));
    refusesDepth(`[${'{"a":'.repeat(MAX_JSON_DEPTH)}1${"}".repeat(MAX_JSON_DEPTH)}]`);
  });

  test("brackets inside strings (with escaped quotes and multi-byte text) do not count", () => {
    const text = JSON.stringify({ s: `é\\"${"[".repeat(1000)}"{{{`, t: ["\"]]]]"] });
    assert.deepEqual(parseJson(bytes(text), "x"), JSON.parse(text));
    refusesDepth(`["\\\\", ${nested(MAX_JSON_DEPTH)}]`); // an escaped backslash ends its string
  });

  test("a document larger than the JSON cap is refused unparsed", () => {
    assert.throws(() => parseJson(new Uint8Array(MAX_JSON_BYTES + 1).fill(0x20), "x"), (e: unknown) => e instanceof VmletError && e.code === "SNAPSHOT_INVALID" && /at most/.test(e.message));
  });

  test("a long value in an error message is cut short", () => {
    const text = JSON.stringify({ schemaVersion: "x".repeat(100_000), manifests: [] });
    const dir = copyGolden(root);
    fs.writeFileSync(path.join(dir, "index.json"), text);
    assert.throws(() => new SnapshotLayout(dir).list(), (e: unknown) => e instanceof VmletError && e.message.length < 400);
  });
});

test("integer bounds are inclusive and exact: min and max pass, one outside either is SNAPSHOT_INVALID", () => {
  assert.equal(integer(4096, "x", 1, 4096), 4096);
  assert.equal(integer(1, "x", 1, 4096), 1);
  for (const value of [0, 4097, 1.5, 2 ** 53, "7"]) assert.throws(() => integer(value, "x", 1, 4096), (e: unknown) => e instanceof VmletError && e.code === "SNAPSHOT_INVALID", String(value));
});

/**
 * The package as a user gets it: `npm pack`, then `npm install <tarball>` into an empty
 * project, offline and with an empty npm cache of its own (the tarball must need nothing
 * else: node-gyp-build is bundled, the addon prebuilt), then the CLI, an ES module and a
 * CommonJS script calling the shipped demo guest, and a type-check of a consumer's
 * TypeScript. Where no backend runs here (test/kvm.ts), a step may instead fail with
 * BACKEND_UNAVAILABLE, and only so. Everything happens in one temporary folder.
 */
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { kvmSkipReason } from "./kvm.js";
import { repoRoot } from "./helpers.js";
import * as consumer from "./package-consumer-files.js";

const version = (JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { version: string }).version;
let work = "";
let project = "";
let tarball = "";

/** The environment without `npm test`'s own npm_* settings, which would leak into the nested npm runs. */
const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith("npm_")));

function run(command: string, args: readonly string[], cwd: string): SpawnSyncReturns<string> {
  return spawnSync(command, args, { cwd, env, encoding: "utf8", timeout: 120_000 });
}

function mustSucceed(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Success, or — only where no backend runs here — exit 1 saying BACKEND_UNAVAILABLE. */
function successOrNoBackend(r: SpawnSyncReturns<string>, what: string, expected: RegExp): void {
  const output = `${r.stdout}\n${r.stderr}`;
  if (kvmSkipReason !== undefined && r.status === 1 && output.includes("BACKEND_UNAVAILABLE")) return;
  assert.equal(r.status, 0, `${what} failed (${r.status ?? r.signal}):\n${output}`);
  assert.match(r.stdout, expected, what);
}

before(() => {
  work = mkdtempSync(path.join(tmpdir(), "vmlet-package-"));
  const packDir = path.join(work, "pack");
  project = path.join(work, "project");
  mkdirSync(packDir);
  mkdirSync(project);
  // The real `npm pack`: prepack builds (a no-op after `npm test`'s build) and stages prebuilds/.
  mustSucceed(run("npm", ["pack", "--pack-destination", packDir], repoRoot), "npm pack");
  const file = readdirSync(packDir).find((name) => name.endsWith(".tgz"));
  assert.ok(file !== undefined, "npm pack wrote no tarball");
  tarball = path.join(packDir, file);
  for (const [name, text] of Object.entries(consumer.files(repoRoot))) writeFileSync(path.join(project, name), text);
  const install = ["install", "--offline", "--no-audit", "--no-fund", "--cache", path.join(work, "npm-cache"), tarball];
  mustSucceed(run("npm", install, project), "npm install of the tarball");
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test("the tarball holds what users need and nothing of the contributors'", (t) => {
  const entries = mustSucceed(run("tar", ["tzf", tarball], work), "tar tzf").trim().split("\n").map((e) => e.replace(/^package\//, ""));
  t.diagnostic(`${path.basename(tarball)}: ${(statSync(tarball).size / 1024).toFixed(0)} KiB, ${entries.length} files`);
  for (const needed of [
    "package.json", "README.md", "LICENSE", "binding.gyp", "native/addon.c", "scripts/install.mjs",
    "dist/src/index.js", "dist/src/index.d.ts", "dist/src/cli/main.js", "dist/cjs/index.js", "dist/cjs/index.d.ts", "dist/cjs/package.json",
    "prebuilds/linux-x64/vmlet.napi.glibc.node", "node_modules/node-gyp-build/index.js",
    "node_modules/pprof-format/dist/esm/index.js", "node_modules/pprof-format/dist/commonjs/index.js",
    "guest/include/vmlet.h", "guest/include/vmlet_profile.h", "guest/sdk.mk", "guest/link.ld", "guest/build/libvmlet.a", "guest/build/start.S.o",
    "guest/build/profile/libvmlet.a", "guest/build/profile/start.S.o", "guests/build/demo.elf",
  ]) {
    assert.ok(entries.includes(needed), `the tarball lacks ${needed}`);
  }
  const unwanted = /^(test|bench|examples|\.ci|dist\/(test|bench|examples)|guest\/(test|src)|src)\/|tsbuildinfo|^(?!node_modules\/).*\.map$|golden|^scripts\/(?!install\.mjs$)|^guests\/(?!demo\.c$|build\/demo\.elf$)/;
  assert.deepEqual(entries.filter((e) => unwanted.test(e)), []);
});

test("npx vmlet --version prints the package's version", () => {
  assert.equal(mustSucceed(run("npx", ["--offline", "vmlet", "--version"], project), "vmlet --version").trim(), version);
});

test("vmlet doctor: a working test sandbox (or, without a backend here, BACKEND_UNAVAILABLE)", () => {
  successOrNoBackend(run("npx", ["--offline", "vmlet", "doctor"], project), "vmlet doctor", /^test sandbox: ok$/m);
});

test("vmlet demo runs the shipped demo guest (or, without a backend here, BACKEND_UNAVAILABLE)", () => {
  successOrNoBackend(run("npx", ["--offline", "vmlet", "demo"], project), "vmlet demo", /^add\(2, 40\) += 42$/m);
});

test("import from an ES module: the ESM build, calling the demo guest", () => {
  const r = run(process.execPath, ["esm.mjs"], project);
  successOrNoBackend(r, "esm.mjs", /^add\(2, 40\) = 42$/m);
  assert.match(r.stdout, /^entry: .*\/node_modules\/vmlet\/dist\/src\/index\.js$/m);
});

test("require from CommonJS: the CommonJS build, calling the demo guest", () => {
  const r = run(process.execPath, ["cjs.cjs"], project);
  successOrNoBackend(r, "cjs.cjs", /^add\(2, 40\) = 42$/m);
  assert.match(r.stdout, /^entry: .*\/node_modules\/vmlet\/dist\/cjs\/index\.js$/m);
});

test("a consumer's TypeScript type-checks against both builds' types (tsc --noEmit)", () => {
  const tsc = path.join(repoRoot, "node_modules/typescript/bin/tsc");
  const out = mustSucceed(run(process.execPath, [tsc, "-p", "tsconfig.json", "--listFiles"], project), "tsc --noEmit");
  assert.match(out, /node_modules\/vmlet\/dist\/src\/index\.d\.ts$/m, "consumer.mts should see the ES build's types");
  assert.match(out, /node_modules\/vmlet\/dist\/cjs\/index\.d\.ts$/m, "consumer.cts should see the CommonJS build's types");
});

/**
 * The package as a user gets it: `npm pack`, then `npm install <tarball>` into an empty
 * project, offline and with an empty npm cache of its own (the tarball must need nothing
 * else: node-gyp-build is bundled, the addon prebuilt), then the CLI, an ES module and a
 * CommonJS script calling the shipped demo guest, and a type-check of a consumer's
 * TypeScript; then the consumer's documentation run as written in that project (README's
 * "Use vmlet in your project", docs/getting-started.md, the complete guest of
 * docs/guest-sdk.md) and a `vmlet guest new` scaffold built with make. Where no backend runs
 * here (test/kvm.ts), a step may instead fail with BACKEND_UNAVAILABLE, and only so.
 * Everything happens in one temporary folder.
 */
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { kvmSkipReason } from "./kvm.js";
import { repoRoot } from "./helpers.js";
import * as consumer from "./package-consumer-files.js";
import { docSection, docSteps, outputLine, type DocStep } from "./doc-steps.js";

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
    "dist/pkg/index.js", "dist/pkg/index.cjs", "dist/pkg/cli.js", "dist/src/index.d.ts", "dist/cjs/index.d.ts", "dist/cjs/package.json",
    "prebuilds/linux-x64/vmlet.napi.glibc.node", "node_modules/node-gyp-build/index.js",
    "node_modules/pprof-format/dist/esm/index.js", "node_modules/pprof-format/dist/commonjs/index.js",
    "guest/include/vmlet.h", "guest/include/vmlet_profile.h", "guest/sdk.mk", "guest/link.ld", "guest/build/libvmlet.a", "guest/build/start.S.o",
    "guest/build/profile/libvmlet.a", "guest/build/profile/start.S.o", "guests/build/demo.elf",
  ]) {
    assert.ok(entries.includes(needed), `the tarball lacks ${needed}`);
  }
  const unwanted = /^(test|bench|examples|\.ci|dist\/(test|bench|examples)|guest\/(test|src)|src)\/|tsbuildinfo|^(?!node_modules\/).*\.map$|golden|^scripts\/(?!install\.mjs$)|^guests\/(?!demo\.c$|build\/demo\.elf$)/;
  assert.deepEqual(entries.filter((e) => unwanted.test(e)), []);
  // The code runs from the bundles in dist/pkg (scripts/bundle.mjs); tsc's trees ship only their types.
  assert.deepEqual(entries.filter((e) => /^dist\/(src|cjs)\/.*\.c?js$/.test(e)), []);
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
  assert.match(r.stdout, /^entry: .*\/node_modules\/vmlet\/dist\/pkg\/index\.js$/m);
});

test("require from CommonJS: the CommonJS build, calling the demo guest", () => {
  const r = run(process.execPath, ["cjs.cjs"], project);
  successOrNoBackend(r, "cjs.cjs", /^add\(2, 40\) = 42$/m);
  assert.match(r.stdout, /^entry: .*\/node_modules\/vmlet\/dist\/pkg\/index\.cjs$/m);
});

test("a consumer's TypeScript type-checks against both builds' types (tsc --noEmit)", () => {
  const tsc = path.join(repoRoot, "node_modules/typescript/bin/tsc");
  const out = mustSucceed(run(process.execPath, [tsc, "-p", "tsconfig.types.json", "--listFiles"], project), "tsc --noEmit");
  assert.match(out, /node_modules\/vmlet\/dist\/src\/index\.d\.ts$/m, "consumer.mts should see the ES build's types");
  assert.match(out, /node_modules\/vmlet\/dist\/cjs\/index\.d\.ts$/m, "consumer.cts should see the CommonJS build's types");
});

/** The environment of the documented commands: npm and npx may not reach a registry. */
const docEnv = (): NodeJS.ProcessEnv => ({ ...env, npm_config_offline: "true", npm_config_cache: path.join(work, "npm-cache") });

/** What `npm install --save-dev typescript @types/node` would give, offline: links to the checkout's copies. */
function linkDevTools(): void {
  mkdirSync(path.join(project, "node_modules/@types"), { recursive: true });
  for (const name of ["typescript", "@types/node"]) symlinkSync(path.join(repoRoot, "node_modules", name), path.join(project, "node_modules", name));
  symlinkSync("../typescript/bin/tsc", path.join(project, "node_modules/.bin/tsc"));
}

/**
 * Runs one documented command in the project; returns its stdout, or undefined when it
 * failed only for want of a backend here. `npx vmlet`/`npx tsc` run the installed bin
 * directly (npx itself is tested above, and costs seconds per call).
 */
function runDocumented(line: string, where: string): string | undefined {
  const command = line.replace(/\s+#.*$/, "");
  if (command === "npm install vmlet") return ""; // done in before(), from the tarball
  if (command === "npm install --save-dev typescript @types/node") {
    linkDevTools();
    return "";
  }
  assert.doesNotMatch(command, /^npm /, `${where}: a documented npm command this test cannot run offline: ${command}`);
  const r = spawnSync("sh", ["-c", command.replace(/^npx (vmlet|tsc)\b/, "node_modules/.bin/$1")], { cwd: project, env: docEnv(), encoding: "utf8", timeout: 120_000 });
  const output = `${r.stdout}\n${r.stderr}`;
  if (kvmSkipReason !== undefined && r.status === 1 && output.includes("BACKEND_UNAVAILABLE")) return undefined;
  assert.equal(r.status, 0, `${where}: \`${command}\` failed (${r.status ?? r.signal}):\n${output}`);
  return r.stdout;
}

/** Writes the document's files and runs its commands in order, checking the output it shows. */
function runDocument(steps: readonly DocStep[], where: string): void {
  assert.ok(steps.some((s) => s.kind === "commands"), `${where} has no commands to run`);
  for (const step of steps) {
    if (step.kind === "file") {
      mkdirSync(path.dirname(path.join(project, step.path)), { recursive: true });
      writeFileSync(path.join(project, step.path), step.text);
      continue;
    }
    let stdout = "";
    for (const line of step.lines) {
      const out = runDocumented(line, where);
      if (out === undefined) return; // no backend here: the rest cannot run either
      stdout += out;
    }
    for (const expected of step.expect) assert.match(stdout, outputLine(expected), `${where}: output of ${step.lines.join("; ")}`);
  }
}

const readDoc = (file: string): string => readFileSync(path.join(repoRoot, file), "utf8");

test("README's \"Use vmlet in your project\" runs as written: install, write a guest, build it, call it, handle its errors", () => {
  runDocument(docSteps(docSection(readDoc("README.md"), "Use vmlet in your project")), "README.md");
});

test("docs/getting-started.md runs as written: a custom guest called from TypeScript", () => {
  runDocument(docSteps(readDoc("docs/getting-started.md")), "docs/getting-started.md");
});

test("the complete guest of docs/guest-sdk.md builds with sdk.mk against the installed SDK, which make never rewrites", () => {
  const sdk = path.join(project, "node_modules/vmlet/guest/build");
  const library = readFileSync(path.join(sdk, "libvmlet.a"));
  // The library older than an object it holds, as an unpacker may leave it: make must still not rebuild it.
  const now = new Date();
  utimesSync(path.join(sdk, "start.S.o"), now, now);
  runDocument(docSteps(docSection(readDoc("docs/guest-sdk.md"), "A complete guest")), "docs/guest-sdk.md");
  assert.deepEqual(readFileSync(path.join(sdk, "libvmlet.a")), library, "libvmlet.a in node_modules is unchanged");
});

test("vmlet guest new scaffolds a project: make builds it with npx vmlet guest build, call.mjs calls it", () => {
  runDocument(
    [{ kind: "commands", lines: ["npx vmlet guest new scaffold", "make -C scaffold", "node scaffold/call.mjs"], expect: ["42", "hello, world"] }],
    "the scaffold",
  );
});

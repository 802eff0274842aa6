#!/usr/bin/env node
/**
 * Builds everything vmlet needs, in order: the native addon (node-gyp), the guest
 * SDK and guests (make + gcc), the C benchmark references (bench/c), and the TypeScript.
 * The contributor's build: runs from `npm ci`/`npm install` in a checkout (the `prepare`
 * script), `npm run build`, `npm test` and `npm pack` (`prepack`). It may install system
 * packages; a project that installs the vmlet package never runs it (it runs
 * scripts/install.mjs, which only compiles the addon when no prebuilt one loads).
 * Each step is skipped when its outputs are newer than its inputs.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { bundlePackage } from "./bundle.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const quiet = process.argv.includes("--quiet");
const log = (msg) => quiet || console.log(`[vmlet build] ${msg}`);

function fail(message) {
  console.error(`\n[vmlet build] ${message}\n`);
  process.exit(1);
}

const hasTool = (tool) => spawnSync("sh", ["-c", `command -v ${tool}`]).status === 0;

/** Installs missing system packages with scripts/install-system-deps.sh (apt), then checks each tool. */
function requireTools(tools) {
  const missing = tools.filter(([tool]) => !hasTool(tool));
  if (missing.length > 0 && hasTool("apt-get")) {
    log(`installing missing system packages for: ${missing.map(([t]) => t).join(", ")}`);
    spawnSync("bash", [path.join(root, "scripts/install-system-deps.sh")], { stdio: "inherit" });
  }
  for (const [tool, why] of tools) {
    if (!hasTool(tool)) fail(`${tool} is not installed, and vmlet needs it to ${why}.\nRun: sudo bash scripts/install-system-deps.sh`);
  }
}

function newest(paths) {
  let t = 0;
  for (const p of paths) {
    if (!existsSync(p)) continue;
    const s = statSync(p);
    if (s.isDirectory()) t = Math.max(t, newest(readdirSync(p).map((f) => path.join(p, f))));
    else t = Math.max(t, s.mtimeMs);
  }
  return t;
}

function upToDate(output, inputs) {
  return existsSync(output) && statSync(output).mtimeMs >= newest(inputs);
}

function run(cmd, args, what) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: quiet ? ["ignore", "ignore", "inherit"] : "inherit" });
  if (r.status !== 0) fail(`${what} failed (${cmd} ${args.join(" ")} exited with ${r.status ?? r.signal})`);
}

/** npm sets npm_config_node_gyp for lifecycle scripts; otherwise use the node-gyp bundled with npm. */
function nodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  try {
    const npmCli = realpathSync(execFileSync("sh", ["-c", "command -v npm"], { encoding: "utf8" }).trim());
    const bundled = path.join(path.dirname(npmCli), "..", "node_modules", "node-gyp", "bin", "node-gyp.js");
    if (existsSync(bundled)) return bundled;
  } catch {
    // fall through to the local dependency, if any
  }
  try {
    return createRequire(import.meta.url).resolve("node-gyp/bin/node-gyp.js");
  } catch {
    fail("node-gyp was not found (it ships with npm). Reinstall npm, or `npm install -g node-gyp`.");
  }
}

function buildAddon() {
  const output = path.join(root, "build/Release/vmlet.node");
  if (upToDate(output, [path.join(root, "native"), path.join(root, "binding.gyp")])) return log("native addon up to date");
  log("building the native addon (node-gyp)");
  const nodedir = existsSync("/usr/include/node/node_api.h") ? ["--nodedir=/usr"] : [];
  run(process.execPath, [nodeGyp(), "rebuild", ...nodedir, ...(quiet ? ["--silent"] : [])], "building the native addon");
}

/** The process backend's child: a freestanding static program (native/process/), beside the addon. */
function buildProcessHelper() {
  run("make", ["-s", "-C", "native/process", `OUT=${path.join(root, "build/Release")}`], "building the process backend's helper");
}

function buildGuests() {
  log("building the guest SDK and guests (make)");
  run("make", ["-s", "-C", "guests"], "building the guests");
}

/**
 * The SQLite example guest (examples/sqlite-guest/). Its amalgamation comes from the npm
 * tarball of better-sqlite3 (a devDependency), at the version and sha512 integrity that
 * package-lock.json pins; it is fetched with `npm pack` (npm's cache makes that offline
 * after the first time), checked, extracted into the example's build/ and never committed.
 * make then rebuilds the guest only when a source changed.
 */
function buildSqliteGuest() {
  const build = path.join(root, "examples/sqlite-guest/build");
  const lock = JSON.parse(readFileSync(path.join(root, "package-lock.json"), "utf8"));
  const pinned = lock.packages?.["node_modules/better-sqlite3"];
  if (!pinned?.version || !pinned?.integrity) fail("package-lock.json does not pin better-sqlite3, the source of the SQLite example guest's amalgamation.");
  const stamp = path.join(build, "amalgamation-source");
  const source = `better-sqlite3@${pinned.version} ${pinned.integrity}\n`;
  if (!existsSync(stamp) || readFileSync(stamp, "utf8") !== source) {
    log(`fetching the SQLite amalgamation from better-sqlite3@${pinned.version} (npm pack)`);
    mkdirSync(build, { recursive: true });
    const tarball = path.join(build, `better-sqlite3-${pinned.version}.tgz`);
    run("npm", ["pack", `better-sqlite3@${pinned.version}`, "--pack-destination", build, "--silent"], "fetching better-sqlite3 with npm pack");
    const [algorithm, expected] = pinned.integrity.split(/-(.*)/s);
    const actual = createHash(algorithm).update(readFileSync(tarball)).digest("base64");
    if (actual !== expected) fail(`${tarball} does not match the integrity package-lock.json pins (${pinned.integrity}); delete it and rebuild.`);
    // --touch: extracted files get the current time, so make sees a new version as newer.
    run("tar", ["-xzf", tarball, "--touch", "-C", build, "--strip-components=3", "package/deps/sqlite3/sqlite3.c", "package/deps/sqlite3/sqlite3.h"], "extracting the SQLite amalgamation");
    rmSync(tarball);
    writeFileSync(stamp, source);
  }
  log("building the SQLite example guest (make)");
  run("make", ["-s", "-C", "examples/sqlite-guest"], "building the SQLite example guest");
}

/**
 * The zstd example guest (examples/zstd-guest/) and its host reference. The zstd source is
 * the copy the zstd-napi npm package vendors (upstream's lib/, unmodified), fetched with
 * `npm pack` at the version and sha256 pinned here (npm's cache makes that offline after
 * the first time), checked, extracted into the example's build/ and never committed. make
 * then rebuilds only what changed, on every core (a first build compiles zstd twice, for
 * the guest and for the host).
 */
const ZSTD_SOURCE = {
  name: "zstd-napi",
  version: "0.0.13",
  sha256: "5b76defc67c808989c5f3920e14f662d6318b84b8d53ac3e94b99463d8d65e76",
};

function buildZstdGuest() {
  const build = path.join(root, "examples/zstd-guest/build");
  const stamp = path.join(build, "zstd-source");
  const source = `${ZSTD_SOURCE.name}@${ZSTD_SOURCE.version} sha256:${ZSTD_SOURCE.sha256}\n`;
  if (!existsSync(stamp) || readFileSync(stamp, "utf8") !== source) {
    log(`fetching the zstd source from ${ZSTD_SOURCE.name}@${ZSTD_SOURCE.version} (npm pack)`);
    mkdirSync(build, { recursive: true });
    rmSync(path.join(build, "zstd"), { recursive: true, force: true });
    const tarball = path.join(build, `${ZSTD_SOURCE.name}-${ZSTD_SOURCE.version}.tgz`);
    run("npm", ["pack", `${ZSTD_SOURCE.name}@${ZSTD_SOURCE.version}`, "--pack-destination", build, "--silent"], `fetching ${ZSTD_SOURCE.name} with npm pack`);
    const actual = createHash("sha256").update(readFileSync(tarball)).digest("hex");
    if (actual !== ZSTD_SOURCE.sha256) fail(`${tarball} has sha256 ${actual}, not the pinned ${ZSTD_SOURCE.sha256}; delete it and rebuild.`);
    // --touch: extracted files get the current time, so make sees a new version as newer.
    run("tar", ["-xzf", tarball, "--touch", "-C", build, "--strip-components=2", "package/deps/zstd/lib", "package/deps/zstd/LICENSE"], "extracting the zstd source");
    rmSync(tarball);
    writeFileSync(stamp, source);
  }
  log("building the zstd example guest and its host reference (make)");
  run("make", ["-s", `-j${availableParallelism()}`, "-C", "examples/zstd-guest"], "building the zstd example guest");
}

function buildBenchReference() {
  log("building the C benchmark references (kvm_ref, process_ref) and the bench guest");
  run("make", ["-s", "-C", "bench/c"], "building bench/c");
}

function buildTypeScript() {
  // tsc takes seconds even when nothing changed, and `npm pack` runs this build twice.
  const stamp = path.join(root, "dist/cjs/package.json");
  const inputs = ["src", "test", "bench", "examples", "fuzz", "tsconfig.json", "tsconfig.cjs.json"].map((p) => path.join(root, p));
  if (upToDate(stamp, inputs)) return log("TypeScript up to date");
  log("compiling TypeScript (ES modules, and the CommonJS build of the library)");
  const tsc = path.join(root, "node_modules/typescript/bin/tsc");
  if (!existsSync(tsc)) fail("TypeScript is missing: run `npm ci` first.");
  run(process.execPath, [tsc, "-p", "tsconfig.json"], "compiling TypeScript");
  run(process.execPath, [tsc, "-p", "tsconfig.cjs.json"], "compiling the CommonJS build");
  // The package is "type": "module"; this makes Node read dist/cjs/*.js as CommonJS.
  // Written last, it also stamps the time of the last complete TypeScript build.
  writeFileSync(stamp, '{ "type": "commonjs" }\n');
  // `npx vmlet` runs the bin file directly: it must be executable (tsc writes 0644).
  chmodSync(path.join(root, "dist/src/cli/main.js"), 0o755);
}

/** The files the package runs (scripts/bundle.mjs), from tsc's output: rebuilt whenever that is. */
async function bundle() {
  const output = path.join(root, "dist/pkg/index.cjs");
  if (upToDate(output, [path.join(root, "dist/cjs/package.json"), path.join(root, "scripts/bundle.mjs")])) return log("bundles up to date");
  log("bundling the package's entry points (esbuild)");
  let esbuild;
  try {
    esbuild = await import("esbuild");
  } catch {
    fail("esbuild is missing: run `npm ci` first.");
  }
  rmSync(path.join(root, "dist/pkg"), { recursive: true, force: true });
  await bundlePackage(root, esbuild);
  chmodSync(path.join(root, "dist/pkg/cli.js"), 0o755);
}

requireTools([
  ["gcc", "compile the native addon and the guests"],
  ["make", "build the guests"],
  ["python3", "run node-gyp"],
]);
buildAddon();
buildProcessHelper();
buildGuests();
buildSqliteGuest();
buildZstdGuest();
buildBenchReference();
buildTypeScript();
await bundle();
if (!existsSync("/dev/kvm")) {
  console.warn("[vmlet build] note: /dev/kvm does not exist on this machine; sandboxes run on the process backend (weaker isolation: `npx vmlet doctor`, docs/backends.md).");
}
log("done");

#!/usr/bin/env node
/**
 * The package's `install` script, run where a project installs vmlet. It loads the native
 * addon the way vmlet will (node-gyp-build: build/, then prebuilds/<platform>-<arch>/) and
 * compiles it with node-gyp only when none loads, so an install on linux-x64 needs no C
 * toolchain. It never installs system packages, and builds no guests or benchmarks.
 * In a source checkout it does nothing: there `prepare` runs scripts/build-all.mjs.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const log = (message) => console.error(`[vmlet install] ${message}`);

// build-all.mjs never ships (package.json "files"), so its presence means a checkout.
if (existsSync(path.join(root, "scripts/build-all.mjs"))) process.exit(0);

/** The process backend's helper (native/process/): prebuilt, or made with make and cc when they are here. */
function ensureProcessHelper() {
  const candidates = ["build/Release", `prebuilds/${process.platform}-${process.arch}`].map((d) => path.join(root, d, "vmlet-process-helper"));
  if (candidates.some((file) => existsSync(file))) return;
  const made = spawnSync("make", ["-s", "-C", "native/process", `OUT=${path.join(root, "build/Release")}`], { cwd: root, stdio: "inherit" });
  if (made.status !== 0) log("could not build the process backend's helper (needs make and gcc): sandboxes need KVM on this machine");
}

const require = createRequire(import.meta.url);
try {
  require("node-gyp-build")(root);
  ensureProcessHelper();
  process.exit(0);
} catch (error) {
  log(`no prebuilt native addon loads on this machine (${error.message.split("\n")[0]}); compiling it from source`);
}

/** npm passes its bundled node-gyp to lifecycle scripts; otherwise one on PATH. */
const nodeGyp = process.env.npm_config_node_gyp;
const [command, args] = nodeGyp && existsSync(nodeGyp) ? [process.execPath, [nodeGyp]] : ["node-gyp", []];
// Debian's nodejs-dev headers spare node-gyp a headers download.
const nodedir = existsSync("/usr/include/node/node_api.h") ? ["--nodedir=/usr"] : [];
const result = spawnSync(command, [...args, "rebuild", ...nodedir], { cwd: root, stdio: "inherit" });
if (result.status === 0) ensureProcessHelper();
if (result.status !== 0) {
  log("compiling the native addon failed. It needs python3, make and a C compiler (gcc);");
  log("on Debian/Ubuntu: apt-get install python3 make gcc, then reinstall vmlet.");
  process.exit(1);
}

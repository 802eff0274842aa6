#!/usr/bin/env node
/**
 * Fills prebuilds/<platform>-<arch>/ from build/Release for `npm pack` (the `prepack`
 * script, after the build), and removes it again with --clean (`postpack`), so a checkout
 * never loads a stale prebuilt copy. Every binding.gyp target ships:
 *   an addon (the default type) as <target_name>.napi.glibc.node — the tags node-gyp-build
 *     matches: Node-API (any Node version), glibc (not musl);
 *   an "executable" target (e.g. the process backend's helper) as <target_name>, found at
 *     run time by nativeExecutablePath() in src/native/artifacts.ts.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const prebuilds = path.join(root, "prebuilds");

if (process.argv.includes("--clean")) {
  rmSync(prebuilds, { recursive: true, force: true });
  process.exit(0);
}

// binding.gyp is a Python literal; vmlet's is kept to the JSON subset so this can read it.
const { targets } = JSON.parse(readFileSync(path.join(root, "binding.gyp"), "utf8"));
const dir = path.join(prebuilds, `${process.platform}-${process.arch}`);
rmSync(prebuilds, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
// Built by its own Makefile (freestanding and static: not a node-gyp target), shipped like one.
const extraExecutables = [{ target_name: "vmlet-process-helper", type: "executable" }];
for (const { target_name: name, type } of [...targets, ...extraExecutables]) {
  const executable = type === "executable";
  const from = path.join(root, "build/Release", executable ? name : `${name}.node`);
  const to = path.join(dir, executable ? name : `${name}.napi.glibc.node`);
  if (!existsSync(from)) {
    console.error(`[vmlet prebuilds] ${path.relative(root, from)} is missing: run \`npm run build\` first`);
    process.exit(1);
  }
  copyFileSync(from, to);
  chmodSync(to, 0o755);
  console.error(`[vmlet prebuilds] ${path.relative(root, to)}`);
}

/**
 * The addon's direct load (src/native/artifacts.ts addonCandidates) takes only the files
 * node-gyp-build would take first: what it builds, then the glibc prebuild, and the prebuild
 * never where node-gyp-build would look for a musl one; nothing where node-gyp-build is told
 * to search elsewhere.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { addonCandidates } from "../src/native/artifacts.js";
import { repoRoot } from "./helpers.js";

function withEnv<T>(name: string, value: string | undefined, fn: () => T): T {
  const saved = process.env[name];
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
  try {
    return fn();
  } finally {
    if (saved === undefined) delete process.env[name];
    else process.env[name] = saved;
  }
}
const withLibc = <T>(value: string | undefined, fn: () => T): T => withEnv("LIBC", value, fn);

const rel = (files: string[]): string[] => files.map((f) => path.relative(repoRoot, f));

test("built addons first, then the glibc prebuild for this platform", () => {
  assert.deepEqual(rel(withLibc("glibc", addonCandidates)), [
    "build/Release/vmlet.node",
    "build/Debug/vmlet.node",
    `prebuilds/${process.platform}-${process.arch}/vmlet.napi.glibc.node`,
  ]);
});

test("LIBC=musl leaves the prebuilds to node-gyp-build", () => {
  assert.deepEqual(rel(withLibc("musl", addonCandidates)), ["build/Release/vmlet.node", "build/Debug/vmlet.node"]);
});

test("an empty LIBC counts as unset, as node-gyp-build reads it", () => {
  assert.equal(withLibc("", addonCandidates).length, existsSync("/etc/alpine-release") ? 2 : 3);
});

test("VMLET_PREBUILD or PREBUILDS_ONLY leave the whole search to node-gyp-build", () => {
  assert.deepEqual(withEnv("VMLET_PREBUILD", "/somewhere/else", addonCandidates), []);
  assert.deepEqual(withEnv("PREBUILDS_ONLY", "1", addonCandidates), []);
});

/**
 * The addon's direct load (src/native/artifacts.ts addonCandidates) takes only the files
 * node-gyp-build would take first: what it builds, then the glibc prebuild, and the prebuild
 * never where node-gyp-build would look for a musl one.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { addonCandidates } from "../src/native/artifacts.js";
import { repoRoot } from "./helpers.js";

function withLibc<T>(value: string | undefined, fn: () => T): T {
  const saved = process.env.LIBC;
  if (value === undefined) delete process.env.LIBC;
  else process.env.LIBC = value;
  try {
    return fn();
  } finally {
    if (saved === undefined) delete process.env.LIBC;
    else process.env.LIBC = saved;
  }
}

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

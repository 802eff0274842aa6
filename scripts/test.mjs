#!/usr/bin/env node
/**
 * `npm test`: builds, then runs the whole suite once per backend this machine has
 * (VMLET_BACKEND=kvm where KVM works, and always VMLET_BACKEND=process), so every test is
 * proven on each backend without a copy of it. Tests of the KVM backend itself
 * (test/kvm.ts) skip, with their reason, in the process pass and where KVM is missing.
 * Extra arguments go to `node --test` (e.g. a single file under dist/test/).
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const build = spawnSync(process.execPath, [path.join(root, "scripts/build-all.mjs"), "--quiet"], { stdio: "inherit" });
if (build.status !== 0) process.exit(build.status ?? 1);

const { backendAvailability } = await import(pathToFileURL(path.join(root, "dist/src/hypervisor/backend.js")).href);
const backends = backendAvailability().filter((b) => b.works).map((b) => b.name);
for (const b of backendAvailability().filter((b) => !b.works)) console.log(`# backend ${b.name} is not usable here, its pass is skipped: ${b.why.split("\n")[0]}`);
if (backends.length === 0) {
  console.error("no backend works on this machine (`npx vmlet doctor` says why)");
  process.exit(1);
}

const files = process.argv.slice(2);
let failed = false;
for (const backend of backends) {
  console.log(`# test pass: VMLET_BACKEND=${backend}`);
  const run = spawnSync(process.execPath, ["--test", "--test-concurrency=1", "--test-timeout=300000", ...(files.length ? files : ["dist/test/"])], {
    cwd: root,
    stdio: "inherit",
    env: { ...process.env, VMLET_BACKEND: backend },
  });
  if (run.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);

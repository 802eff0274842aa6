#!/usr/bin/env node
/**
 * The long crash-safety run: test/save-crash-safety.test.ts with many more SIGKILLs
 * than CI's 120. Usage: npm run test:crash [-- rounds [seed]]  (default 2000 rounds;
 * VMLET_CRASH_ROUNDS / VMLET_CRASH_SEED work too). Expects a build (npm run build).
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const [roundsArg, seedArg] = process.argv.slice(2);
const env = { ...process.env, VMLET_CRASH_ROUNDS: roundsArg ?? process.env.VMLET_CRASH_ROUNDS ?? "2000" };
if (seedArg ?? process.env.VMLET_CRASH_SEED) env.VMLET_CRASH_SEED = seedArg ?? process.env.VMLET_CRASH_SEED;
console.log(`[vmlet crash test] ${env.VMLET_CRASH_ROUNDS} kills${env.VMLET_CRASH_SEED ? `, seed ${env.VMLET_CRASH_SEED}` : ""}`);
const run = spawnSync(process.execPath, ["--test", "--test-timeout=0", path.join(root, "dist/test/save-crash-safety.test.js")], { stdio: "inherit", env });
process.exit(run.status ?? 1);

/**
 * `npm run bench:profile`: what memory profiling costs the guest's allocator. The same guest
 * (guests/profiled.c, its `churn` loop of malloc/free pairs of mixed sizes) three ways:
 *   before — built with the guest SDK as it was before profiling existed (from git),
 *   off    — built without profiling (guests/build/profiled-off.elf): the claim is off = before,
 *   on     — built with VMLET_PROFILE=1 (guests/build/profiled.elf).
 * Rounds are interleaved (in alternating order) so that drift on a shared machine hits every
 * variant alike; a second sandbox of the "off" guest shows how large this run's noise is.
 * With profiling off the allocator's machine code is that of "before" (only the line numbers
 * in its panic messages moved), so any difference between them is noise.
 *
 *   node dist/bench/profile-cost.js [--before REV] [--rounds N]
 *   REV: a commit whose guest SDK is the baseline (default: the parent of the commit
 *   that added guest/src/profile.c, or HEAD before that commit exists).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { SandboxBuilder, type Sandbox } from "../src/index.js";
import { median } from "../src/cli/stats.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const PAIRS = 200_000; // malloc/free pairs per call: the call's own cost is noise beside them
const option = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};

function git(...args: string[]): string {
  const r = spawnSync("git", ["-C", root, ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** The revision whose alloc.c predates profiling. */
function baselineRevision(): string {
  const explicit = option("--before");
  if (explicit) return explicit;
  const added = git("log", "--diff-filter=A", "--format=%H", "--", "guest/src/profile.c").split("\n").filter(Boolean).at(-1);
  return added ? `${added}^` : "HEAD";
}

/** Builds guests/profiled.c with the whole guest SDK (guest/) as it was at `rev`. */
function buildBaseline(rev: string, work: string): string {
  const archive = spawnSync("git", ["-C", root, "archive", "--format=tar", rev, "guest"], { maxBuffer: 64 << 20 });
  if (archive.status !== 0) throw new Error(`git archive ${rev} guest: ${archive.stderr.toString().trim()}`);
  const untar = spawnSync("tar", ["-x", "-C", work], { input: archive.stdout });
  if (untar.status !== 0) throw new Error(`tar: ${untar.stderr.toString().trim()}`);
  writeFileSync(path.join(work, "Makefile"), [
    `VMLET_SDK := ${path.join(work, "guest")}`,
    "include $(VMLET_SDK)/sdk.mk",
    `before.elf: ${path.join(root, "guests/profiled.c")} $(VMLET_LIB)`,
    "\t$(VMLET_LINK)",
    "",
  ].join("\n"));
  const r = spawnSync("make", ["-s", "-C", work, "before.elf"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`building the baseline guest failed:\n${r.stderr}`);
  return path.join(work, "before.elf");
}

interface Variant { name: string; sandbox: Sandbox; nsPerPair: number[] }

function timeChurn(v: Variant): void {
  const start = process.hrtime.bigint();
  v.sandbox.callSync("churn", PAIRS);
  v.nsPerPair.push(Number(process.hrtime.bigint() - start) / PAIRS);
}

async function main(): Promise<void> {
  const rounds = Number(option("--rounds") ?? 30);
  const work = mkdtempSync(path.join(os.tmpdir(), "vmlet-profile-bench-"));
  try {
    const rev = baselineRevision();
    const off = path.join(root, "guests/build/profiled-off.elf");
    // "off again" is a second sandbox of the same guest: its ratio to "off" is this machine's noise.
    const elves = { before: buildBaseline(rev, work), off, on: path.join(root, "guests/build/profiled.elf"), "off again": off };
    const variants: Variant[] = [];
    for (const [name, elf] of Object.entries(elves)) {
      variants.push({ name, sandbox: await new SandboxBuilder().guest(elf).build(), nsPerPair: [] });
    }
    for (const v of variants) for (let i = 0; i < 3; i++) v.sandbox.callSync("churn", PAIRS); // warm-up
    for (let r = 0; r < rounds; r++) for (const v of r % 2 ? [...variants].reverse() : variants) timeChurn(v);
    const ns = Object.fromEntries(variants.map((v) => [v.name, median(v.nsPerPair)])) as Record<keyof typeof elves, number>;
    console.log(`memory profiling cost: ${PAIRS} malloc/free pairs per call, median of ${rounds} interleaved rounds; guest SDK before profiling: ${rev}`);
    for (const v of variants) console.log(`  ${v.name.padEnd(9)} ${(ns[v.name as keyof typeof elves]).toFixed(2).padStart(7)} ns per malloc+free`);
    console.log(`  off again / off = ${(ns["off again"] / ns.off).toFixed(3)}   (the same guest twice: the noise of this run)`);
    console.log(`  off / before = ${(ns.off / ns.before).toFixed(3)}   (profiling off: no cost when ≈ 1)`);
    console.log(`  on / off     = ${(ns.on / ns.off).toFixed(3)}   (the cost of counting every allocation with its stack)`);
    for (const v of variants) v.sandbox.close();
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();

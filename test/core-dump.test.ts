/**
 * Core dumps that real gdb loads (guests/debuggee.c): for a null write three frames deep,
 * a divide by zero, an abort from nested calls, a fault after a host-function round trip,
 * and a fault in a sandbox made from a snapshot loaded from disk, `gdb <core>.elf <core>`
 * shows the faulting function and line, the backtrace through the guest's frames, and a
 * local variable's value. Dumps come from sb.coreDump() and, automatically, from the
 * coreDumpDir option and VMLET_COREDUMP_DIR.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { GuestAbortedError, GuestFaultError, Sandbox, SandboxBuilder, Snapshot, VmletError, type HostFunctionDefinition } from "../src/index.js";
import { guestPath, repoRoot } from "./helpers.js";

const hasGdb = spawnSync("gdb", ["--version"]).status === 0;
const needsGdb = hasGdb ? {} : { skip: "gdb is not installed (scripts/install-system-deps.sh installs it)" };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-cores-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const source = fs.readFileSync(path.join(repoRoot, "guests/debuggee.c"), "utf8").split("\n");
/** The line of debuggee.c that carries a marker comment. */
const lineOf = (marker: string): number => source.findIndex((l) => l.includes(marker)) + 1;
const addOne = { name: "host_add_one", params: ["i32"], returns: "i32", impl: (x: number) => x + 1 } as const;
const addOneDefinition = addOne as unknown as HostFunctionDefinition;

const debuggee = (): SandboxBuilder => new SandboxBuilder().guest(guestPath("debuggee")).hostFunction(addOne.name, addOne.params, addOne.returns, addOne.impl);

/** Runs gdb in batch mode on a core and its ELF copy; returns what it printed. */
function gdb(core: string, ...commands: string[]): string {
  const r = spawnSync("gdb", ["-batch", "-nx", ...commands.flatMap((c) => ["-ex", c]), `${core}.elf`, core], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** Frame lines of the last `bt` (gdb also prints frame #0 when it loads the core): [function, line]. */
function frames(out: string): Array<[string, number]> {
  const bt = out.slice(out.lastIndexOf("\n#0 ") + 1);
  return [...bt.matchAll(/^#\d+\s+(?:0x[0-9a-f]+ in )?(\w+) \(.*\) at [^:]+:(\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]);
}

/** Calls `run`, expects it to throw, and writes a dump of the sandbox where it stopped. */
function dumpAfter(sb: Sandbox, name: string, run: () => unknown): string {
  assert.throws(run);
  return sb.coreDump(path.join(dir, `${name}.core`)).core;
}

test("a null write three frames deep: gdb shows each frame's function and line, and a local", needsGdb, async () => {
  const sb = await debuggee().build();
  try {
    const core = dumpAfter(sb, "deep", () => sb.callSync("crash_deep", 3));
    const out = gdb(core, "bt", "print marker");
    assert.match(out, /Program terminated with signal SIGSEGV/);
    const bt = frames(out);
    assert.deepEqual(bt.slice(0, 3), [["leaf_write", lineOf("DEBUGGEE_NULL_WRITE")], ["middle", lineOf("leaf_write(twice")], ["crash_deep", lineOf("middle(depth, nowhere)")]]);
    assert.match(out, /^\$1 = 42$/m, "marker = depth * 7 in leaf_write, where depth = 3 * 2");
  } finally {
    sb.close();
  }
});

test("a divide by zero is SIGFPE at the division, with the arguments", needsGdb, async () => {
  const sb = await debuggee().build();
  try {
    const core = dumpAfter(sb, "divide", () => sb.callSync("divide", 17, 0));
    const out = gdb(core, "bt 1", "print a");
    assert.match(out, /Program terminated with signal SIGFPE/);
    assert.deepEqual(frames(out)[0], ["divide", lineOf("DEBUGGEE_DIVIDE")]);
    assert.match(out, /^\$1 = 17$/m);
  } finally {
    sb.close();
  }
});

test("an abort from deep inside nested calls: the abort's frames and a local of each caller", needsGdb, async () => {
  const sb = await debuggee().build();
  try {
    const core = dumpAfter(sb, "abort", () => sb.callSync("abort_deep", 5));
    const out = gdb(core, "bt", "frame function abort_inner", "print reason");
    assert.match(out, /Program terminated with signal SIGABRT/);
    const names = frames(out).map(([fn]) => fn);
    for (const fn of ["abort_inner", "abort_outer", "abort_deep"]) assert.ok(names.includes(fn), `${fn} in ${names.join(" < ")}`);
    assert.deepEqual(frames(out).find(([fn]) => fn === "abort_inner"), ["abort_inner", lineOf("DEBUGGEE_ABORT")]);
    assert.match(out, /^\$1 = 115$/m, "reason = 5 * 3 + 100");
  } finally {
    sb.close();
  }
});

test("a fault after a host-function round trip shows the value the host returned", needsGdb, async () => {
  const sb = await debuggee().build();
  try {
    const core = dumpAfter(sb, "after-host", () => sb.callSync("fault_after_host", 41));
    const out = gdb(core, "bt 1", "print answer");
    assert.deepEqual(frames(out)[0], ["fault_after_host", lineOf("DEBUGGEE_AFTER_HOST")]);
    assert.match(out, /^\$1 = 42$/m);
  } finally {
    sb.close();
  }
});

test("a sandbox from a snapshot loaded from disk dumps itself on a fault (coreDumpDir), with the ELF from the layout", needsGdb, async () => {
  const built = await debuggee().build();
  const layout = path.join(dir, "layout");
  await built.snapshot().save(layout, "debuggee");
  built.close();
  const loaded = await Snapshot.load(layout, "debuggee");
  const dumps = path.join(dir, "auto");
  fs.mkdirSync(dumps);
  const sb = await Sandbox.fromSnapshot(loaded, { hostFunctions: [addOneDefinition], coreDumpDir: dumps });
  try {
    let fault: unknown;
    try {
      sb.callSync("crash_deep", 2);
    } catch (error) {
      fault = error;
    }
    assert.ok(fault instanceof GuestFaultError, String(fault));
    assert.ok(fault.coreDump && fs.existsSync(fault.coreDump), "the error names the dump it left");
    assert.ok(fs.existsSync(`${fault.coreDump}.elf`), "the guest ELF from the layout is next to it");
    const out = gdb(fault.coreDump, "bt 3", "print marker");
    assert.deepEqual(frames(out)[0], ["leaf_write", lineOf("DEBUGGEE_NULL_WRITE")]);
    assert.match(out, /^\$1 = 28$/m);
  } finally {
    sb.close();
  }
});

test("VMLET_COREDUMP_DIR turns dumps on for aborts too; without it nothing is written", async () => {
  const dumps = path.join(dir, "env");
  fs.mkdirSync(dumps);
  const previous = process.env.VMLET_COREDUMP_DIR;
  process.env.VMLET_COREDUMP_DIR = dumps;
  let sb: Sandbox;
  try {
    sb = await debuggee().build();
  } finally {
    if (previous === undefined) delete process.env.VMLET_COREDUMP_DIR;
    else process.env.VMLET_COREDUMP_DIR = previous;
  }
  try {
    assert.throws(() => sb.callSync("abort_deep", 1), (error: unknown) => error instanceof GuestAbortedError && typeof error.coreDump === "string");
    assert.equal(fs.readdirSync(dumps).filter((f) => f.endsWith(".core")).length, 1);
  } finally {
    sb.close();
  }
  const quiet = await debuggee().build();
  try {
    assert.throws(() => quiet.callSync("crash_deep", 1), (error: unknown) => error instanceof GuestFaultError && error.coreDump === undefined);
  } finally {
    quiet.close();
  }
});

test("the core is sparse ELF: user regions only, with their permissions, and no supervisor page", async () => {
  const sb = await debuggee().build();
  try {
    const { core } = sb.coreDump(path.join(dir, "idle.core"));
    const bytes = fs.readFileSync(core);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    assert.deepEqual([...bytes.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
    assert.equal(view.getUint16(16, true), 4, "ET_CORE");
    const loads = [];
    for (let i = 0; i < view.getUint16(56, true); i++) {
      const at = 64 + i * 56;
      if (view.getUint32(at, true) === 1) loads.push({ flags: view.getUint32(at + 4, true), vaddr: Number(view.getBigUint64(at + 16, true)) });
    }
    assert.ok(loads.length > 0);
    assert.ok(loads.every((l) => l.vaddr >= 0x10000), "no supervisor page (GDT, IDT, stubs) is dumped");
    assert.ok(loads.some((l) => l.flags === 5), "the guest's code is R+X");
    assert.ok(loads.every((l) => (l.flags & 3) !== 3), "nothing is W+X");
    assert.ok(fs.statSync(core).blocks * 512 < fs.statSync(core).size, "zero pages are holes");
  } finally {
    sb.close();
  }
});

test("coreDump() refuses bad paths with typed errors and works again after a restore", async () => {
  const sb = await debuggee().build();
  try {
    assert.throws(() => sb.coreDump(""), (e: unknown) => e instanceof VmletError && e.code === "INVALID_CONFIG");
    assert.throws(() => sb.coreDump(path.join(dir, "no/such/dir/x.core")), (e: unknown) => e instanceof VmletError && e.code === "STORAGE");
    const snap = sb.snapshot();
    assert.throws(() => sb.callSync("crash_deep", 1));
    sb.restore(snap);
    assert.ok(fs.existsSync(sb.coreDump(path.join(dir, "after-restore.core")).core));
  } finally {
    sb.close();
  }
});

test("the CLI: vmlet run --core-dump leaves a dump of a faulting call, and snapshot export-elf gives the ELF gdb needs", needsGdb, () => {
  const cli = (...args: string[]): { status: number | null; stdout: string; stderr: string } =>
    spawnSync(process.execPath, [path.join(repoRoot, "dist/src/cli/main.js"), ...args], { encoding: "utf8", timeout: 60_000 });
  const layout = path.join(dir, "cli-layout");
  const created = cli("snapshot", "create", guestPath("debuggee"), layout, "dbg");
  assert.equal(created.status, 0, created.stderr);
  const dumps = path.join(dir, "cli-dumps");
  fs.mkdirSync(dumps);
  const run = cli("run", `${layout}:dbg`, "crash_deep", "2", "--core-dump", dumps);
  assert.equal(run.status, 1, run.stdout + run.stderr);
  assert.match(run.stderr, /GUEST_FAULT.*core dumped: /);
  const core = fs.readdirSync(dumps).find((f) => f.endsWith(".core"));
  assert.ok(core, `a core in ${fs.readdirSync(dumps).join(", ")}`);
  const exported = path.join(dir, "exported.elf");
  const out = cli("snapshot", "export-elf", layout, "dbg", "-o", exported);
  assert.equal(out.status, 0, out.stderr);
  assert.deepEqual(fs.readFileSync(exported), fs.readFileSync(guestPath("debuggee")));
  const r = spawnSync("gdb", ["-batch", "-nx", "-ex", "bt 1", exported, path.join(dumps, core)], { encoding: "utf8", timeout: 60_000 });
  assert.match(r.stdout, new RegExp(`leaf_write \\(depth=4, target=0x0\\) at debuggee\\.c:${lineOf("DEBUGGEE_NULL_WRITE")}`));
});

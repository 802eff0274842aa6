/**
 * Helper children started ahead of need (src/hypervisor/process/warm-children.ts): a new
 * process-backend sandbox takes one instead of spawning, it holds nothing of any sandbox
 * while it waits, a dead one is replaced by a cold start without an error, and the set is
 * bounded by VMLET_WARM_CHILDREN.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, test } from "node:test";
import { ProcessMachine } from "../src/hypervisor/process/process-machine.js";
import { discardWarmChildren, warmChildPids, warmChildrenFilled } from "../src/hypervisor/process/warm-children.js";
import { InvalidConfigError, Sandbox, SandboxBuilder, Snapshot } from "../src/index.js";
import { setVmParking } from "../src/sandbox/parked-vms.js";
import { addOne } from "./snapshot-guest.js";
import { loadAddon } from "../src/native/addon.js";
import { helperPath } from "../src/hypervisor/process/helper-path.js";
import { guestPath } from "./helpers.js";

const build = (): Promise<Sandbox> => new SandboxBuilder().guest(guestPath("snapshot")).backend("process").build();
const childOf = (sb: Sandbox): number | undefined => (sb as unknown as { vm: ProcessMachine }).vm.childPid;

/** Resolves once the pid is gone or a zombie. */
async function ended(pid: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    let state: string;
    try {
      state = fs.readFileSync(`/proc/${pid}/stat`, "latin1").split(") ")[1]![0]!;
    } catch {
      return;
    }
    if (state === "Z" || state === "X") return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`process ${pid} did not end`);
}

afterEach(() => {
  delete process.env.VMLET_WARM_CHILDREN;
  discardWarmChildren();
});

test("a new sandbox takes a waiting child instead of spawning one, and runs on it as on a cold one", async () => {
  await warmChildrenFilled();
  const waiting = warmChildPids();
  assert.equal(waiting.length, 2, "two children wait by default");
  const sb = await build();
  try {
    assert.equal(childOf(sb), waiting[0], "the oldest waiting child runs the sandbox");
    assert.deepEqual(warmChildPids(), waiting.slice(1));
    const snap = sb.snapshot();
    assert.equal(sb.callSync("bump"), 1);
    sb.restore(snap);
    assert.equal(sb.callSync("get_counter"), 0);
  } finally {
    sb.close();
  }
  await warmChildrenFilled();
  assert.equal(warmChildPids().length, 2, "the set is filled again");
});

test("a waiting child holds no guest memory and no fd but its socket (and the stdio it was started with)", async () => {
  const sb = await build(); // some sandbox's memory exists while the children wait
  try {
    await warmChildrenFilled();
    for (const pid of warmChildPids()) {
      const fds = fs.readdirSync(`/proc/${pid}/fd`).map(Number).sort((a, b) => a - b);
      assert.deepEqual(fds.filter((fd) => fd > 2), [3], `child ${pid}: fds ${fds.join(", ")}`);
      assert.match(fs.readlinkSync(`/proc/${pid}/fd/3`), /^socket:/);
      assert.doesNotMatch(fs.readFileSync(`/proc/${pid}/maps`, "latin1"), /memfd:vmlet/, `child ${pid} maps no memfd`);
    }
  } finally {
    sb.close();
  }
});

test("children that died while they waited are passed over: the sandbox starts cold, without an error", async () => {
  await warmChildrenFilled();
  const dead = warmChildPids();
  for (const pid of dead) process.kill(pid, "SIGKILL");
  await Promise.all(dead.map(ended));
  const sb = await build();
  try {
    assert.ok(!dead.includes(childOf(sb)!), "a new child runs the sandbox");
    assert.equal(sb.callSync("bump"), 1);
  } finally {
    sb.close();
  }
});

test("VMLET_WARM_CHILDREN bounds the set: 0 keeps none, 1 keeps one, anything else is an InvalidConfigError", async () => {
  process.env.VMLET_WARM_CHILDREN = "0";
  (await build()).close();
  await warmChildrenFilled();
  assert.deepEqual(warmChildPids(), []);

  process.env.VMLET_WARM_CHILDREN = "1";
  for (let i = 0; i < 3; i++) (await build()).close();
  await warmChildrenFilled();
  assert.equal(warmChildPids().length, 1);

  for (const bad of ["abc", "-1", "1.5", "17"]) {
    process.env.VMLET_WARM_CHILDREN = bad;
    await assert.rejects(build(), (e: unknown) => e instanceof InvalidConfigError && /VMLET_WARM_CHILDREN/.test(e.message), bad);
  }
});

test("a lower bound set at run time is applied at the next take: the extra children are killed", async () => {
  await warmChildrenFilled();
  const before = warmChildPids();
  assert.equal(before.length, 2);
  process.env.VMLET_WARM_CHILDREN = "0";
  const sb = await build();
  try {
    assert.ok(!before.includes(childOf(sb)!), "no waiting child is taken when none may wait");
    await Promise.all(before.map(ended));
    assert.deepEqual(warmChildPids(), []);
  } finally {
    sb.close();
  }
});

/** Counts the sandboxes whose child ProcessMachine spawned itself (cold) while `fn` runs. */
async function coldStarts<T>(fn: () => Promise<T>): Promise<{ result: T; cold: number }> {
  const proto = ProcessMachine.prototype as unknown as { startColdChild: (...args: unknown[]) => unknown };
  const original = proto.startColdChild;
  let cold = 0;
  proto.startColdChild = function (this: unknown, ...args: unknown[]) {
    cold++;
    return original.apply(this, args);
  };
  try {
    return { result: await fn(), cold };
  } finally {
    proto.startColdChild = original;
  }
}

test("a build with no waiting child starts one before it reads the guest, and runs on it (a process's first sandbox)", async () => {
  discardWarmChildren();
  assert.deepEqual(warmChildPids(), []);
  const { result: sb, cold } = await coldStarts(build);
  try {
    assert.equal(cold, 0, "the sandbox ran on a child started as a waiting one");
    assert.equal(sb.callSync("bump"), 1);
  } finally {
    sb.close();
  }
});

test("with VMLET_WARM_CHILDREN=0 a build starts its child itself", async () => {
  discardWarmChildren();
  process.env.VMLET_WARM_CHILDREN = "0";
  const { result: sb, cold } = await coldStarts(build);
  try {
    assert.equal(cold, 1);
    assert.equal(sb.callSync("bump"), 1);
    assert.deepEqual(warmChildPids(), []);
  } finally {
    sb.close();
  }
});

test("a queued spawn's child is taken once; a second take gets null", async () => {
  const addon = loadAddon();
  const ticket = addon.processSpawnWarmLater(helperPath());
  const child = addon.processSpawnTake(ticket, 10_000_000_000, true);
  assert.ok(Array.isArray(child), "the spawn finished within 10 s");
  try {
    assert.equal(addon.processSpawnTake(ticket, 0, false), null);
  } finally {
    addon.processKill(child[0]);
    addon.closeFd(child[2]);
  }
});

test("a spawn that fails throws its errno at the take, once", () => {
  const addon = loadAddon();
  const ticket = addon.processSpawnWarmLater("/nonexistent/vmlet-helper");
  assert.throws(() => addon.processSpawnTake(ticket, 10_000_000_000, true), (e: NodeJS.ErrnoException) => e.code === "ENOENT");
  assert.equal(addon.processSpawnTake(ticket, 0, false), null);
  assert.throws(() => addon.processSpawnTake({} as never, 0, false), /bad arguments/);
  const notASpawn = addon.processRetire(-1, -1, 0, -1, 0); // another kind of ticket (an External too)
  assert.throws(() => addon.processSpawnTake(notASpawn as never, 0, false), /bad arguments/);
  assert.throws(() => addon.processSpawnWarmLater(""), /bad arguments/);
});

test("a ticket nobody takes kills and reaps its child when it is collected", () => {
  const script = `
    import fs from "node:fs";
    const { loadAddon } = await import(${JSON.stringify(new URL("../src/native/addon.js", import.meta.url).href)});
    const { helperPath } = await import(${JSON.stringify(new URL("../src/hypervisor/process/helper-path.js", import.meta.url).href)});
    const children = () => fs.readdirSync("/proc/self/task").flatMap((t) => fs.readFileSync("/proc/self/task/" + t + "/children", "latin1").trim().split(/\\s+/).filter(Boolean));
    let ticket = loadAddon().processSpawnWarmLater(helperPath());
    for (let i = 0; i < 500 && children().length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const before = children().length;
    ticket = undefined;
    for (let i = 0; i < 500 && children().length > 0; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); }
    process.stdout.write(JSON.stringify({ before, after: children().length }));`;
  const r = spawnSync(process.execPath, ["--expose-gc", "--input-type=module", "-e", script], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { before: 1, after: 0 });
});

test("Snapshot.load starts a waiting child when none waits, and the sandbox made from it runs on that one", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-warm-load-"));
  const sb = await build();
  try {
    await sb.snapshot().save(dir, "t");
  } finally {
    sb.close();
  }
  setVmParking(false); // else the closed sandbox's VM would serve the next one
  const saved = process.env.VMLET_BACKEND;
  process.env.VMLET_BACKEND = "process"; // the backend load() starts ahead is the default one
  try {
    discardWarmChildren();
    const { result: restored, cold } = await coldStarts(async () => Sandbox.fromSnapshot(await Snapshot.load(dir, "t"), { backend: "process", hostFunctions: [addOne] }));
    try {
      assert.equal(cold, 0, "the child was one Snapshot.load started");
      assert.equal(restored.callSync("get_counter"), 0);
    } finally {
      restored.close();
    }
  } finally {
    if (saved === undefined) delete process.env.VMLET_BACKEND;
    else process.env.VMLET_BACKEND = saved;
    setVmParking(true);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a take does not wait for a spawn still queued behind others (whileQueued false), and can (true)", () => {
  const addon = loadAddon();
  const tickets = Array.from({ length: 6 }, () => addon.processSpawnWarmLater(helperPath()));
  const children: Array<[number, number, number]> = [];
  try {
    // Spawns take milliseconds each: the last of six is still queued now.
    assert.equal(addon.processSpawnTake(tickets[5]!, 10_000_000_000, false), undefined, "returned at once, not after the others' spawns");
    for (const ticket of tickets) {
      const child = addon.processSpawnTake(ticket, 10_000_000_000, true);
      assert.ok(Array.isArray(child), "each spawn finished within 10 s");
      children.push(child);
    }
  } finally {
    for (const [pidfd, , socket] of children) {
      addon.processKill(pidfd);
      addon.closeFd(socket);
    }
  }
});

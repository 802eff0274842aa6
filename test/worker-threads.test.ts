/**
 * Sandboxes in worker threads: a worker that made sandboxes (on both backends where they
 * work) can exit — after closing them, with one left open, or in the middle of an async
 * call — and the process goes on. A worker's exit makes Node unload the addons it loaded,
 * while the addon's threads (the reaper, a child's runner, a vCPU thread) and callbacks
 * libuv runs (the exit notifier's close) may still need its code (native/addon.c).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import { test } from "node:test";
import { Worker } from "node:worker_threads";
import { pathToFileURL } from "node:url";
import { backendAvailability } from "../src/index.js";
import { guestPath, repoRoot } from "./helpers.js";
import path from "node:path";

const index = pathToFileURL(path.join(repoRoot, "dist/src/index.js")).href;
const backends = (["process", "kvm"] as const).filter((b) => backendAvailability().some((a) => a.name === b && a.works));

/** This process's child processes (of any of its threads). */
function childPids(): number[] {
  return fs.readdirSync("/proc/self/task").flatMap((tid) =>
    fs.readFileSync(`/proc/self/task/${tid}/children`, "latin1").trim().split(/\s+/).filter(Boolean).map(Number));
}

/** Resolves with this process's children that are not in `before`, once there are none (or after 5 s). */
async function childrenBeyond(before: readonly number[]): Promise<number[]> {
  const beyond = (): number[] => childPids().filter((pid) => !before.includes(pid));
  for (let i = 0; i < 500 && beyond().length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  return beyond();
}

/** This process's child processes that are zombies (ended, never reaped). */
function zombieChildren(): number[] {
  return childPids().filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/stat`, "latin1").split(") ")[1]![0] === "Z";
    } catch {
      return false;
    }
  });
}

/** Resolves once no child of this process is a zombie (the reaper thread reaps in the background), or after 5 s. */
async function noZombies(): Promise<number[]> {
  for (let i = 0; i < 500; i++) {
    const zombies = zombieChildren();
    if (zombies.length === 0) return zombies;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return zombieChildren();
}

/** Runs `body` (the module's code after `sb` is built) in a new worker thread; resolves with its exit code. */
function inWorker(backend: string, body: string): Promise<number> {
  const code = `
    import { SandboxBuilder } from ${JSON.stringify(index)};
    const sb = await new SandboxBuilder().guest(${JSON.stringify(guestPath("demo"))}).backend(${JSON.stringify(backend)}).build();
    ${body}
  `;
  const worker = new Worker(code, { eval: true, type: "module" } as unknown as ConstructorParameters<typeof Worker>[1]);
  return new Promise((resolve, reject) => {
    worker.on("error", reject);
    worker.on("exit", resolve);
  });
}

for (const backend of backends) {
  test(`${backend}: workers that made sandboxes exit cleanly, whatever they left behind, and leave no zombie processes`, async () => {
    const before = childPids();
    for (let round = 0; round < 3; round++) {
      assert.equal(await inWorker(backend, `if (await sb.call("add", 1, 2) !== 3) process.exit(3); sb.close();`), 0, "closed");
      assert.equal(await inWorker(backend, `if (sb.callSync("add", 2, 2) !== 4) process.exit(3);`), 0, "left open");
      assert.equal(await inWorker(backend, `sb.call("spin_forever").catch(() => {}); await new Promise((r) => setTimeout(r, 20)); process.exit(0);`), 0, "mid-call");
    }
    assert.deepEqual(await noZombies(), [], "children of exited workers (their sandboxes' and the ones waiting) are reaped");
    assert.deepEqual(await childrenBeyond(before), [], "and none is left running");
  });

  test(`${backend}: a worker that exits while its waiting children are still being spawned leaves none running`, async () => {
    const before = childPids();
    for (let round = 0; round < 3; round++) {
      // The close queues refills on the spawner thread; the worker exits while they run.
      assert.equal(await inWorker(backend, `sb.close(); await new Promise((r) => setTimeout(r, round));`.replace("round", String(round))), 0);
    }
    assert.deepEqual(await childrenBeyond(before), []);
    assert.deepEqual(await noZombies(), []);
  });
}

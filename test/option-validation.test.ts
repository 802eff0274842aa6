/**
 * Every public option is checked before anything is created (issue 11, item 15): a wrong
 * type or range is InvalidConfigError naming the option, never a raw TypeError, a lock
 * wait that never ends, or a Node timer that fires at once (delays above 2^31 − 1 ms).
 * No KVM needed: each check runs before a VM exists (calls use a fake VM that records use).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import {
  createSandbox, InvalidConfigError, Sandbox, SandboxBuilder, SandboxPool, Snapshot, SnapshotLayout, type SandboxConfig,
} from "../src/index.js";
import type { VirtualMachine } from "../src/hypervisor/virtual-machine.js";
import { resolveConfig } from "../src/sandbox/config.js";
import { HostFunctionRegistry } from "../src/sandbox/host-functions.js";
import type { SandboxParts } from "../src/sandbox/sandbox.js";
import { resolveSnapshotConfig } from "../src/sandbox/snapshot-config.js";

const MAX_TIMER_MS = 2 ** 31 - 1;
const nullPrototype = Object.create(null) as never;

/** A label for any value (String() throws for a null-prototype object). */
const show = (value: unknown): string => (typeof value === "object" && value !== null ? "an object" : typeof value === "bigint" ? `${value}n` : String(value));

/** Checks `run` throws or rejects with InvalidConfigError whose message names `option`. */
async function refused(run: () => unknown, option: string, label = option): Promise<void> {
  try {
    await run();
  } catch (error) {
    assert.ok(error instanceof InvalidConfigError, `${label}: ${show(error)} ${(error as Error).message}`);
    assert.ok(error.message.includes(option), `${label}: "${error.message}" does not name ${option}`);
    return;
  }
  assert.fail(`${label} was accepted`);
}

const BAD_TIMEOUTS: unknown[] = ["abc", NaN, Infinity, -1, 0, 2 ** 31, 2 ** 32, 5n, null, nullPrototype];
const BAD_HOST_FUNCTIONS: Array<[unknown, string]> = [
  [5, "hostFunctions"],
  ["h", "hostFunctions"],
  [{ name: "f" }, "hostFunctions"],
  [[null], "hostFunctions[0]"],
  [[5], "hostFunctions[0]"],
  [[{ name: "f", params: [], returns: "void", impl: () => undefined }, undefined], "hostFunctions[1]"],
  [[{ name: 5n, params: [], returns: "void", impl: () => undefined }], "hostFunctions[0]"],
  [[{ name: "f", params: 5, returns: "void", impl: () => undefined }], "hostFunctions[0]"],
  [[{ name: "f", params: [null], returns: "void", impl: () => undefined }], "hostFunctions[0]"],
  [[{ name: "f", params: [], returns: nullPrototype, impl: () => undefined }], "hostFunctions[0]"],
  [[{ name: "f", params: [], returns: "void", impl: 5 }], "hostFunctions[0]"],
];

test("createSandbox and the builder: hostFunctions of the wrong shape are InvalidConfigError naming the entry", async () => {
  for (const [hostFunctions, option] of BAD_HOST_FUNCTIONS) {
    await refused(() => createSandbox({ guest: "never-read.elf", hostFunctions } as unknown as SandboxConfig), option, `hostFunctions ${option}`);
  }
  await refused(() => new SandboxBuilder().guest("never-read.elf").hostFunction(null as never, [], "void", () => undefined).build(), "hostFunctions[0]");
});

test("sandbox config: timeouts up to 2^31 − 1 ms are accepted; more, non-numbers and non-positive ones are refused", async () => {
  for (const option of ["timeoutMs", "initTimeoutMs"] as const) {
    assert.equal(resolveConfig({ guest: "g.elf", [option]: MAX_TIMER_MS })[option], MAX_TIMER_MS);
    for (const value of BAD_TIMEOUTS) await refused(() => createSandbox({ guest: "g.elf", [option]: value } as unknown as SandboxConfig), option, `${option} ${show(value)}`);
  }
});

test("sandbox config: values whose String() throws are still InvalidConfigError", async () => {
  for (const option of ["heapSize", "stackSize", "inputSize", "outputSize", "maxGuestLogLevel", "guestLogger"]) {
    await refused(() => createSandbox({ guest: "g.elf", [option]: nullPrototype } as unknown as SandboxConfig), option);
  }
  await refused(() => createSandbox(null as never), "sandbox config");
  await refused(() => createSandbox([] as never), "sandbox config");
});

test("fromSnapshot config: hostFunctions, timeoutMs, guestLogger and maxGuestLogLevel are checked", async () => {
  for (const [hostFunctions, option] of BAD_HOST_FUNCTIONS) await refused(() => resolveSnapshotConfig({ hostFunctions } as never), option);
  for (const value of BAD_TIMEOUTS) await refused(() => resolveSnapshotConfig({ timeoutMs: value } as never), "timeoutMs", `timeoutMs ${show(value)}`);
  await refused(() => resolveSnapshotConfig({ guestLogger: 5 } as never), "guestLogger");
  await refused(() => resolveSnapshotConfig({ maxGuestLogLevel: nullPrototype }), "maxGuestLogLevel");
  assert.equal(resolveSnapshotConfig({ timeoutMs: MAX_TIMER_MS }).timeoutMs, MAX_TIMER_MS);
  await refused(() => Sandbox.fromSnapshot(5 as never), "fromSnapshot");
});

/** A Snapshot with just the state the option checks read; nothing else of it is touched. */
function fakeSnapshot(): Snapshot {
  return Object.assign(Object.create(Snapshot.prototype) as Snapshot, { state: { hostFunctions: [], maxGuestLogLevel: "info" } });
}

test("SandboxPool options: every field is checked when the pool is made", async () => {
  for (const [hostFunctions, option] of BAD_HOST_FUNCTIONS) await refused(() => new SandboxPool(fakeSnapshot(), { hostFunctions } as never), option);
  for (const option of ["timeoutMs", "acquireTimeoutMs"]) {
    for (const value of BAD_TIMEOUTS) await refused(() => new SandboxPool(fakeSnapshot(), { [option]: value } as never), option, `${option} ${show(value)}`);
  }
  for (const size of [0, 1.5, "2", nullPrototype]) await refused(() => new SandboxPool(fakeSnapshot(), { size } as never), "size", `size ${show(size)}`);
  await refused(() => new SandboxPool(fakeSnapshot(), { guestLogger: 5 } as never), "guestLogger");
  await refused(() => new SandboxPool(fakeSnapshot(), 5 as never), "SandboxPool option");
});

/** A sandbox on a VM that records every member used: option checks must come before any. */
function fakeSandbox(used: string[]): Sandbox {
  const vm = new Proxy({} as VirtualMachine, {
    get: (_t, key) => (used.push(String(key)), key === "memory" ? new Uint8Array(1 << 20) : (): undefined => undefined),
  });
  const parts = {
    vm, memory: {}, system: {}, base: undefined, logger: () => undefined, maxGuestLogLevel: "info", timeoutMs: undefined,
    layout: { controlBlock: 0x10000, input: { address: 0x20000, size: 4096 }, output: { address: 0x22000, size: 4096 }, memorySize: 1 << 20 },
    lineage: { id: "fake", guestElf: new Uint8Array(), generation: 0 },
    functions: new Map([["f", { name: "f", index: 0, params: [], returns: "void" }]]),
    hostFunctions: new HostFunctionRegistry(),
  } as unknown as SandboxParts;
  return new Sandbox(parts);
}

test("call options: timeoutMs and signal are checked before the guest runs", async () => {
  const used: string[] = [];
  const sb = fakeSandbox(used);
  used.length = 0;
  for (const value of BAD_TIMEOUTS) {
    await refused(() => sb.callSync("f", { timeoutMs: value } as never), "timeoutMs", `callSync timeoutMs ${show(value)}`);
    await refused(() => sb.call("f", { timeoutMs: value } as never), "timeoutMs", `call timeoutMs ${show(value)}`);
  }
  await refused(() => sb.callSync("f", { signal: 5 } as never), "signal");
  await refused(() => sb.callSync("f", { timeout: 5 } as never), "timeout");
  assert.deepEqual(used, [], "the VM was used");
  assert.equal(sb.poisoned, undefined);
});

test("save, load and layout tools: options are checked before any file is touched", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-options-"));
  try {
    const dir = path.join(root, "layout");
    const snap = fakeSnapshot();
    for (const value of ["abc", NaN, Infinity, -1, 2 ** 31, null]) {
      await refused(() => snap.save(dir, "t", { lockTimeoutMs: value } as never), "lockTimeoutMs", `save lockTimeoutMs ${show(value)}`);
      await refused(() => new SnapshotLayout(dir).gc({ lockTimeoutMs: value } as never), "lockTimeoutMs", `gc lockTimeoutMs ${show(value)}`);
      await refused(() => new SnapshotLayout(dir).remove("t", { lockTimeoutMs: value } as never), "lockTimeoutMs", `remove lockTimeoutMs ${show(value)}`);
    }
    await refused(() => snap.save(dir, "t", { guestName: 5 } as never), "guestName");
    await refused(() => snap.save(dir, "t", { onProgress: "yes" } as never), "onProgress");
    await refused(() => snap.save(dir, "t", { lockTimeout: 5 } as never), "lockTimeout");
    await refused(() => snap.save(dir, "t", 5 as never), "save option");
    assert.equal(fs.existsSync(dir), false, "a refused save created the layout");

    await refused(() => Snapshot.load(5 as never, "t"), "directory");
    await refused(() => Snapshot.checkedLoad(dir, "t", { onProgress: 5 } as never), "onProgress");
    await refused(() => Snapshot.checkedLoad(dir, "t", { verify: false } as never), "verify");
    await refused(() => Snapshot.checkedLoad(dir, "t", 5 as never), "checkedLoad option");
    await refused(() => new SnapshotLayout(dir).verify({ onProgress: 5 } as never), "onProgress");
    assert.equal(fs.existsSync(dir), false);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

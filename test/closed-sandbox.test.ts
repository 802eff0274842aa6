/**
 * A closed sandbox refuses every public method with SandboxClosedError and touches
 * nothing (issue 11, item 6): its VM may already serve another sandbox. The method list
 * is typed from Sandbox itself, so a new public method does not compile here until it
 * is covered. Checked on a fake VM that records every use (runs without KVM), and with
 * a real parked VM reused by a second sandbox (needs KVM).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Sandbox, SandboxBuilder, SandboxClosedError, type Snapshot } from "../src/index.js";
import type { VirtualMachine } from "../src/hypervisor/virtual-machine.js";
import type { SandboxParts } from "../src/sandbox/sandbox.js";
import { fakeSandboxParts } from "./fake-sandbox.js";
import { guestPath } from "./helpers.js";

type MethodName<T> = { [K in keyof T]: T[K] extends (...args: never[]) => unknown ? K : never }[keyof T];

/** Every public method but close() (idempotent by contract), used as an open sandbox would accept. */
const USES: Record<Exclude<MethodName<Sandbox>, "close">, (sb: Sandbox, snap: Snapshot) => unknown> = {
  callSync: (sb) => sb.callSync("log_enabled", 3),
  call: (sb) => sb.call("log_enabled", 3),
  stats: (sb) => sb.stats(),
  typed: (sb) => sb.typed<{ log_enabled(level: number): boolean }>().callSync("log_enabled", 3),
  registerHostFunction: (sb) => sb.registerHostFunction("h_extra", [], "void", () => undefined),
  setMaxGuestLogLevel: (sb) => sb.setMaxGuestLogLevel("trace"),
  kill: (sb) => sb.kill(),
  snapshot: (sb) => sb.snapshot(),
  restore: (sb, snap) => sb.restore(snap),
  applyHostFields: (sb) => sb.applyHostFields(),
  coreDump: (sb) => sb.coreDump("/nonexistent/vmlet-core"),
  memoryProfile: (sb) => sb.memoryProfile(),
  debug: (sb) => sb.debug(),
};

/** Runs `use` and checks it threw (or rejected with) SandboxClosedError. */
async function refused(name: string, use: () => unknown): Promise<void> {
  let outcome: unknown;
  try {
    outcome = await use();
  } catch (error) {
    assert.ok(error instanceof SandboxClosedError, `${name}: ${String(error)}`);
    assert.equal(error.code, "SANDBOX_CLOSED");
    return;
  }
  assert.fail(`${name} on a closed sandbox returned ${String(outcome)} instead of throwing`);
}

/** A VM that records the name of every member used on it. */
function recordingVm(used: string[]): VirtualMachine {
  const memory = new Uint8Array(1 << 20);
  const plain: Record<string, unknown> = { memory, backend: { name: "kvm", flavour: "hardware" }, restorePending: false, guestXcr0: 0 };
  return new Proxy({} as VirtualMachine, {
    get: (_target, key) => {
      used.push(String(key));
      return typeof key === "string" && key in plain ? plain[key] : (): unknown => undefined;
    },
  });
}

function fakeParts(vm: VirtualMachine): SandboxParts {
  return fakeSandboxParts(vm, [{ name: "log_enabled", index: 0, params: ["i32"], returns: "bool" }]);
}

test("every public method of a closed sandbox throws SandboxClosedError and touches neither its VM nor its settings", async () => {
  const used: string[] = [];
  const sb = new Sandbox(fakeParts(recordingVm(used)));
  sb.close();
  used.length = 0;
  for (const [name, use] of Object.entries(USES)) await refused(name, () => use(sb, {} as Snapshot));
  assert.deepEqual(used, [], "the VM was used after close()");
  assert.equal(sb.maxGuestLogLevel, "info");
  assert.deepEqual(sb.hostFunctions, []);
  assert.doesNotThrow(() => sb.close(), "close() stays idempotent");
});

describe("a closed sandbox and the sandbox that reuses its VM", () => {
  let snap: Snapshot;
  before(async () => {
    const origin = await new SandboxBuilder().guest(guestPath("types")).maxGuestLogLevel("warn").build();
    snap = origin.snapshot();
    origin.close();
  });
  let successor: Sandbox | undefined;
  after(() => successor?.close());

  test("the closed one refuses everything, and the successor keeps its log level, host functions and calls", async () => {
    const closed = await Sandbox.fromSnapshot(snap);
    closed.close(); // parks its VM
    successor = await Sandbox.fromSnapshot(snap); // takes the parked VM
    for (const [name, use] of Object.entries(USES)) await refused(name, () => use(closed, snap));
    assert.equal(successor.maxGuestLogLevel, "warn");
    assert.deepEqual([1, 2, 3, 4, 5].map((level) => successor!.callSync("log_enabled", level)), [true, true, false, false, false]);
    assert.deepEqual(successor.hostFunctions, []);
    assert.equal(successor.poisoned, undefined);
  });
});

/**
 * Poisoning follows where the guest stopped, not only an error's code: any error raised
 * while the guest is stopped inside a call (its last run ended somewhere other than READY,
 * or the run itself failed) poisons the sandbox, even one whose code would not; an error
 * before the guest ran leaves it usable. Checked on a fake VM whose runs fail with a typed
 * error of a non-poisoning code (runs without KVM).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ArgumentMismatchError, InvalidConfigError, PoisonedError, Sandbox } from "../src/index.js";
import type { VirtualMachine, VmExit } from "../src/hypervisor/virtual-machine.js";
import type { SandboxParts } from "../src/sandbox/sandbox.js";
import { fakeSandboxParts } from "./fake-sandbox.js";

/** A VM whose every run fails with `error` (sync and async), and that does nothing else. */
function failingVm(error: Error): VirtualMachine {
  const noop = (): undefined => undefined;
  const fake: Partial<VirtualMachine> = {
    memory: new Uint8Array(1 << 20),
    backend: { name: "process", flavour: "seccomp" },
    guestXcr0: 0,
    restorePending: false,
    clearInterrupt: noop,
    beforeHostWrite: noop,
    run: (): VmExit => {
      throw error;
    },
    runAsync: (): Promise<VmExit> => Promise.reject(error),
    destroy: noop,
  };
  return fake as VirtualMachine;
}

function parts(vm: VirtualMachine): SandboxParts {
  return fakeSandboxParts(vm, [{ name: "add", index: 0, params: ["i32", "i32"], returns: "i32" }]);
}

test("a non-poisoning error from a run poisons the sandbox: the guest stopped mid-call (callSync)", () => {
  const error = new InvalidConfigError("from inside a run");
  const sb = new Sandbox(parts(failingVm(error)));
  assert.throws(() => sb.callSync("add", 1, 2), (e: unknown) => e === error);
  assert.equal(sb.poisoned, error);
  assert.throws(() => sb.callSync("add", 1, 2), PoisonedError);
});

test("the same through call() (the run on the sandbox's thread)", async () => {
  const error = new InvalidConfigError("from inside an async run");
  const sb = new Sandbox(parts(failingVm(error)));
  await assert.rejects(sb.call("add", 1, 2), (e: unknown) => e === error);
  assert.equal(sb.poisoned, error);
});

test("an error before the guest runs (a wrong argument) leaves the sandbox usable", () => {
  const sb = new Sandbox(parts(failingVm(new InvalidConfigError("never reached"))));
  assert.throws(() => sb.callSync("add", 1, "x" as unknown as number), ArgumentMismatchError);
  assert.equal(sb.poisoned, undefined);
});

/**
 * node:test's test, describe and hooks for tests of the KVM backend itself (every other
 * test runs on whichever backend VMLET_BACKEND or "auto" picks). Where the machine has no
 * usable KVM (no /dev/kvm, no permission, or a device that does not answer KVM ioctls),
 * or the run is the process backend's, every test and suite declared through these is
 * skipped with the reason printed and
 * `before` hooks do not run (`after` hooks, which only clean up, still do); elsewhere
 * they are node:test's own.
 */
import * as nodeTest from "node:test";
import { backendInfo } from "../src/hypervisor/backend.js";

/** Why KVM tests cannot run here, or undefined when they can. */
export const kvmSkipReason: string | undefined = probeKvm();

function probeKvm(): string | undefined {
  if (process.env.VMLET_BACKEND === "process") return "KVM-only test; this run uses the process backend (VMLET_BACKEND=process)";
  try {
    backendInfo("kvm");
    return undefined;
  } catch (error) {
    return `needs KVM: ${(error as Error).message}`;
  }
}

type TestFn = (t: nodeTest.TestContext) => unknown;
type SuiteFn = (s: nodeTest.SuiteContext) => unknown;
type HookFn = (...args: never[]) => unknown;

let announced = false;
function announce(): void {
  if (announced || kvmSkipReason === undefined) return;
  announced = true;
  console.log(`# skipping KVM tests: ${kvmSkipReason}`);
}

function gate<F>(declare: (name: string, options: nodeTest.TestOptions, fn: F) => unknown) {
  return (name: string, optionsOrFn: nodeTest.TestOptions | F, maybeFn?: F): void => {
    const [options, fn] = typeof optionsOrFn === "function" ? [{}, optionsOrFn as F] : [optionsOrFn as nodeTest.TestOptions, maybeFn as F];
    announce();
    void declare(name, kvmSkipReason === undefined ? options : { ...options, skip: kvmSkipReason }, fn);
  };
}

function gateHook(hook: (fn: HookFn) => void) {
  return (fn: HookFn): void => {
    if (kvmSkipReason === undefined) hook(fn);
  };
}

export const test = gate<TestFn>(nodeTest.test as never);
export const describe = gate<SuiteFn>(nodeTest.describe as never);
export const before = gateHook(nodeTest.before as never);
export const after = nodeTest.after;
export const beforeEach = gateHook(nodeTest.beforeEach as never);
export const afterEach = nodeTest.afterEach;

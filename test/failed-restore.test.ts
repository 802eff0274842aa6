/**
 * A restore (or snapshot) that fails once it has begun changing the sandbox poisons it
 * (issue 11, item 16): the caller gets a typed error, calls refuse with POISONED, and a
 * later successful restore brings back exactly the snapshot's state. Failures are injected
 * into the sandbox's own VM object: a native error (a plain Error), a backend's typed
 * error, a failed host-field write, on every restore path (in place, deferred, remapped).
 */
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import { HypervisorError, type Sandbox, type Snapshot, VmletError } from "../src/index.js";
import type { VirtualMachine } from "../src/hypervisor/virtual-machine.js";
import { buildSnapshotGuest } from "./snapshot-guest.js";

type Method = "restoreFrom" | "deferRestore" | "setCpuState" | "writeU32" | "configure" | "takeDirtyPages";

const vmOf = (sb: Sandbox): VirtualMachine => (sb as unknown as { vm: VirtualMachine }).vm;

/** Makes `method` of the sandbox's VM throw `error` on its next use only. */
function failOnce(sb: Sandbox, method: Method, error: unknown): void {
  const vm = vmOf(sb) as unknown as Record<Method, unknown>;
  vm[method] = (): never => {
    delete vm[method]; // back to the class's own method
    throw error;
  };
}

const nativeError = (): Error => Object.assign(new Error("KVM_SET_XSAVE: Invalid argument"), { code: "EINVAL" });

function isPoisonedCall(e: unknown): boolean {
  assert.ok(e instanceof VmletError, String(e));
  assert.equal(e.code, "POISONED", e.message);
  return true;
}

let sb: Sandbox;
let snap: Snapshot;
beforeEach(async () => {
  sb = await buildSnapshotGuest();
  sb.callSync("bump");
  sb.callSync("set_value", 2.5);
  snap = sb.snapshot();
  sb.callSync("bump");
  sb.callSync("set_value", 7);
});
afterEach(() => sb.close());

/** Poisoned by `failure`; then a clean restore gives back the snapshot's state. */
function assertPoisonedThenRecovers(failure: VmletError, code: string): void {
  assert.equal(failure.code, code, failure.message);
  assert.equal(sb.poisoned, failure);
  assert.throws(() => sb.callSync("get_counter"), isPoisonedCall);
  assert.throws(() => sb.snapshot(), isPoisonedCall);
  sb.restore(snap);
  assert.equal(sb.poisoned, undefined);
  assert.equal(sb.callSync("get_counter"), 1);
  assert.equal(sb.callSync("get_value"), 2.5);
  assert.equal(sb.callSync("bump"), 2, "and calls keep working");
}

/** The error `use` threw, which must be a VmletError. */
function thrown(use: () => unknown): VmletError {
  try {
    use();
  } catch (error) {
    assert.ok(error instanceof VmletError, `a VmletError, got ${String(error)}`);
    return error;
  }
  assert.fail("did not throw");
}

describe("a restore that fails part-way poisons the sandbox", () => {
  test("a native error while copying pages back: HYPERVISOR", () => {
    failOnce(sb, "restoreFrom", nativeError());
    assertPoisonedThenRecovers(thrown(() => sb.restore(snap)), "HYPERVISOR");
  });

  test("a backend's typed error is thrown as it is", () => {
    const error = new HypervisorError("KVM_SET_XSAVE", "EINVAL", "Invalid argument");
    failOnce(sb, "restoreFrom", error);
    const failure = thrown(() => sb.restore(snap));
    assert.equal(failure, error);
    assertPoisonedThenRecovers(failure, "HYPERVISOR");
  });

  test("a failed host-field write after the copy", () => {
    failOnce(sb, "writeU32", nativeError());
    const failure = thrown(() => sb.restore(snap));
    assert.throws(() => sb.applyHostFields(), isPoisonedCall, "no base to take host fields from until a restore succeeds");
    assertPoisonedThenRecovers(failure, "HYPERVISOR");
  });

  test("a deferred restore that cannot be queued", () => {
    failOnce(sb, "deferRestore", nativeError());
    assertPoisonedThenRecovers(thrown(() => sb.restore(snap, { deferred: true })), "HYPERVISOR");
  });

  test("a remap onto another snapshot whose CPU state cannot be set", () => {
    const other = sb.snapshot(); // the sandbox's base is now `other`: restoring `snap` remaps
    sb.callSync("bump");
    failOnce(sb, "setCpuState", nativeError());
    assertPoisonedThenRecovers(thrown(() => sb.restore(snap)), "HYPERVISOR");
    sb.restore(other);
    assert.equal(sb.callSync("get_counter"), 2);
  });

  test("a poisoned sandbox whose system registers cannot be set again", () => {
    failOnce(sb, "restoreFrom", nativeError());
    thrown(() => sb.restore(snap));
    failOnce(sb, "configure", nativeError());
    assertPoisonedThenRecovers(thrown(() => sb.restore(snap)), "HYPERVISOR");
  });

  test("checks that refuse before anything changes do not poison", () => {
    assert.throws(() => sb.restore({} as Snapshot), (e: unknown) => e instanceof VmletError && e.code === "INVALID_CONFIG");
    assert.equal(sb.poisoned, undefined);
    assert.equal(sb.callSync("get_counter"), 2);
  });
});

describe("a snapshot that fails part-way poisons the sandbox", () => {
  test("the dirty-page record cannot be read: HYPERVISOR, and the restore after it remaps", () => {
    failOnce(sb, "takeDirtyPages", nativeError());
    assertPoisonedThenRecovers(thrown(() => sb.snapshot()), "HYPERVISOR");
  });
});

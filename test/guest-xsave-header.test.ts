/**
 * The SDK's FPU area lies in stack memory earlier calls used (issue 11, item 18).
 * vmlet__ready (guest/src/start.S) must clear the whole XSAVE header, XSTATE_BV included,
 * before xsave64: xsave64 keeps the XSTATE_BV bits of components outside its mask, and
 * xrstor64 in vmlet__resume raises #GP on any bit outside XCR0. `dirty_stack` fills the
 * stack below the call with 0xff first. Meaningful wherever guests use xsave64 (PVM, and
 * the process backend, where the guest runs with the host's XCR0); on hardware KVM the
 * SDK uses fxsave64 and the calls must work all the same.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Sandbox } from "../src/index.js";
import { guestXsaveMask } from "../src/hypervisor/fpu-reload.js";
import type { VirtualMachine } from "../src/hypervisor/virtual-machine.js";
import { addOne, buildSnapshotGuest } from "./snapshot-guest.js";

const vmOf = (sb: Sandbox): VirtualMachine => (sb as unknown as { vm: VirtualMachine }).vm;

test("calls keep working after a call left garbage where the next XSAVE header goes", async (t) => {
  const sb = await buildSnapshotGuest();
  try {
    const mask = guestXsaveMask(vmOf(sb).guestXcr0);
    if (mask === 0) t.diagnostic("this backend's guests save with fxsave64: the call sequence runs, the XSAVE path is not exercised");
    assert.equal(sb.callSync("dirty_stack"), 16384);
    assert.equal(sb.callSync("bump"), 1, "the call after the dirtying call");
    assert.equal(sb.callSync("dirty_stack"), 16384);
    const snap = sb.snapshot(); // resumes from an area saved over the garbage
    assert.equal(sb.callSync("bump"), 2);
    sb.restore(snap);
    assert.equal(sb.callSync("get_counter"), 1, "after a restore");
    const resumed = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
    try {
      assert.equal(resumed.callSync("bump"), 2, "in a sandbox made from the snapshot");
    } finally {
      resumed.close();
    }
  } finally {
    sb.close();
  }
});

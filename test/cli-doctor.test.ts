/**
 * `vmlet doctor`, run as a user runs it: it says whether this machine can run sandboxes,
 * which KVM flavour it has, how restores learn dirty pages and how guests save their FPU
 * state, and what it says matches what sandboxes really do here.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { test } from "./kvm.js";
import { CB, CONTROL_BLOCK_ADDRESS } from "../src/abi/constants.js";
import { backendDetails, backendInfo } from "../src/hypervisor/backend.js";
import { Sandbox } from "../src/index.js";
import { repoRoot } from "./helpers.js";
import { buildSnapshotGuest, addOne } from "./snapshot-guest.js";

const vmOf = (sb: Sandbox): { memory: Uint8Array; dirtyTracker: { mode: number } } =>
  (sb as unknown as { vm: { memory: Uint8Array; dirtyTracker: { mode: number } } }).vm;

test("doctor: exit 0, the flavour, dirty pages, guest FPU state and a working test sandbox", () => {
  const r = spawnSync(process.execPath, [path.join(repoRoot, "dist/src/cli/main.js"), "doctor"], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const lines = r.stdout.trim().split("\n");
  const details = backendDetails();
  assert.equal(lines[0], "/dev/kvm: present");
  assert.match(lines[1]!, new RegExp(`^backend: kvm, flavour ${backendInfo().flavour} `));
  assert.match(lines[2]!, details.dirtyPages === "ring" ? /^dirty pages: KVM dirty ring / : /^dirty pages: KVM dirty bitmap /);
  assert.match(lines[3]!, details.xsaveMask === 0 ? /^guest FPU state: fxsave64 / : new RegExp(`^guest FPU state: xsave64 of XCR0 0x${details.xsaveMask.toString(16)} `));
  assert.match(lines[3]!, details.reloadSkipsIoctl ? /restores skip KVM_SET_XSAVE$/ : /restores load it with KVM_SET_XSAVE$/);
  assert.equal(lines[4], "test sandbox: ok");
});

test("what doctor reports is what sandboxes do: the dirty-page source and the FPU mask guests get", async () => {
  const details = backendDetails();
  const sb = await buildSnapshotGuest();
  const snap = sb.snapshot();
  const other = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
  try {
    for (const s of [sb, other]) {
      const { memory, dirtyTracker } = vmOf(s);
      assert.equal(dirtyTracker.mode === 2 ? "ring" : "bitmap", details.dirtyPages);
      assert.equal(new DataView(memory.buffer, memory.byteOffset).getUint32(CONTROL_BLOCK_ADDRESS + CB.fpuXsaveMask, true), details.xsaveMask);
    }
    if (backendInfo().flavour === "pvm") assert.equal(details.guestXcr0 !== 0, true, "under PVM guests run with the host's XCR0");
  } finally {
    sb.close();
    other.close();
  }
});

/**
 * `vmlet doctor`, run as a user runs it: it says which backends work here, which one
 * sandboxes use, how restores learn dirty pages and how guests save their FPU state, and
 * what it says matches what sandboxes really do here.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { test } from "node:test";
import { CB, CONTROL_BLOCK_ADDRESS } from "../src/abi/constants.js";
import { existsSync } from "node:fs";
import { backendAvailability, backendDetails, backendInfo } from "../src/hypervisor/backend.js";
import { Sandbox } from "../src/index.js";
import { repoRoot } from "./helpers.js";
import { buildSnapshotGuest, addOne } from "./snapshot-guest.js";

const vmOf = (sb: Sandbox): { memory: Uint8Array; dirtyTracker: { mode: number } | undefined } =>
  (sb as unknown as { vm: { memory: Uint8Array; dirtyTracker: { mode: number } | undefined } }).vm;

test("doctor: exit 0, each backend, the one sandboxes use, dirty pages, guest FPU state and a working test sandbox", () => {
  const r = spawnSync(process.execPath, [path.join(repoRoot, "dist/src/cli/main.js"), "doctor"], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const lines = r.stdout.trim().split("\n").filter((line) => !line.startsWith("  "));
  const details = backendDetails();
  const info = backendInfo();
  assert.equal(lines[0], `/dev/kvm: ${existsSync("/dev/kvm") ? "present" : "missing"}`);
  for (const [i, b] of backendAvailability().entries()) {
    assert.match(lines[1 + i]!, b.works ? new RegExp(`^backend ${b.name}: works; `) : new RegExp(`^backend ${b.name}: not usable: `));
  }
  assert.match(lines[3]!, new RegExp(`^sandboxes use: ${info.name}, flavour ${info.flavour}`));
  const dirty = { ring: /^dirty pages: KVM dirty ring /, bitmap: /^dirty pages: KVM dirty bitmap /, compare: /^dirty pages: compared with the snapshot / }[details.dirtyPages];
  assert.match(lines[4]!, dirty);
  assert.match(lines[5]!, details.xsaveMask === 0 ? /^guest FPU state: fxsave64 / : new RegExp(`^guest FPU state: xsave64 of XCR0 0x${details.xsaveMask.toString(16)} `));
  if (info.name === "kvm") assert.match(lines[5]!, details.reloadSkipsIoctl ? /restores skip KVM_SET_XSAVE$/ : /restores load it with KVM_SET_XSAVE$/);
  assert.equal(lines[6], "test sandbox: ok");
});

test("doctor without a usable KVM says what to do about it, and still runs a sandbox on the process backend", () => {
  const kvm = backendAvailability().find((b) => b.name === "kvm")!;
  const r = spawnSync(process.execPath, [path.join(repoRoot, "dist/src/cli/main.js"), "doctor"], {
    encoding: "utf8", timeout: 60_000, env: { ...process.env, VMLET_BACKEND: "process" },
  });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^sandboxes use: process, flavour seccomp \(VMLET_BACKEND\)$/m);
  assert.match(r.stdout, /^test sandbox: ok$/m);
  if (!kvm.works) assert.match(r.stdout, /--device \/dev\/kvm/);
});

test("doctor --json: one document saying the same as the text", () => {
  const r = spawnSync(process.execPath, [path.join(repoRoot, "dist/src/cli/main.js"), "doctor", "--json"], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const doc = JSON.parse(r.stdout) as {
    ok: boolean; kvmDevice: string; backends: Array<{ name: string; works: boolean; why: string | null }>; kvmHints: string[];
    selected: { name: string; flavour: string; chosenBy: string }; dirtyPages: { source: string }; guestFpu: { xsaveMask: number }; testSandbox: string; error: unknown;
  };
  const availability = backendAvailability();
  assert.equal(doc.ok, true);
  assert.equal(doc.kvmDevice, existsSync("/dev/kvm") ? "present" : "missing");
  assert.deepEqual(doc.backends.map((b) => [b.name, b.works, b.why === null]), availability.map((b) => [b.name, b.works, b.works]));
  assert.equal(doc.kvmHints.length > 0, !availability.find((b) => b.name === "kvm")!.works);
  assert.deepEqual({ name: doc.selected.name, flavour: doc.selected.flavour }, { ...backendInfo() });
  assert.equal(doc.selected.chosenBy, process.env.VMLET_BACKEND ? "VMLET_BACKEND" : "auto");
  assert.equal(doc.dirtyPages.source, backendDetails().dirtyPages);
  assert.equal(doc.guestFpu.xsaveMask, backendDetails().xsaveMask);
  assert.equal(doc.testSandbox, "ok");
  assert.equal(doc.error, null);
});

test("what doctor reports is what sandboxes do: the dirty-page source and the FPU mask guests get", async () => {
  const details = backendDetails();
  const sb = await buildSnapshotGuest();
  const snap = sb.snapshot();
  const other = await Sandbox.fromSnapshot(snap, { hostFunctions: [addOne] });
  try {
    for (const s of [sb, other]) {
      const { memory, dirtyTracker } = vmOf(s);
      const source = dirtyTracker === undefined ? "compare" : dirtyTracker.mode === 2 ? "ring" : "bitmap";
      assert.equal(source, details.dirtyPages);
      assert.equal(new DataView(memory.buffer, memory.byteOffset).getUint32(CONTROL_BLOCK_ADDRESS + CB.fpuXsaveMask, true), details.xsaveMask);
    }
    if (backendInfo().flavour === "pvm") assert.equal(details.guestXcr0 !== 0, true, "under PVM guests run with the host's XCR0");
  } finally {
    sb.close();
    other.close();
  }
});

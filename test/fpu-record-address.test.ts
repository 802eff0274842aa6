/**
 * The host rewrites a snapshot's FPU record (4 bytes at RSP + 464) when the way the guest
 * saved its FPU state does not work on this host (hypervisor/fpu-reload.ts). RSP is the
 * guest's: the host writes there only when the whole FPU area lies inside the guest's
 * stack (issue 11, item 4). A loaded snapshot resuming at vmlet__resume with its area
 * elsewhere is SNAPSHOT_INVALID; an in-memory snapshot with a crafted RSP is refused by
 * fromSnapshot and restore, before anything is written.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { Sandbox, Snapshot, SnapshotLayout, VmletError } from "../src/index.js";
import { FPU_AREA, FPU_MARK, isResumeSequence, RESUME_SEQUENCE } from "../src/hypervisor/fpu-reload.js";
import type { CpuState } from "../src/hypervisor/virtual-machine.js";
import type { GuestMemory } from "../src/mem/guest-memory.js";
import type { HostWrites } from "../src/mem/host-writes.js";
import { SYSTEM } from "../src/mem/layout.js";
import { configText, copyGolden, GOLDEN, jsonErrorCode, replaceConfig, vmlet, type Obj } from "./layout-copies.js";
import { addOne, buildSnapshotGuest } from "./snapshot-guest.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-fpu-record-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const RSP = 6;
/** The golden tag taken by an SDK that saves its FPU state at vmlet__ready. */
const RESUMING = "xsave-resume-v1";

function isBadRsp(e: unknown): boolean {
  assert.ok(e instanceof VmletError, `a VmletError, got ${String(e)}`);
  assert.equal(e.code, "SNAPSHOT_INVALID", e.message);
  assert.match(e.message, /cpuState\.gprs\[rsp\]/);
  return true;
}

const withRsp = (cpu: CpuState, rsp: bigint): CpuState => ({ ...cpu, gprs: cpu.gprs.map((v, i) => (i === RSP ? rsp : v)) });

describe("a loaded snapshot resuming at vmlet__resume keeps its FPU area inside the stack", () => {
  test("the golden snapshot resumes there, with its area inside the stack", async () => {
    const snap = await Snapshot.load(GOLDEN, RESUMING);
    const rsp = snap.state.cpu.gprs[RSP]!;
    assert.ok(isResumeSequence(snap.image.read(Number(snap.state.cpu.rip), RESUME_SEQUENCE.length)));
    assert.ok(rsp >= BigInt(snap.state.layout.stack.bottom) && rsp + BigInt(FPU_AREA) <= BigInt(snap.state.layout.stack.top));
  });

  test("RSP 64 bytes below the stack top (inside the stack, its area reaching the page tables) is refused everywhere", async () => {
    const dir = copyGolden(root);
    const config = JSON.parse(configText(dir, RESUMING)) as Obj;
    const layout = config.layout as { stack: { top: number } };
    const cpu = config.cpuState as { gprs: string[] };
    cpu.gprs[RSP] = `0x${(layout.stack.top - 64).toString(16)}`;
    replaceConfig(dir, JSON.stringify(config), RESUMING);
    await assert.rejects(Snapshot.load(dir, RESUMING), isBadRsp);
    await assert.rejects(Snapshot.checkedLoad(dir, RESUMING), isBadRsp);
    const report = await new SnapshotLayout(dir).verify();
    assert.deepEqual(report.problems.map((p) => p.ref), [RESUMING]);
    isBadRsp(report.problems[0]!.error);
    const run = vmlet(["run", `${dir}:${RESUMING}`, "get_marker", "--json"]);
    assert.equal(run.status, 1, run.stderr);
    assert.equal(jsonErrorCode(run), "SNAPSHOT_INVALID");
  });
});

interface Internals {
  parts: { memory: GuestMemory };
  hostWrites: HostWrites;
}
const internals = (sb: Sandbox): Internals => sb as unknown as Internals;

describe("an in-memory snapshot whose FPU record lies outside the stack", () => {
  // RSP 0x1e40 puts the record on IDT gate 1 (0x2010), whose bytes are no mask any host's
  // xrstor64 takes: without the check the host writes 4 zero bytes into the IDT.
  const hostileRsp = BigInt(SYSTEM.idt + 16 - FPU_MARK);

  test("is refused by fromSnapshot and by restore, which writes nothing and does not poison", async () => {
    const sb = await buildSnapshotGuest();
    try {
      const snap = sb.snapshot();
      assert.ok(isResumeSequence(snap.image.read(Number(snap.state.cpu.rip), RESUME_SEQUENCE.length)), "the SDK guest resumes at vmlet__resume");
      const crafted = new Snapshot({ ...snap.state, cpu: withRsp(snap.state.cpu, hostileRsp) }, snap.image, snap.lineage);
      await assert.rejects(Sandbox.fromSnapshot(crafted, { hostFunctions: [addOne] }), isBadRsp);
      const gate = internals(sb).parts.memory.bytes.slice(SYSTEM.idt + 16, SYSTEM.idt + 32);
      sb.callSync("bump");
      assert.throws(() => sb.restore(crafted), isBadRsp);
      assert.equal(sb.poisoned, undefined, "refused before anything changed");
      assert.deepEqual(internals(sb).parts.memory.bytes.slice(SYSTEM.idt + 16, SYSTEM.idt + 32), gate, "IDT gate 1 untouched");
      assert.equal(sb.callSync("get_counter"), 1, "the sandbox kept its state");
      sb.restore(snap);
      assert.equal(sb.callSync("get_counter"), 0);
    } finally {
      sb.close();
    }
  });

  test("a record inside the stack that does not fit this host is still rewritten, and calls work", async () => {
    const sb = await buildSnapshotGuest();
    try {
      sb.callSync("bump");
      const rsp = Number(sb.snapshot().state.cpu.gprs[RSP]!);
      // As if the snapshot came from a host whose guests saved a component this one lacks (bit 8: no host's XCR0 has it).
      internals(sb).hostWrites.mark(rsp + FPU_MARK, 4);
      new DataView(internals(sb).parts.memory.bytes.buffer).setUint32(rsp + FPU_MARK, 0x100, true);
      sb.setMaxGuestLogLevel("warn"); // changes the sandbox, so snapshot() takes a new one
      const foreign = sb.snapshot();
      assert.equal(new DataView(foreign.image.read(rsp + FPU_MARK, 4).buffer).getUint32(0, true), 0x100);
      const resumed = await Sandbox.fromSnapshot(foreign, { hostFunctions: [addOne] });
      try {
        assert.equal(resumed.callSync("bump"), 2);
        assert.equal(resumed.callSync("get_counter"), 2);
      } finally {
        resumed.close();
      }
    } finally {
      sb.close();
    }
  });
});

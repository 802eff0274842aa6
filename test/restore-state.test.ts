/**
 * What a restore and a snapshot get, checked where they get it rather than through what a
 * guest later reads back:
 * - the pages the host wrote (CALL arguments, control-block words), which a hardware KVM
 *   dirty log never shows and the process backend's child log does not either: they must
 *   reach restoreFrom / deferRestore as host pages, and a snapshot over a base must copy
 *   them even when the backend's log names none of them;
 * - the CPU state: after a restore the vCPU's registers and FPU image are the snapshot's,
 *   field by field, and a clean call leaves the guest where it parks (RIP, RSP).
 * Runs on every backend.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ArgumentMismatchError, Sandbox, SandboxBuilder, type Snapshot } from "../src/index.js";
import type { CpuState, VirtualMachine } from "../src/hypervisor/virtual-machine.js";
import type { MemoryLayout } from "../src/mem/layout.js";
import { guestPath } from "./helpers.js";

const PAGE = 4096;
const GPR_NAMES = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];
const vmOf = (sb: Sandbox): VirtualMachine => (sb as unknown as { vm: VirtualMachine }).vm;
const layoutOf = (sb: Sandbox): MemoryLayout => (sb as unknown as { parts: { layout: MemoryLayout } }).parts.layout;
const imageOf = (snap: Snapshot): Uint8Array => (snap as unknown as { image: { view: Uint8Array } }).image.view;

/** Pages [first, end) that [address, address + length) touches. */
function pagesOf(address: number, length: number): number[] {
  const out = [];
  for (let p = Math.floor(address / PAGE); p < Math.ceil((address + length) / PAGE); p++) out.push(p);
  return out;
}

/** Records the host pages each restore passes to the VM, eager or deferred. */
function spyHostPages(vm: VirtualMachine): { calls: number[][]; stop: () => void } {
  const calls: number[][] = [];
  const { restoreFrom, deferRestore } = vm;
  vm.restoreFrom = (image, hostPages, state) => (calls.push(Array.from(hostPages)), restoreFrom.call(vm, image, hostPages, state));
  vm.deferRestore = (image, hostPages, state) => (calls.push(Array.from(hostPages)), deferRestore.call(vm, image, hostPages, state));
  return { calls, stop: () => Object.assign(vm, { restoreFrom, deferRestore }) };
}

describe("host writes reach restore and snapshot", () => {
  let sb: Sandbox;
  let snap: Snapshot;
  before(async () => {
    sb = await new SandboxBuilder().guest(guestPath("types")).inputSize(64 << 10).build();
    snap = sb.snapshot();
  });
  after(() => sb.close());

  /** The CALL of string_length with `text` covers these input-buffer pages: message header, value header, text, NUL. */
  const callPages = (text: string): number[] => pagesOf(layoutOf(sb).input.address, 24 + 8 + text.length + 1);

  for (const deferred of [false, true]) {
    test(`${deferred ? "a deferred" : "an eager"} restore is given every input page a CALL wrote, whole or failed half-way`, () => {
      const spy = spyHostPages(vmOf(sb));
      try {
        const text = "h".repeat(5 * PAGE + 100);
        assert.equal(sb.callSync("string_length", text), text.length);
        sb.restore(snap, { deferred });
        for (const page of callPages(text)) assert.ok(spy.calls.at(-1)!.includes(page), `page 0x${page.toString(16)} of a whole CALL`);

        // sixteen(i32, u32, i64, u64, f32, f64, bool, string, bytes, …): the string is written, then the bytes argument is refused.
        const args = [1, 2, 3n, 4n, 5, 6, true, text, "not bytes", 1, 2, 3n, 4n, 5, 6, true];
        assert.throws(() => sb.callSync("sixteen", ...(args as never[])), ArgumentMismatchError);
        sb.restore(snap, { deferred });
        const written = pagesOf(layoutOf(sb).input.address, 24 + 7 * 16 + 8 + text.length + 1);
        for (const page of written) assert.ok(spy.calls.at(-1)!.includes(page), `page 0x${page.toString(16)} of a CALL refused half-way`);
        assert.equal(sb.callSync("get_value"), 0);
      } finally {
        spy.stop();
      }
    });
  }

  test("a control-block word the host writes (the log level) is a host page of the next restore", () => {
    const spy = spyHostPages(vmOf(sb));
    try {
      sb.setMaxGuestLogLevel(sb.maxGuestLogLevel === "debug" ? "warn" : "debug");
      sb.restore(snap);
      assert.ok(spy.calls.at(-1)!.includes(Math.floor(layoutOf(sb).controlBlock / PAGE)));
    } finally {
      spy.stop();
    }
  });

  test("a snapshot over a base copies the pages the host wrote, though the backend's log names none of them", () => {
    const vm = vmOf(sb);
    const { input } = layoutOf(sb);
    const hostOnly = new Set(pagesOf(input.address, input.size));
    const take = vm.takeDirtyPages;
    // As hardware KVM's log: the guest's own writes only (string_length never writes its input).
    vm.takeDirtyPages = () => {
      const bitmap = take.call(vm);
      for (const page of hostOnly) bitmap[page >> 6]! &= ~(1n << BigInt(page & 63));
      return bitmap;
    };
    try {
      sb.restore(snap);
      const text = "s".repeat(3 * PAGE);
      sb.callSync("string_length", text);
      const later = sb.snapshot();
      const image = imageOf(later).subarray(input.address, input.address + 24 + 8 + text.length);
      assert.deepEqual(image, vm.memory.subarray(input.address, input.address + 24 + 8 + text.length));
      assert.equal(Buffer.from(image.subarray(32, 32 + text.length)).toString(), text);
    } finally {
      vm.takeDirtyPages = take;
      sb.restore(snap);
    }
  });
});

describe("CPU state, read from the vCPU", () => {
  let sb: Sandbox;
  let snap: Snapshot;
  let parked: CpuState;
  before(async () => {
    sb = await new SandboxBuilder().guest(guestPath("hostile")).build();
    snap = sb.snapshot();
    parked = snap.state.cpu;
  });
  after(() => sb.close());

  function assertSameCpu(actual: CpuState, expected: CpuState, how: string): void {
    GPR_NAMES.forEach((name, i) => assert.equal(actual.gprs[i], expected.gprs[i], `${how}: ${name}`));
    assert.equal(actual.rip, expected.rip, `${how}: rip`);
    assert.equal(actual.rflags, expected.rflags, `${how}: rflags`);
    assert.equal(actual.fsBase, expected.fsBase, `${how}: fs base`);
    assert.equal(actual.gsBase, expected.gsBase, `${how}: gs base`);
    const x = new DataView(actual.xsave.buffer, actual.xsave.byteOffset), y = new DataView(expected.xsave.buffer, expected.xsave.byteOffset);
    assert.equal(x.getUint16(0, true), y.getUint16(0, true), `${how}: x87 control word`);
    assert.equal(x.getUint32(24, true), y.getUint32(24, true), `${how}: MXCSR`);
    for (let reg = 0; reg < 16; reg++) {
      assert.deepEqual(actual.xsave.subarray(160 + 16 * reg, 176 + 16 * reg), expected.xsave.subarray(160 + 16 * reg, 176 + 16 * reg), `${how}: xmm${reg}`);
    }
  }

  test("a clean call ends where the guest parks: the snapshot's RIP and RSP", () => {
    sb.callSync("ok");
    const cpu = vmOf(sb).getCpuState();
    assert.equal(cpu.rip, parked.rip);
    assert.equal(cpu.gprs[6], parked.gprs[6], "rsp");
  });

  for (const deferred of [false, true]) {
    test(`after ${deferred ? "a deferred" : "an eager"} restore every register and the FPU image are the snapshot's, whatever the guest left`, () => {
      const secret = 0x5ec7_e7ed_5ec7_e7edn;
      sb.callSync("stash_in_registers", secret); // xmm15 keeps it (caller-saved); the call leaves other GPRs than the snapshot's
      const dirty = vmOf(sb).getCpuState();
      assert.equal(new DataView(dirty.xsave.buffer, dirty.xsave.byteOffset).getBigUint64(160 + 16 * 15, true), secret, "the guest's xmm15 is in the vCPU before the restore");
      assert.ok(GPR_NAMES.some((_, i) => dirty.gprs[i] !== parked.gprs[i]), "a GPR differs from the snapshot's before the restore");
      sb.restore(snap, { deferred });
      assertSameCpu(vmOf(sb).getCpuState(), parked, deferred ? "deferred" : "eager");
      assert.equal(sb.callSync("read_xmm15"), new DataView(parked.xsave.buffer, parked.xsave.byteOffset).getBigUint64(160 + 16 * 15, true), "and the guest reads it back");
    });
  }
});

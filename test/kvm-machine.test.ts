/**
 * The KVM backend below the sandbox: CPL-3 guest code runs, exits are decoded, the
 * backend-neutral CPU state round-trips, and dirty-page logging reports guest writes.
 */
import assert from "node:assert/strict";
import { test } from "./kvm.js";
import { KvmMachine } from "../src/hypervisor/kvm/kvm-machine.js";
import { IMAGE_BASE } from "../src/abi/constants.js";
import { computeLayout } from "../src/mem/layout.js";
import { GuestMemory } from "../src/mem/guest-memory.js";
import { buildPageTables } from "../src/mem/page-tables.js";
import { writeSystemTables } from "../src/mem/system-tables.js";

/** A VM whose guest runs `code` at IMAGE_BASE (user RX page), with a user RW data page after it. */
function machineWith(code: number[], options: { noIdt?: boolean } = {}): { vm: KvmMachine; data: number; stackTop: number } {
  const layout = computeLayout({
    image: [{ start: IMAGE_BASE, size: 0x1000, access: "user-rx" }, { start: IMAGE_BASE + 0x1000, size: 0x1000, access: "user-rw" }],
    imageEnd: IMAGE_BASE + 0x2000, inputSize: 4096, outputSize: 4096, heapSize: 4096, stackSize: 16384,
  });
  const vm = new KvmMachine(GuestMemory.allocate(layout.memorySize));
  const setup = writeSystemTables(vm.memory);
  const idt = options.noIdt ? { base: setup.idt.base, limit: 0 } : setup.idt;
  vm.configure({ ...setup, idt, pml4Address: buildPageTables(vm.memory, layout) });
  vm.memory.set(code, IMAGE_BASE);
  vm.start(IMAGE_BASE, layout.stack.top, 0);
  return { vm, data: IMAGE_BASE + 0x1000, stackTop: layout.stack.top };
}

test("a CPL-3 guest leaves through out and is resumed after it", () => {
  // 1: out %al,$0x10; inc %rbx; jmp 1b
  const { vm } = machineWith([0xe6, 0x10, 0x48, 0xff, 0xc3, 0xeb, 0xf9]);
  try {
    for (let i = 0; i < 5; i++) assert.deepEqual(vm.run(0), { kind: "io-out", port: 0x10, size: 1, value: 0 });
    assert.equal(vm.getCpuState().gprs[1], 4n, "rbx counts the 4 resumptions after the first out");
  } finally {
    vm.destroy();
  }
});

test("CPU state read at a boundary can be written back and the guest continues from it", () => {
  // 1: inc %rax; addsd %xmm0,%xmm0; out %al,$0x10; jmp 1b
  const { vm } = machineWith([0x48, 0xff, 0xc0, 0xf2, 0x0f, 0x58, 0xc0, 0xe6, 0x10, 0xeb, 0xf5]);
  try {
    vm.run(0);
    const state = vm.getCpuState();
    vm.run(0);
    vm.run(0);
    assert.equal(vm.getCpuState().gprs[0], 3n);
    vm.setCpuState(state);
    vm.run(0);
    const after = vm.getCpuState();
    assert.equal(after.gprs[0], 2n, "rax continues from the restored value");
    assert.equal(after.rip, state.rip, "rip is back at the same boundary");
    assert.equal(after.xsave.length, state.xsave.length);
  } finally {
    vm.destroy();
  }
});

test("dirty logging reports exactly the pages the guest wrote (page tables are not dirtied)", () => {
  const data = IMAGE_BASE + 0x1000; // the user RW page machineWith maps after the code
  const { vm } = machineWith([
    0x48, 0x89, 0x04, 0x25, ...le32(data), // mov %rax, data
    0xe6, 0x10, // out %al, $0x10
    0xeb, 0xfe, // jmp .
  ]);
  try {
    vm.trackDirtyPages();
    vm.takeDirtyPages(); // reset
    vm.memory[data + 100] = 1; // host writes are not in KVM's log
    vm.run(0);
    const dirty = pagesOf(vm.takeDirtyPages());
    assert.deepEqual(dirty, [data / 4096]);
    assert.deepEqual(pagesOf(vm.takeDirtyPages()), [], "the log resets after each read");
  } finally {
    vm.destroy();
  }
});

test("a signal-driven timeout interrupts a spinning guest", () => {
  const { vm } = machineWith([0xeb, 0xfe]); // jmp .
  try {
    const start = performance.now();
    assert.deepEqual(vm.run(20e6), { kind: "interrupted" });
    assert.ok(performance.now() - start >= 15, "not before the deadline");
  } finally {
    vm.destroy();
  }
});

test("without an IDT a guest fault is a triple fault: a shutdown exit whose registers still show where", () => {
  const { vm } = machineWith([0x90, 0x0f, 0x0b], { noIdt: true }); // nop; ud2
  try {
    const exit = vm.run(1e9);
    assert.equal(exit.kind, "shutdown");
    const regs = vm.faultRegisters();
    assert.ok(regs.rip >= BigInt(IMAGE_BASE) && regs.rip < BigInt(IMAGE_BASE + 4096), `rip 0x${regs.rip.toString(16)} is in the guest's code`);
  } finally {
    vm.destroy();
  }
});

function le32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

function pagesOf(bitmap: BigUint64Array): number[] {
  const pages: number[] = [];
  bitmap.forEach((word, i) => {
    for (let b = 0; b < 64; b++) if ((word >> BigInt(b)) & 1n) pages.push(i * 64 + b);
  });
  return pages;
}

test("a restore after the guest loaded its own FS selector and base writes every segment back (the cached bases are not trusted)", () => {
  // 1: out %al,$0x10; mov $0x2b,%eax; mov %eax,%fs (data selector: FS base from its descriptor, 0); jmp 1b
  const { vm } = machineWith([0xe6, 0x10, 0xb8, 0x2b, 0x00, 0x00, 0x00, 0x8e, 0xe0, 0xeb, 0xf5]);
  try {
    vm.run(0);
    const parked = vm.getCpuState();
    const withBase = { ...parked, fsBase: 0xfe000n };
    vm.setCpuState(withBase);
    assert.equal(vm.getCpuState().fsBase, 0xfe000n, "the host's FS base is loaded");
    vm.run(0); // the guest reloads %fs: its base is 0 now
    assert.equal(vm.getCpuState().fsBase, 0n, "the guest moved its FS base");
    vm.setCpuState(withBase); // the same bases as the host loaded last
    assert.equal(vm.getCpuState().fsBase, 0xfe000n, "the restore put the FS base back");
  } finally {
    vm.destroy();
  }
});

/**
 * A snapshot's supervisor pages are vmlet's own (issue 11, item 1). A layout whose memory
 * blob rewrites a page the guest runs at CPL 0 with (an IDT gate, a page-table entry, the
 * TSS and its I/O bitmap, a fault stub, the ring-0 stacks), with every digest fixed up, is
 * SNAPSHOT_INVALID from load, checkedLoad, verify and the CLI. Snapshots taken in memory
 * are checked on the pages their capture copies from guest memory, and a guest writing
 * its own tables changes nothing a later snapshot stores.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { GuestFaultError, Sandbox, Snapshot, SnapshotLayout, VmletError } from "../src/index.js";
import { PAGE, SYSTEM, type MemoryLayout } from "../src/mem/layout.js";
import { findForeignSupervisorPage } from "../src/mem/supervisor-pages.js";
import type { HostWrites } from "../src/mem/host-writes.js";
import type { GuestMemory } from "../src/mem/guest-memory.js";
import { configText, copyGolden, editMemory, GOLDEN, jsonErrorCode, replaceConfig, TAG, vmlet, type Obj } from "./layout-copies.js";
import { addOne, buildSnapshotGuest } from "./snapshot-guest.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-supervisor-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const golden = await Snapshot.load(GOLDEN, TAG);
const layout = golden.state.layout;
/** The page-table page holding the leaf entries (PML4, PDPT, one PD, then the PTs: the golden layout has 2 MiB). */
const leafTable = layout.pageTables.address + 3 * PAGE;
const USER = 4, WRITABLE = 2;
const VECTOR_BREAKPOINT = 3, VECTOR_GP = 13;
const TSS_IO_BITMAP = SYSTEM.tss + 104;
const codeAddress = layout.regions.find((r) => r.access === "user-rx")!.start;

/** Each edit of the memory blob, and the supervisor page it must be reported on. */
const cases: Array<[string, (m: Buffer) => void, number, string]> = [
  ["the int3 gate points at the guest's own code", (m) => {
    const gate = SYSTEM.idt + VECTOR_BREAKPOINT * 16;
    m.writeUInt16LE(codeAddress & 0xffff, gate);
    m.writeUInt16LE(codeAddress >>> 16, gate + 6);
  }, SYSTEM.idt, "idt"],
  ["a page-table entry makes the IDT page user-writable", (m) => {
    const entry = leafTable + (SYSTEM.idt / PAGE) * 8;
    m[entry] = m[entry]! | USER | WRITABLE;
  }, leafTable, "page tables"],
  ["a page-table entry maps a user page onto the page tables", (m) => {
    const entry = leafTable + (layout.heap.address / PAGE) * 8;
    m.writeUInt32LE((layout.pageTables.address & 0xfffff000) | (m.readUInt32LE(entry) & 0xfff), entry);
  }, leafTable, "page tables"],
  ["the TSS I/O bitmap opens every port", (m) => m.fill(0, TSS_IO_BITMAP, TSS_IO_BITMAP + 8), SYSTEM.gdt, "gdt+tss"],
  ["the TSS moves the ring-0 stack into the guest's stack", (m) => m.writeBigUInt64LE(BigInt(layout.stack.top), SYSTEM.tss + 4), SYSTEM.gdt, "gdt+tss"],
  ["the GDT's user code segment becomes DPL 0", (m) => { m[SYSTEM.gdt + 6 * 8 + 5] = 0x9b; }, SYSTEM.gdt, "gdt+tss"],
  ["the #GP stub runs mov %cr0,%rax", (m) => m.set([0x0f, 0x20, 0xc0, 0x90], SYSTEM.stubs + VECTOR_GP * 4), SYSTEM.stubs, "fault stubs"],
  ["the ring-0 stack holds a prepared frame", (m) => m.writeBigUInt64LE(BigInt(codeAddress), SYSTEM.ring0Stack.top - 8), SYSTEM.ring0Stack.top - PAGE, "ring-0 stack"],
  ["the IST stack holds data", (m) => { m[SYSTEM.istStack.start] = 1; }, SYSTEM.istStack.start, "ist stack"],
];

const hex = (n: number): string => `0x${n.toString(16)}`;

function isInvalidPage(address: number, region: string) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof VmletError, `a VmletError, got ${String(e)}`);
    assert.equal(e.code, "SNAPSHOT_INVALID", e.message);
    assert.ok(e.message.includes(`supervisor page ${hex(address)} (${region})`), e.message);
    return true;
  };
}

describe("a layout whose memory blob rewrites a supervisor page is refused", () => {
  test("the unedited golden memory holds exactly vmlet's supervisor pages", () => {
    assert.equal(findForeignSupervisorPage(layout, (start, length) => golden.image.read(start, length)), undefined);
  });

  for (const [what, edit, address, region] of cases) {
    test(`${what}: load, checkedLoad, verify, the CLI's verify and run`, async () => {
      const dir = copyGolden(root);
      editMemory(dir, edit);
      await assert.rejects(Snapshot.load(dir, TAG), isInvalidPage(address, region));
      await assert.rejects(Snapshot.checkedLoad(dir, TAG), isInvalidPage(address, region));
      const report = await new SnapshotLayout(dir).verify();
      assert.equal(report.ok, false);
      assert.deepEqual(report.problems.map((p) => p.ref), [TAG]);
      isInvalidPage(address, region)(report.problems[0]!.error);
      const verify = vmlet(["snapshot", "verify", dir, "--json"]);
      assert.equal(verify.status, 1, verify.stderr);
      const doc = JSON.parse(verify.stdout) as Obj;
      assert.deepEqual((doc.problems as Obj[]).map((p) => [p.ref, p.code]), [[TAG, "SNAPSHOT_INVALID"]]);
      const run = vmlet(["run", `${dir}:${TAG}`, "get_marker", "--json"]);
      assert.equal(run.status, 1, run.stderr);
      assert.equal(jsonErrorCode(run), "SNAPSHOT_INVALID");
    });
  }

  test("a config whose CPU setup puts the IDT on the guest's heap is refused too", async () => {
    const dir = copyGolden(root);
    const config = JSON.parse(configText(dir)) as Obj;
    ((config.system as Obj).idt as Obj).base = layout.heap.address;
    replaceConfig(dir, JSON.stringify(config));
    for (const load of [Snapshot.load(dir, TAG), Snapshot.checkedLoad(dir, TAG)]) {
      await assert.rejects(load, (e: unknown) => e instanceof VmletError && e.code === "SNAPSHOT_INVALID" && /config\.system/.test(e.message));
    }
  });

  test("the other tags of the same layout still load (the check is per snapshot)", async () => {
    const dir = copyGolden(root);
    editMemory(dir, cases[0]![1]);
    const other = await Snapshot.checkedLoad(dir, "second-generation-v1");
    assert.equal(other.generation, 2);
  });
});

/** The private parts of a sandbox that a host-side corruption test reaches into. */
interface Internals {
  parts: { memory: GuestMemory; layout: MemoryLayout };
  hostWrites: HostWrites;
}
const internals = (sb: Sandbox): Internals => sb as unknown as Internals;

function assertVmletPages(snap: Snapshot, how: string): void {
  assert.equal(findForeignSupervisorPage(snap.state.layout, (start, length) => snap.image.read(start, length)), undefined, how);
}

function isHypervisorRefusal(address: number) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof VmletError, `a VmletError, got ${String(e)}`);
    assert.equal(e.code, "HYPERVISOR", e.message);
    assert.ok(e.message.includes(`supervisor page ${hex(address)}`), e.message);
    return true;
  };
}

describe("snapshots taken in memory store vmlet's supervisor pages", () => {
  test("a first snapshot of memory whose IDT changed is refused (HYPERVISOR) and poisons", async () => {
    const sb = await buildSnapshotGuest();
    try {
      internals(sb).parts.memory.bytes[SYSTEM.idt + VECTOR_BREAKPOINT * 16 + 5] = 0x8e;
      assert.throws(() => sb.snapshot(), isHypervisorRefusal(SYSTEM.idt));
      assert.equal(sb.poisoned?.code, "HYPERVISOR");
      assert.throws(() => sb.callSync("bump"), (e: unknown) => e instanceof VmletError && e.code === "POISONED");
    } finally {
      sb.close();
    }
  });

  test("a later snapshot copying a changed page-table page is refused; a restore brings the sandbox back", async () => {
    const sb = await buildSnapshotGuest();
    try {
      const first = sb.snapshot();
      sb.callSync("bump");
      const { parts, hostWrites } = internals(sb);
      const entry = parts.layout.pageTables.address + 3 * PAGE + (SYSTEM.idt / PAGE) * 8;
      hostWrites.mark(entry, 1); // as a host write would be recorded: the capture copies the page
      parts.memory.bytes[entry] = parts.memory.bytes[entry]! | USER | WRITABLE;
      assert.throws(() => sb.snapshot(), isHypervisorRefusal(parts.layout.pageTables.address + 3 * PAGE));
      assert.equal(sb.poisoned?.code, "HYPERVISOR");
      sb.restore(first);
      assert.equal(sb.poisoned, undefined);
      assert.equal(sb.callSync("get_counter"), 0);
      sb.callSync("bump");
      assertVmletPages(sb.snapshot(), "the snapshot after the restore");
    } finally {
      sb.close();
    }
  });

  test("the first and the last page of the page-table region are checked too", async () => {
    for (const which of ["first", "last"] as const) {
      const sb = await buildSnapshotGuest();
      try {
        sb.snapshot();
        sb.callSync("bump"); // a sandbox changed since its snapshot: the next one captures
        const { parts, hostWrites } = internals(sb);
        const { address, size } = parts.layout.pageTables;
        const page = which === "first" ? address : address + size - PAGE;
        hostWrites.mark(page + 8, 1);
        parts.memory.bytes[page + 8] = parts.memory.bytes[page + 8]! ^ 0xff;
        assert.throws(() => sb.snapshot(), isHypervisorRefusal(page), which);
      } finally {
        sb.close();
      }
    }
  });

  test("a guest writing its page tables, IDT or TSS faults, and the next snapshot stores vmlet's pages", async () => {
    const sb = await buildSnapshotGuest();
    try {
      const first = sb.snapshot();
      assertVmletPages(first, "the first snapshot");
      const { layout: mine } = internals(sb).parts;
      const targets = [mine.pageTables.address, mine.pageTables.address + 3 * PAGE + (SYSTEM.idt / PAGE) * 8, SYSTEM.idt + VECTOR_BREAKPOINT * 16, TSS_IO_BITMAP];
      for (const address of targets) {
        assert.throws(() => sb.callSync("poke", BigInt(address), 0xffffffff), (e: unknown) => e instanceof GuestFaultError && e.mnemonic === "#PF", hex(address));
        sb.restore(first);
        sb.callSync("bump");
        const later = sb.snapshot();
        assertVmletPages(later, `after poking ${hex(address)}`);
        const again = await Sandbox.fromSnapshot(later, { hostFunctions: [addOne] });
        try {
          assert.equal(again.callSync("get_counter"), 1);
        } finally {
          again.close();
        }
        sb.restore(first);
      }
    } finally {
      sb.close();
    }
  });
});

/**
 * GDT, TSS (with the I/O permission bitmap), IDT and the CPL-0 fault stubs, written
 * into the supervisor-only system pages. Setup follows shared/notes: a CPL-3 `out`
 * needs its port cleared in the TSS I/O bitmap, otherwise it raises #GP
 * (measured on PVM: ../shared/notes/kvm-on-these-machines.md in the project's shared notes).
 */
import { FAULT_VECTORS, PORT_ABORT, PORT_FAULT_BASE, PORT_HOST_CALL, PORT_LOG, PORT_READY } from "../abi/constants.js";
import type { SystemSetup } from "../hypervisor/virtual-machine.js";
import { SYSTEM } from "./layout.js";

export const KERNEL_CODE_SELECTOR = 0x08;
export const USER_DATA_SELECTOR = 0x2b; // GDT index 5, RPL 3
export const USER_CODE_SELECTOR = 0x33; // GDT index 6, RPL 3
const TSS_SELECTOR = 0x38; // GDT index 7 (16-byte descriptor)

const GDT_ENTRIES: readonly bigint[] = [
  0n,
  0x00af9b000000ffffn, // 0x08 kernel code, 64-bit
  0x00cf93000000ffffn, // 0x10 kernel data
  0x00cffb000000ffffn, // 0x18 user code, 32-bit (unused; keeps the usual order)
  0n,
  0x00cff3000000ffffn, // 0x28 user data
  0x00affb000000ffffn, // 0x30 user code, 64-bit
];

const TSS_HEADER = 104;
/** Bitmap covers ports 0..63; the guest may use only its exit ports. */
const IO_BITMAP_BYTES = 8;
/** The ports CPL-3 guest code may use (the TSS I/O bitmap clears only these). */
export const GUEST_PORTS: readonly number[] = [PORT_READY, PORT_HOST_CALL, PORT_LOG, PORT_ABORT];
const TSS_LIMIT = TSS_HEADER + IO_BITMAP_BYTES + 1 - 1; // + 0xff terminator

const STUB_SIZE = 4;
const VECTOR_BREAKPOINT = 3;
const VECTOR_OVERFLOW = 4;
const VECTOR_DOUBLE_FAULT = 8;
const VECTOR_NMI = 2;

export function writeSystemTables(memory: Uint8Array): SystemSetup {
  const view = new DataView(memory.buffer, memory.byteOffset, memory.byteLength);
  writeGdt(view);
  writeTss(view, memory);
  writeIdt(view);
  writeStubs(memory);
  return systemSetup(0); // the caller fills in pml4Address once page tables exist
}

/** The CPU setup for the tables above: every field is fixed except the page-table root. */
export function systemSetup(pml4Address: number): SystemSetup {
  return {
    pml4Address,
    gdt: { base: SYSTEM.gdt, limit: (GDT_ENTRIES.length + 2) * 8 - 1 },
    idt: { base: SYSTEM.idt, limit: FAULT_VECTORS * 16 - 1 },
    tss: { base: SYSTEM.tss, limit: TSS_LIMIT, selector: TSS_SELECTOR },
    userCodeSelector: USER_CODE_SELECTOR,
    userDataSelector: USER_DATA_SELECTOR,
  };
}

function writeGdt(view: DataView): void {
  GDT_ENTRIES.forEach((entry, i) => view.setBigUint64(SYSTEM.gdt + i * 8, entry, true));
  // 64-bit available TSS descriptor (type 9), present, DPL 0.
  const at = SYSTEM.gdt + GDT_ENTRIES.length * 8;
  const base = SYSTEM.tss;
  view.setUint16(at, TSS_LIMIT & 0xffff, true);
  view.setUint16(at + 2, base & 0xffff, true);
  view.setUint8(at + 4, (base >>> 16) & 0xff);
  view.setUint8(at + 5, 0x89);
  view.setUint8(at + 6, (TSS_LIMIT >>> 16) & 0x0f);
  view.setUint8(at + 7, (base >>> 24) & 0xff);
  view.setUint32(at + 8, 0, true); // base 63:32
  view.setUint32(at + 12, 0, true);
}

function writeTss(view: DataView, memory: Uint8Array): void {
  const tss = SYSTEM.tss;
  memory.fill(0, tss, tss + TSS_HEADER);
  view.setBigUint64(tss + 4, BigInt(SYSTEM.ring0Stack.top), true); // RSP0: CPL 3 → 0 fault frames
  view.setBigUint64(tss + 36, BigInt(SYSTEM.istStack.top), true); // IST1
  view.setUint16(tss + 102, TSS_HEADER, true); // I/O map base
  const bitmap = tss + TSS_HEADER;
  memory.fill(0xff, bitmap, bitmap + IO_BITMAP_BYTES + 1);
  for (const port of GUEST_PORTS) memory[bitmap + (port >> 3)]! &= ~(1 << (port & 7));
}

function writeIdt(view: DataView): void {
  for (let vector = 0; vector < FAULT_VECTORS; vector++) {
    const at = SYSTEM.idt + vector * 16;
    const handler = SYSTEM.stubs + vector * STUB_SIZE;
    const userRaisable = vector === VECTOR_BREAKPOINT || vector === VECTOR_OVERFLOW;
    const ist = vector === VECTOR_DOUBLE_FAULT || vector === VECTOR_NMI ? 1 : 0;
    view.setUint16(at, handler & 0xffff, true);
    view.setUint16(at + 2, KERNEL_CODE_SELECTOR, true);
    view.setUint8(at + 4, ist);
    view.setUint8(at + 5, userRaisable ? 0xee : 0x8e); // present, interrupt gate, DPL 3 or 0
    view.setUint16(at + 6, (handler >>> 16) & 0xffff, true);
    view.setUint32(at + 8, 0, true);
    view.setUint32(at + 12, 0, true);
  }
}

/** One stub per vector: `out %al, $(0x20 + vector)` then `jmp .` (never resumed). */
function writeStubs(memory: Uint8Array): void {
  for (let vector = 0; vector < FAULT_VECTORS; vector++) {
    const at = SYSTEM.stubs + vector * STUB_SIZE;
    memory.set([0xe6, PORT_FAULT_BASE + vector, 0xeb, 0xfe], at);
  }
}

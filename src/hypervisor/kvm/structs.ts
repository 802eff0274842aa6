/**
 * Byte layouts of the KVM structs vmlet reads and writes (linux/kvm.h, x86_64).
 * The addon reports each struct's size; `checkStructSizes` refuses a mismatch.
 */
import { BackendUnavailableError } from "../../errors/errors.js";
import type { NativeAddon } from "../../native/addon.js";

export const REGS_SIZE = 144; // struct kvm_regs: 18 × u64
export const SREGS_SIZE = 312; // struct kvm_sregs
export const XSAVE_SIZE = 4096; // struct kvm_xsave
export const EVENTS_SIZE = 64; // struct kvm_vcpu_events
export const CPUID_ENTRY_SIZE = 40; // struct kvm_cpuid_entry2

/** u64 slot index of rip and rflags in struct kvm_regs (after 16 GPRs). */
export const REGS_RIP = 16;
export const REGS_RFLAGS = 17;

/** Byte offsets in struct kvm_sregs. */
export const SREGS = {
  cs: 0, ds: 24, es: 48, fs: 72, gs: 96, ss: 120, tr: 144, ldt: 168,
  gdt: 192, idt: 208,
  cr0: 224, cr2: 232, cr3: 240, cr4: 248, cr8: 256, efer: 264, apicBase: 272,
} as const;

/** struct kvm_segment fields. */
export interface Segment {
  base: bigint;
  limit: number;
  selector: number;
  type: number;
  present: boolean;
  dpl: number;
  db: boolean;
  s: boolean;
  l: boolean;
  g: boolean;
  unusable: boolean;
}

export function writeSegment(view: DataView, offset: number, seg: Segment): void {
  view.setBigUint64(offset, seg.base, true);
  view.setUint32(offset + 8, seg.limit, true);
  view.setUint16(offset + 12, seg.selector, true);
  view.setUint8(offset + 14, seg.type);
  view.setUint8(offset + 15, seg.present ? 1 : 0);
  view.setUint8(offset + 16, seg.dpl);
  view.setUint8(offset + 17, seg.db ? 1 : 0);
  view.setUint8(offset + 18, seg.s ? 1 : 0);
  view.setUint8(offset + 19, seg.l ? 1 : 0);
  view.setUint8(offset + 20, seg.g ? 1 : 0);
  view.setUint8(offset + 21, 0); // avl
  view.setUint8(offset + 22, seg.unusable ? 1 : 0);
}

/** Writes struct kvm_dtable (GDTR/IDTR). */
export function writeTable(view: DataView, offset: number, base: number, limit: number): void {
  view.setBigUint64(offset, BigInt(base), true);
  view.setUint16(offset + 8, limit, true);
}

export function checkStructSizes(addon: NativeAddon): void {
  const expected = { regs: REGS_SIZE, sregs: SREGS_SIZE, xsave: XSAVE_SIZE, events: EVENTS_SIZE, cpuidEntry: CPUID_ENTRY_SIZE };
  for (const [name, size] of Object.entries(expected)) {
    const actual = addon.structSizes[name as keyof typeof expected];
    if (actual !== size) {
      throw new BackendUnavailableError(`kvm struct ${name} is ${actual} bytes in this build, vmlet expects ${size}`);
    }
  }
}

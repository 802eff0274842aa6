/**
 * Whether a snapshot's guest reloads its own FPU state on resume, so that a restore may
 * skip KVM_SET_XSAVE (one ioctl, ~4 µs on PVM), and what the host must tell or fix in
 * the guest for that reload to be right.
 *
 * Guests built with the current SDK wait for calls in vmlet__ready (guest/src/start.S):
 * they save their FPU state to an area on the stack, exit with `out READY`, and resume at
 * vmlet__resume, the RIP of every snapshot, which reloads it. How is the host's word,
 * control-block field FPU_XSAVE_MASK: 0 means fxsave64/fxrstor64 (x87 and SSE); otherwise
 * xsave64/xrstor64 of the components in the mask. The guest records the mask it used in the
 * area (bytes 464..511, which neither instruction writes), and the resume sequence reads
 * that record, so save and reload always agree.
 *
 * Skipping the ioctl is safe even for a hostile guest when the reload covers every piece of
 * FPU state the guest can reach: the reload is then the very first thing after the
 * restore, it reads only the snapshot's memory, and so the state after a restore is a
 * function of the snapshot alone, whatever the vCPU held before. What the guest reaches:
 * - hardware KVM: vmlet runs guests with CR4.OSXSAVE clear (no AVX or other XSAVE-only
 *   state) and EFER.FFXSR clear, so fxrstor64 loads all of it (x87 registers and
 *   control/status/tag words, FOP/FIP/FDP, MXCSR, XMM0–15);
 * - PVM: the guest runs under the host's CR4 and XCR0, so it reaches every component in
 *   the host's XCR0 (here AVX and PKRU); xrstor64 with a mask covering all of XCR0 loads
 *   them all (components marked unused in the image's header are set to their initial
 *   values: still a function of the snapshot).
 * Only the bytes at RIP and the recorded mask (both in the snapshot's memory) matter, so a
 * guest that places them there itself gets the same guarantee. Not on CPUs with the FXSAVE
 * leak (older AMD: the reload keeps FOP/FIP/FDP unless an exception is pending).
 *
 * A snapshot may resume where its recorded mask does not work: taken under PVM (mask set)
 * and resumed on hardware KVM (xrstor64 is #UD there), or on a host whose XCR0 lacks some
 * of the mask's components. The host then rewrites the record to 0 before the guest runs
 * (the area's first 512 bytes are valid for fxrstor64 either way) and keeps the ioctl unless
 * fxrstor64 covers all the guest reaches.
 */
import { readFileSync } from "node:fs";
import type { BackendInfo, CpuState } from "./virtual-machine.js";

/** vmlet__resume up to its last reload: mov 464(%rsp),%eax; xor %edx,%edx; test %eax,%eax; jz 3f; xrstor64 (%rsp); jmp 4f; 3: fxrstor64 (%rsp). */
export const RESUME_SEQUENCE: readonly number[] = [
  0x8b, 0x84, 0x24, 0xd0, 0x01, 0x00, 0x00, 0x31, 0xd2, 0x85, 0xc0, 0x74, 0x07, 0x48, 0x0f, 0xae, 0x2c, 0x24, 0xeb, 0x05,
  0x48, 0x0f, 0xae, 0x0c, 0x24,
];
/** Offset of the recorded mask in the area, and the area's size (guest/src/start.S FPU_MARK, FPU_AREA). */
export const FPU_MARK = 464;
export const FPU_AREA = 2752;
/** XCR0 components the SDK's area has room for: x87 … AVX-512 (bits 0–7) and PKRU (bit 9). */
const AREA_COMPONENTS = 0x2ff;
const RSP = 6;
/** Passed to the restore plan instead of the XSAVE area: native skips KVM_SET_XSAVE. */
const NO_XSAVE = new Uint8Array(0);

type Flavour = BackendInfo["flavour"];

/** What resuming a snapshot needs from the host. */
export interface FpuResume {
  /** The guest's reload covers all FPU state it can reach: KVM_SET_XSAVE may be skipped. */
  readonly reloads: boolean;
  /** Guest address of the recorded mask, which the host must set to 0 before the guest runs. */
  readonly fixMarkAt?: number;
}

const KEEP: FpuResume = { reloads: false };
/** Images and states are immutable, so each (image, state) is looked at once per host setting. */
interface Decided {
  readonly flavour: Flavour;
  readonly guestXcr0: number;
  readonly enabled: boolean;
  readonly resume: FpuResume;
}
const decided = new WeakMap<Uint8Array, WeakMap<CpuState, Decided>>();
let enabled = true;
let fxsaveLeak: boolean | undefined;

/** @internal Tests: false forces KVM_SET_XSAVE on every restore (record fix-ups still happen). */
export function setGuestFpuReload(on: boolean): void {
  enabled = on;
}

/** The FPU_XSAVE_MASK the host writes: the components the guest reaches, if the SDK's area holds them all. */
export function guestXsaveMask(guestXcr0: number): number {
  // <= AREA_COMPONENTS also keeps bits above 31 (which `&` would drop) out.
  return guestXcr0 > 0 && guestXcr0 <= AREA_COMPONENTS && (guestXcr0 & ~AREA_COMPONENTS) === 0 ? guestXcr0 : 0;
}

/** How resuming `state` over `memory` reloads the FPU, on a host whose guests run with `guestXcr0` (VirtualMachine.guestXcr0). */
export function fpuResume(memory: Uint8Array, state: CpuState, flavour: Flavour, guestXcr0: number): FpuResume {
  let byState = decided.get(memory);
  if (!byState) decided.set(memory, (byState = new WeakMap()));
  const known = byState.get(state);
  if (known?.flavour === flavour && known.guestXcr0 === guestXcr0 && known.enabled === enabled) return known.resume;
  const resume = decide(memory, state, flavour, guestXcr0);
  byState.set(state, { flavour, guestXcr0, enabled, resume });
  return resume;
}

/** The XSAVE area a restore to `state` over `image` must load: none if the guest's reload covers everything. */
export function xsaveToLoad(image: Uint8Array, state: CpuState, flavour: Flavour, guestXcr0: number): Uint8Array {
  return fpuResume(image, state, flavour, guestXcr0).reloads ? NO_XSAVE : state.xsave;
}

function decide(memory: Uint8Array, state: CpuState, flavour: Flavour, guestXcr0: number): FpuResume {
  const rsp = state.gprs[RSP]!;
  if (!resumesAtSequence(memory, state.rip, rsp)) return KEEP;
  const at = Number(rsp) + FPU_MARK;
  const mark = (memory[at]! | (memory[at + 1]! << 8) | (memory[at + 2]! << 16) | (memory[at + 3]! << 24)) >>> 0;
  const { fits, covers } = reloadWithMark(mark, flavour === "hardware" ? 0 : guestXcr0);
  const reloads = enabled && covers && !hostLeaksFpuPointers();
  return fits ? { reloads } : { reloads, fixMarkAt: at };
}

/**
 * For a recorded mask and the XCR0 guests run with (0: XSAVE off): whether xrstor64 of that
 * mask can run here (else the record must become 0, i.e. fxrstor64), and whether the reload
 * that then happens covers every component the guest reaches.
 */
function reloadWithMark(mark: number, xcr0: number): { fits: boolean; covers: boolean } {
  const low = xcr0 % 2 ** 32; // the mark is 32 bits; components above bit 31 are never covered
  const fits = mark === 0 || (xcr0 !== 0 && (mark & ~low) >>> 0 === 0);
  const reloaded = fits ? mark : 0;
  return { fits, covers: xcr0 === 0 || (xcr0 === low && (reloaded & low) >>> 0 === low) };
}

/** RIP is vmlet__resume's exact bytes and RSP a 64-byte-aligned area inside memory. */
function resumesAtSequence(memory: Uint8Array, rip: bigint, rsp: bigint): boolean {
  const size = BigInt(memory.length);
  if (rip + BigInt(RESUME_SEQUENCE.length) > size || rsp % 64n !== 0n || rsp + BigInt(FPU_AREA) > size) return false;
  const at = Number(rip);
  return isResumeSequence(memory.subarray(at, at + RESUME_SEQUENCE.length));
}

/** Whether `bytes` (read at a snapshot's RIP) begin with vmlet__resume's. */
export function isResumeSequence(bytes: Uint8Array): boolean {
  return bytes.length >= RESUME_SEQUENCE.length && RESUME_SEQUENCE.every((byte, i) => bytes[i] === byte);
}

/**
 * Whether the FPU area at `rsp` lies inside the guest's stack, as every SDK guest's does.
 * The host rewrites the record in it (fixMarkAt) only then: RSP is the guest's choice, and
 * anywhere else the write could land in the page tables, the TSS or the IDT.
 */
export function fpuAreaInStack(rsp: bigint, stack: { readonly bottom: number; readonly top: number }): boolean {
  return rsp >= BigInt(stack.bottom) && rsp + BigInt(FPU_AREA) <= BigInt(stack.top);
}

/** How this host's guests save their FPU state, and whether restores can leave reloading it to them. */
export function describeGuestFpu(guestXcr0: number): { readonly xsaveMask: number; readonly reloadSkipsIoctl: boolean } {
  const xsaveMask = guestXsaveMask(guestXcr0); // what a fresh SDK guest records
  return { xsaveMask, reloadSkipsIoctl: !hostLeaksFpuPointers() && reloadWithMark(xsaveMask, guestXcr0).covers };
}

/** @internal Whether /proc/cpuinfo's bug list names the FXSAVE leak. */
export function cpuinfoHasFxsaveLeak(cpuinfo: string): boolean {
  return /^bugs\s*:.*\bfxsave_leak\b/m.test(cpuinfo);
}

function hostLeaksFpuPointers(): boolean {
  if (fxsaveLeak === undefined) {
    try {
      fxsaveLeak = cpuinfoHasFxsaveLeak(readFileSync("/proc/cpuinfo", "utf8"));
    } catch {
      fxsaveLeak = true; // unknown CPU: keep the ioctl
    }
  }
  return fxsaveLeak;
}

/**
 * Whether a snapshot's guest reloads its own FPU/SSE state on resume, so that a restore
 * may skip KVM_SET_XSAVE (one ioctl, microseconds on PVM).
 *
 * Guests built with the current SDK wait for calls in vmlet__ready (guest/src/start.S):
 * `fxsave64` to the stack, `out READY`, then `fxrstor64 (%rsp)`, the instruction every
 * snapshot's RIP points at. Skipping is safe even for a hostile guest: vmlet runs guests
 * with CR4.OSXSAVE clear (no AVX or other XSAVE-only state is reachable) and EFER.FFXSR
 * clear (fxrstor64 always loads the XMM registers), so as the very first instruction after
 * the restore fxrstor64 loads every piece of FPU/SSE state the guest can observe (x87
 * registers and control/status/tag words, FOP/FIP/FDP, MXCSR, XMM0–15) from the snapshot's
 * memory. The state after a restore is a function of the snapshot alone, whatever the vCPU
 * held before. Only the bytes at RIP matter, so a guest that places them there itself gets
 * the same guarantee.
 *
 * Two exceptions keep KVM_SET_XSAVE. PVM: the guest runs under the host's CR4, so AVX
 * (the upper halves of the YMM registers) and RDPKRU/WRPKRU work in the guest, and
 * fxrstor64 loads neither; test/fpu-restore.test.ts shows a YMM value and PKRU surviving a
 * restore there without the ioctl. CPUs with the FXSAVE leak (older AMD: fxrstor keeps
 * FOP/FIP/FDP unless the image has an exception pending).
 */
import { readFileSync } from "node:fs";
import type { BackendInfo, CpuState } from "./virtual-machine.js";

/** fxrstor64 (%rsp) */
const FXRSTOR64_RSP = [0x48, 0x0f, 0xae, 0x0c, 0x24] as const;
const FXSAVE_AREA = 512;
const RSP = 6;
/** Passed to the restore plan instead of the XSAVE area: native skips KVM_SET_XSAVE. */
const NO_XSAVE = new Uint8Array(0);

/** Images and states are immutable, so each pair is looked at once. */
const decided = new WeakMap<Uint8Array, WeakMap<CpuState, boolean>>();
let enabled = true;
let fxsaveLeak: boolean | undefined;

/** @internal Tests: false forces KVM_SET_XSAVE on every restore. */
export function setGuestFpuReload(on: boolean): void {
  enabled = on;
}

/** True if the guest's first instruction after resuming `state` over `memory` reloads all of its FPU state. */
export function reloadsFpuOnResume(memory: Uint8Array, state: CpuState): boolean {
  if (!enabled || hostLeaksFpuPointers()) return false;
  let byState = decided.get(memory);
  if (!byState) decided.set(memory, (byState = new WeakMap()));
  let yes = byState.get(state);
  if (yes === undefined) byState.set(state, (yes = checkResumePoint(memory, state)));
  return yes;
}

/**
 * The XSAVE area a restore to `state` over `image` must load: none if the guest reloads
 * all the FPU state it can reach (hardware KVM only: see the top of this file).
 */
export function xsaveToLoad(image: Uint8Array, state: CpuState, flavour: BackendInfo["flavour"]): Uint8Array {
  return flavour === "hardware" && reloadsFpuOnResume(image, state) ? NO_XSAVE : state.xsave;
}

function checkResumePoint(memory: Uint8Array, state: CpuState): boolean {
  const rip = state.rip, rsp = state.gprs[RSP]!;
  const size = BigInt(memory.length);
  if (rip + BigInt(FXRSTOR64_RSP.length) > size || rsp % 16n !== 0n || rsp + BigInt(FXSAVE_AREA) > size) return false;
  const at = Number(rip);
  return FXRSTOR64_RSP.every((byte, i) => memory[at + i] === byte);
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

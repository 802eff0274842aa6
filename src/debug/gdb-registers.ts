/**
 * The guest's registers in gdb's amd64 numbering (the layout gdb uses for an x86-64 ELF
 * when the stub sends no target description): rax rbx rcx rdx rsi rdi rbp rsp r8–r15 rip,
 * eflags and six segment selectors (32-bit), st0–st7 (80-bit), eight x87 control words,
 * xmm0–xmm15, mxcsr. FPU values come from the state's XSAVE legacy area.
 */
import type { CpuState } from "../hypervisor/virtual-machine.js";
import { fromHex, fromLeHex, leHex, toHex } from "./gdb-packets.js";

/** gdb register number -> index into CpuState.gprs (kvm_regs order: rax rbx rcx rdx rsi rdi rsp rbp r8…). */
const GPR_INDEX = [0, 1, 2, 3, 4, 5, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
const RIP = 16, EFLAGS = 17, FIRST_SEGMENT = 18, FIRST_ST = 24, FIRST_X87_CONTROL = 32, FIRST_XMM = 40, MXCSR = 56;
export const REGISTER_COUNT = 57;
const SELECTORS = [0x33, 0x2b, 0, 0, 0, 0]; // cs ss ds es fs gs of a CPL-3 64-bit guest
/** fctrl fstat ftag fiseg fioff foseg fooff fop: where each lives in the FXSAVE image, and its width there. */
const X87_CONTROL: ReadonlyArray<readonly [number, number]> = [[0, 2], [2, 2], [4, 1], [12, 2], [8, 4], [20, 2], [16, 4], [6, 2]];

export function registerSize(n: number): number {
  if (n <= RIP) return 8;
  if (n < FIRST_ST) return 4;
  if (n < FIRST_X87_CONTROL) return 10;
  if (n < FIRST_XMM) return 4;
  if (n < MXCSR) return 16;
  return n === MXCSR ? 4 : 0;
}

/** One register as gdb's hex, or undefined for a number gdb should not ask for. */
export function readRegister(state: CpuState, n: number): string | undefined {
  const x = state.xsave;
  const u = (at: number, width: number): bigint => {
    let v = 0n;
    for (let i = width - 1; i >= 0; i--) v = (v << 8n) | BigInt(x[at + i] ?? 0);
    return v;
  };
  if (n < RIP) return leHex(state.gprs[GPR_INDEX[n]!]!, 8);
  if (n === RIP) return leHex(state.rip, 8);
  if (n === EFLAGS) return leHex(state.rflags, 4);
  if (n < FIRST_ST) return leHex(BigInt(SELECTORS[n - FIRST_SEGMENT]!), 4);
  if (n < FIRST_X87_CONTROL) return toHex(x.subarray(32 + (n - FIRST_ST) * 16, 32 + (n - FIRST_ST) * 16 + 10));
  if (n < FIRST_XMM) {
    const [at, width] = X87_CONTROL[n - FIRST_X87_CONTROL]!;
    return leHex(u(at, width), 4);
  }
  if (n < MXCSR) return toHex(x.subarray(160 + (n - FIRST_XMM) * 16, 176 + (n - FIRST_XMM) * 16));
  if (n === MXCSR) return leHex(u(24, 4), 4);
  return undefined;
}

/** The `g` reply: every register in order. */
export function readAllRegisters(state: CpuState): string {
  let out = "";
  for (let n = 0; n < REGISTER_COUNT; n++) out += readRegister(state, n)!;
  return out;
}

/** The state with register `n` set from gdb's hex; undefined if the value is malformed or the register read-only. */
export function writeRegister(state: CpuState, n: number, hex: string): CpuState | undefined {
  const size = registerSize(n);
  if (size === 0 || hex.length !== size * 2) return undefined;
  const value = fromLeHex(hex);
  if (value === undefined) return undefined;
  if (n < RIP) {
    const gprs = state.gprs.slice();
    gprs[GPR_INDEX[n]!] = value;
    return { ...state, gprs };
  }
  if (n === RIP) return { ...state, rip: value };
  if (n === EFLAGS) return { ...state, rflags: value };
  if (n < FIRST_ST) return state; // segment selectors are fixed: accepted, not changed
  const xsave = state.xsave.slice();
  const bytes = fromHex(hex)!;
  if (n < FIRST_X87_CONTROL) xsave.set(bytes, 32 + (n - FIRST_ST) * 16);
  else if (n < FIRST_XMM) {
    const [at, width] = X87_CONTROL[n - FIRST_X87_CONTROL]!;
    xsave.set(bytes.subarray(0, width), at);
  } else if (n < MXCSR) xsave.set(bytes, 160 + (n - FIRST_XMM) * 16);
  else xsave.set(bytes, 24);
  return { ...state, xsave };
}

/** The `G` packet: all registers at once. */
export function writeAllRegisters(state: CpuState, hex: string): CpuState | undefined {
  let at = 0;
  let next: CpuState | undefined = state;
  for (let n = 0; n < REGISTER_COUNT && next; n++) {
    const width = registerSize(n) * 2;
    if (at + width > hex.length) break; // gdb may send fewer registers than we have
    next = writeRegister(next, n, hex.slice(at, at + width));
    at += width;
  }
  return next;
}

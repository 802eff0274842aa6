/** Turns a fault-stub exit into a GuestFaultError: reads the exception frame the CPU pushed. */
import { GuestFaultError } from "../errors/errors.js";
import type { FaultRegisters } from "../hypervisor/virtual-machine.js";
import { SYSTEM } from "../mem/layout.js";

const MNEMONICS = ["#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP"];
const DESCRIPTIONS: Record<number, string> = {
  0: "divide error",
  3: "breakpoint",
  6: "invalid opcode",
  8: "double fault",
  13: "general protection fault",
  14: "page fault",
  19: "SIMD floating-point exception",
};
/** Vectors for which the CPU pushes an error code. */
const HAS_ERROR_CODE = new Set([8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);

export function mnemonic(vector: number): string {
  return MNEMONICS[vector] ?? `#${vector}`;
}

/** Builds the error from the frame at RSP on the ring-0 (or IST) stack, or from what the backend saw directly. */
export function faultError(vector: number, memory: Uint8Array, regs: FaultRegisters): GuestFaultError {
  const frame = exceptionFrame(memory, regs, vector);
  const rip = frame?.rip ?? regs.rip;
  const errorCode = HAS_ERROR_CODE.has(vector) ? (frame ? frame.errorCode : regs.direct?.errorCode) : undefined;
  const address = vector === 14 ? regs.cr2 : undefined;
  return new GuestFaultError(vector, mnemonic(vector), rip, address, errorCode, describe(vector, address, errorCode));
}

/**
 * The frame the CPU pushed for `vector` on vmlet's ring-0 (or IST) stack — [error code]
 * rip cs rflags rsp ss — or undefined where there is none (the backend saw the fault
 * itself, or RSP is not on a system stack).
 */
export function exceptionFrame(
  memory: Uint8Array,
  regs: FaultRegisters,
  vector: number,
): { readonly errorCode: number | undefined; readonly rip: bigint; readonly rflags: bigint; readonly rsp: bigint } | undefined {
  if (regs.direct !== undefined) return undefined;
  const rsp = Number(regs.rsp);
  const hasCode = HAS_ERROR_CODE.has(vector);
  const size = (hasCode ? 6 : 5) * 8;
  const on = (stack: { readonly start: number; readonly top: number }): boolean => rsp >= stack.start && rsp + size <= stack.top;
  if (!on(SYSTEM.ring0Stack) && !on(SYSTEM.istStack)) return undefined;
  const view = new DataView(memory.buffer, memory.byteOffset, memory.byteLength);
  const at = rsp + (hasCode ? 8 : 0);
  return {
    errorCode: hasCode ? view.getUint32(rsp, true) : undefined,
    rip: view.getBigUint64(at, true),
    rflags: view.getBigUint64(at + 16, true),
    rsp: view.getBigUint64(at + 24, true),
  };
}

/** A triple fault (shutdown exit): no frame, report what the vCPU shows. */
export function tripleFaultError(regs: FaultRegisters): GuestFaultError {
  return new GuestFaultError(8, "#DF", regs.rip, regs.cr2 === 0n ? undefined : regs.cr2, undefined, ": triple fault, the vCPU shut down");
}

function describe(vector: number, address: bigint | undefined, errorCode: number | undefined): string {
  const what = DESCRIPTIONS[vector] ? ` (${DESCRIPTIONS[vector]})` : "";
  if (vector !== 14 || address === undefined || errorCode === undefined) return what;
  const access = errorCode & 0x10 ? "execute" : errorCode & 2 ? "write" : "read";
  const cause = errorCode & 1 ? "protection violation" : "page not present";
  return `${what}: ${access} of 0x${address.toString(16)}, ${cause}${address < 0x1000n ? " (null pointer?)" : ""}`;
}

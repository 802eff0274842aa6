/**
 * The guest's own CPU state where it stopped. After a fault on a VM the vCPU sits in
 * vmlet's CPL-0 stub: the general registers and FPU state are still the guest's, but RIP,
 * RSP and RFLAGS are in the exception frame the CPU pushed on the ring-0 (or IST) stack.
 * The process backend reports the guest's own registers directly.
 */
import type { CpuState, FaultRegisters, VirtualMachine } from "../hypervisor/virtual-machine.js";
import { SYSTEM } from "../mem/layout.js";

/** Vectors for which the CPU pushes an error code (the frame is one word longer). */
const HAS_ERROR_CODE = new Set([8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);

/** `faultVector`: the vector of the fault the guest stopped at, if it did. */
export function guestStateAt(vm: VirtualMachine, faultVector?: number): CpuState {
  const state = vm.getCpuState();
  const frame = faultVector === undefined ? undefined : exceptionFrame(vm.memory, vm.faultRegisters(), faultVector);
  if (!frame) return state;
  const gprs = state.gprs.slice();
  gprs[6] = frame.rsp;
  return { ...state, gprs, rip: frame.rip, rflags: frame.rflags };
}

function exceptionFrame(memory: Uint8Array, regs: FaultRegisters, vector: number): { rip: bigint; rflags: bigint; rsp: bigint } | undefined {
  if (regs.direct !== undefined) return undefined;
  const rsp = Number(regs.rsp);
  const words = HAS_ERROR_CODE.has(vector) ? 6 : 5;
  const onStack = (start: number, top: number): boolean => rsp >= start && rsp + words * 8 <= top;
  if (!onStack(SYSTEM.ring0Stack.start, SYSTEM.ring0Stack.top) && !onStack(SYSTEM.istStack.start, SYSTEM.istStack.top)) return undefined;
  const view = new DataView(memory.buffer, memory.byteOffset, memory.byteLength);
  const at = rsp + (HAS_ERROR_CODE.has(vector) ? 8 : 0); // [error code] rip cs rflags rsp ss
  return { rip: view.getBigUint64(at, true), rflags: view.getBigUint64(at + 16, true), rsp: view.getBigUint64(at + 24, true) };
}

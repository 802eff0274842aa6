/**
 * The guest's own CPU state where it stopped. After a fault on a VM the vCPU sits in
 * vmlet's CPL-0 stub: the general registers and FPU state are still the guest's, but RIP,
 * RSP and RFLAGS are in the exception frame the CPU pushed on the ring-0 (or IST) stack.
 * The process backend reports the guest's own registers directly.
 */
import type { CpuState, VirtualMachine } from "../hypervisor/virtual-machine.js";
import { exceptionFrame } from "../sandbox/faults.js";

/** `faultVector`: the vector of the fault the guest stopped at, if it did. */
export function guestStateAt(vm: VirtualMachine, faultVector?: number): CpuState {
  const state = vm.getCpuState();
  const frame = faultVector === undefined ? undefined : exceptionFrame(vm.memory, vm.faultRegisters(), faultVector);
  if (!frame) return state;
  const gprs = state.gprs.slice();
  gprs[6] = frame.rsp;
  return { ...state, gprs, rip: frame.rip, rflags: frame.rflags };
}

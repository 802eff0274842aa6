/** The one place that picks a backend: everything above hypervisor/ asks here. */
import { KvmMachine } from "./kvm/kvm-machine.js";
import { KvmSystem } from "./kvm/system.js";
import type { BackendInfo, VirtualMachine } from "./virtual-machine.js";

/** A new VM with `memorySize` bytes of guest memory at guest physical address 0. */
export function createVirtualMachine(memorySize: number): VirtualMachine {
  return new KvmMachine(memorySize);
}

/** Opens the backend (checking it is usable) and says which one and which flavour it is. */
export function backendInfo(): BackendInfo {
  return KvmSystem.open().backend;
}

/** The one place that picks a backend: everything above hypervisor/ asks here. */
import { KvmMachine } from "./kvm/kvm-machine.js";
import { KvmSystem } from "./kvm/system.js";
import type { BackendInfo, VirtualMachine } from "./virtual-machine.js";
import { cpuIdentityFromCpuid, type CpuIdentity } from "./cpu-features.js";
import type { GuestMemory } from "../mem/guest-memory.js";

/** A new VM whose guest physical memory (from address 0) is `memory`. */
export function createVirtualMachine(memory: GuestMemory, options: { trackDirtyPages?: boolean } = {}): VirtualMachine {
  return new KvmMachine(memory, options);
}

/** Opens the backend (checking it is usable) and says which one and which flavour it is. */
export function backendInfo(): BackendInfo {
  return KvmSystem.open().backend;
}

/** Vendor and features the backend's vCPUs show guests. */
export function guestCpuIdentity(): CpuIdentity {
  if (!identity) {
    const system = KvmSystem.open();
    identity = cpuIdentityFromCpuid(system.supportedCpuid, system.supportedCpuidCount);
  }
  return identity;
}

let identity: CpuIdentity | undefined;

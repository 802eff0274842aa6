/** The one place that picks a backend: everything above hypervisor/ asks here. */
import { KvmMachine } from "./kvm/kvm-machine.js";
import { KvmSystem } from "./kvm/system.js";
import { dirtyRingAvailable } from "./kvm/vm.js";
import { describeGuestFpu } from "./fpu-reload.js";
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

/** What `vmlet doctor` reports beyond the flavour: how restores learn dirty pages, and how guests save their FPU state. */
export interface BackendDetails {
  readonly dirtyPages: "ring" | "bitmap";
  /** VirtualMachine.guestXcr0: 0 where guests reach only x87/SSE. */
  readonly guestXcr0: number;
  /** FPU_XSAVE_MASK the host gives SDK guests (0: fxsave64). */
  readonly xsaveMask: number;
  /** Whether restores of SDK guests' snapshots skip KVM_SET_XSAVE on this host. */
  readonly reloadSkipsIoctl: boolean;
}

export function backendDetails(): BackendDetails {
  const system = KvmSystem.open();
  const fpu = describeGuestFpu(system.guestXcr0);
  return { dirtyPages: dirtyRingAvailable(system) ? "ring" : "bitmap", guestXcr0: system.guestXcr0, ...fpu };
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

/**
 * The one place that picks a backend: everything above hypervisor/ asks here.
 *
 * "kvm": a KVM virtual machine per sandbox (hardware virtualisation, or PVM on nested
 * hosts). "process": a seccomp-confined child process per sandbox, for machines without a
 * usable /dev/kvm (docs/backends.md compares them). "auto", the default, takes KVM when
 * /dev/kvm opens and answers KVM ioctls, and the process backend otherwise. The
 * VMLET_BACKEND environment variable sets the default.
 */
import { KvmMachine } from "./kvm/kvm-machine.js";
import { KvmSystem } from "./kvm/system.js";
import { dirtyRingAvailable } from "./kvm/vm.js";
import { ProcessMachine } from "./process/process-machine.js";
import { startWarmChildren, warmChildCapacity } from "./process/warm-children.js";
import { helperPath } from "./process/helper-path.js";
import { processGuestXcr0 } from "./process/host-cpu.js";
import { describeGuestFpu } from "./fpu-reload.js";
import type { BackendInfo, BackendName, VirtualMachine } from "./virtual-machine.js";
import { cpuIdentityFromCpuid, cpuIdentityFromHost, type CpuIdentity } from "./cpu-features.js";
import { GuestMemory } from "../mem/guest-memory.js";
import { BackendUnavailableError, InvalidConfigError } from "../errors/errors.js";
import { loadAddon } from "../native/addon.js";

import { BACKEND_CHOICES, type BackendChoice } from "./backend-choice.js";

export { BACKEND_CHOICES, type BackendChoice };

const PROCESS_INFO: BackendInfo = { name: "process", flavour: "seccomp" };

/** The backend a choice means on this machine (throws BackendUnavailableError for an explicit one that does not work). */
export function resolveBackend(choice: BackendChoice = defaultChoice()): BackendName {
  if (choice === "kvm") {
    KvmSystem.open();
    return "kvm";
  }
  if (choice === "process") {
    helperPath();
    warmChildCapacity(); // a bad VMLET_WARM_CHILDREN is refused before anything is created
    return "process";
  }
  autoChoice ??= kvmWorks() ? "kvm" : "process";
  if (autoChoice === "process") warmChildCapacity();
  return autoChoice;
}

let autoChoice: BackendName | undefined;

function kvmWorks(): boolean {
  try {
    KvmSystem.open();
    return true;
  } catch {
    return false;
  }
}

function defaultChoice(): BackendChoice {
  const env = process.env.VMLET_BACKEND;
  if (env === undefined || env === "") return "auto";
  if ((BACKEND_CHOICES as readonly string[]).includes(env)) return env as BackendChoice;
  throw new InvalidConfigError(`VMLET_BACKEND must be one of ${BACKEND_CHOICES.join(", ")} (got ${JSON.stringify(env)})`);
}

/**
 * Starts, ahead of a VM of this backend, what creating it will wait for, while the caller
 * reads and lays out its guest (process backend: the waiting children, so that a process's
 * first sandbox does not wait for a helper's exec and start-up).
 */
export function prepareBackend(backend: BackendName): void {
  if (backend === "process") startWarmChildren();
}

/** Zeroed guest memory of the kind `backend` runs on; `hugePages`: advised for transparent huge pages (mem/huge-pages.ts). */
export function allocateGuestMemory(size: number, backend: BackendName = resolveBackend(), hugePages = false): GuestMemory {
  return backend === "process" ? GuestMemory.allocateShared(size, hugePages) : GuestMemory.allocate(size, hugePages);
}

/** A new VM whose guest physical memory (from address 0) is `memory` (from allocateGuestMemory for the same backend). */
export function createVirtualMachine(memory: GuestMemory, options: { trackDirtyPages?: boolean; backend?: BackendName } = {}): VirtualMachine {
  const backend = options.backend ?? resolveBackend();
  return backend === "process" ? new ProcessMachine(memory) : new KvmMachine(memory, options);
}

/** Opens the backend (checking it is usable) and says which one and which flavour it is. */
export function backendInfo(choice?: BackendChoice): BackendInfo {
  return resolveBackend(choice) === "process" ? PROCESS_INFO : KvmSystem.open().backend;
}

/** Why each backend does or does not work here (vmlet doctor). */
export function backendAvailability(): ReadonlyArray<{ readonly name: BackendName; readonly works: boolean; readonly why?: string }> {
  const check = (name: BackendName): { name: BackendName; works: boolean; why?: string } => {
    try {
      resolveBackend(name);
      return { name, works: true };
    } catch (error) {
      return { name, works: false, why: error instanceof BackendUnavailableError || error instanceof Error ? error.message : String(error) };
    }
  };
  return [check("kvm"), check("process")];
}

/** What `vmlet doctor` reports beyond the flavour: how restores learn dirty pages, and how guests save their FPU state. */
export interface BackendDetails {
  readonly dirtyPages: "ring" | "bitmap" | "compare";
  /** VirtualMachine.guestXcr0: 0 where guests reach only x87/SSE. */
  readonly guestXcr0: number;
  /** FPU_XSAVE_MASK the host gives SDK guests (0: fxsave64). */
  readonly xsaveMask: number;
  /** Whether restores of SDK guests' snapshots skip KVM_SET_XSAVE on this host. */
  readonly reloadSkipsIoctl: boolean;
}

export function backendDetails(choice?: BackendChoice): BackendDetails {
  if (resolveBackend(choice) === "process") {
    const guestXcr0 = processGuestXcr0();
    return { dirtyPages: "compare", guestXcr0, ...describeGuestFpu(guestXcr0), reloadSkipsIoctl: false };
  }
  const system = KvmSystem.open();
  const fpu = describeGuestFpu(system.guestXcr0);
  return { dirtyPages: dirtyRingAvailable(system) ? "ring" : "bitmap", guestXcr0: system.guestXcr0, ...fpu };
}

/** Vendor and features the backend's vCPUs (or, for the process backend, the host CPU) show guests. */
export function guestCpuIdentity(backend: BackendName = resolveBackend()): CpuIdentity {
  if (backend === "process") return (hostIdentity ??= cpuIdentityFromHost((leaf, subleaf) => loadAddon().cpuid(leaf, subleaf)));
  if (!kvmIdentity) {
    const system = KvmSystem.open();
    kvmIdentity = cpuIdentityFromCpuid(system.supportedCpuid, system.supportedCpuidCount);
  }
  return kvmIdentity;
}

let kvmIdentity: CpuIdentity | undefined;
let hostIdentity: CpuIdentity | undefined;

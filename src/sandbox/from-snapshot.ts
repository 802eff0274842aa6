/**
 * Assembling a sandbox from a snapshot: memory mapped copy-on-write from the image
 * (O(1) in memory size), a VM (a parked one of the same snapshot, or a new one), the
 * fixed CPU setup and the snapshot's CPU state.
 */
import { allocateGuestMemory, createVirtualMachine, resolveBackend } from "../hypervisor/backend.js";
import type { BackendName, VirtualMachine } from "../hypervisor/virtual-machine.js";
import type { GuestMemory } from "../mem/guest-memory.js";
import { planHugePages } from "../mem/huge-pages.js";
import { unparkVm } from "./parked-vms.js";
import { requireSuperset } from "../snapshot/host-function-rules.js";
import type { Snapshot } from "../snapshot/snapshot.js";
import { HostFunctionRegistry } from "./host-functions.js";
import { defaultGuestLogger } from "./logging.js";
import type { SandboxParts } from "./sandbox.js";
import type { ResolvedSnapshotConfig } from "./snapshot-config.js";

export function partsFromSnapshot(snapshot: Snapshot, config: ResolvedSnapshotConfig): SandboxParts {
  const hostFunctions = new HostFunctionRegistry();
  for (const f of config.hostFunctions) hostFunctions.register(f.name, f.params, f.returns, f.impl);
  requireSuperset(snapshot.state.hostFunctions, hostFunctions, "Sandbox.fromSnapshot()");
  const { layout, system, cpu, functions } = snapshot.state;
  const backend = resolveBackend(config.backend);
  const { vm, memory } = unparkVm(snapshot.image, backend) ?? freshVm(snapshot, backend, planHugePages(config.hugePages, layout.memorySize, backend).hostAdvice);
  try {
    vm.configure(system);
    vm.setCpuState(cpu);
  } catch (error) {
    vm.destroy();
    throw error;
  }
  return {
    vm, memory, layout, system, hostFunctions,
    lineage: snapshot.lineage,
    base: snapshot,
    functions: new Map(functions.map((f) => [f.name, f])),
    logger: config.guestLogger ?? defaultGuestLogger,
    maxGuestLogLevel: config.maxGuestLogLevel ?? snapshot.state.maxGuestLogLevel,
    timeoutMs: config.timeoutMs,
    cpuTimeMs: config.cpuTimeMs,
    coreDumpDir: config.coreDumpDir,
  };
}

/** A new VM with dirty logging from the start; its memory is mapped before the VM sees it (cheaper than remapping a live VM's). */
function freshVm(snapshot: Snapshot, backend: BackendName, hugePages: boolean): { vm: VirtualMachine; memory: GuestMemory } {
  const memory = allocateGuestMemory(snapshot.state.layout.memorySize, backend, hugePages);
  memory.mapImage(snapshot.image);
  return { vm: createVirtualMachine(memory, { trackDirtyPages: true, backend }), memory };
}

/** A Sandbox's parts around a fake VM, for tests of Sandbox's own logic without a backend. */
import type { GuestFunction } from "../src/abi/function-table.js";
import type { VirtualMachine } from "../src/hypervisor/virtual-machine.js";
import { HostFunctionRegistry } from "../src/sandbox/host-functions.js";
import type { SandboxParts } from "../src/sandbox/sandbox.js";

/** Parts with 1 MiB of memory (I/O buffers at 0x20000 and 0x22000) and the guest functions given. */
export function fakeSandboxParts(vm: VirtualMachine, functions: readonly GuestFunction[]): SandboxParts {
  return {
    vm,
    memory: {} as SandboxParts["memory"],
    layout: { controlBlock: 0x10000, input: { address: 0x20000, size: 4096 }, output: { address: 0x22000, size: 4096 }, memorySize: 1 << 20 } as SandboxParts["layout"],
    system: {} as SandboxParts["system"],
    lineage: { id: "fake", guestElf: new Uint8Array(), generation: 0 },
    base: undefined,
    functions: new Map(functions.map((f) => [f.name, f])),
    hostFunctions: new HostFunctionRegistry(),
    logger: () => undefined,
    maxGuestLogLevel: "info",
    timeoutMs: undefined,
    cpuTimeMs: undefined,
    coreDumpDir: undefined,
  };
}

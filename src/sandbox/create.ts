/**
 * Building a sandbox from a guest ELF: lay out memory, load the image, write the
 * system tables and page tables, start the guest and run its initialisation.
 */
import { guestXsaveMask } from "../hypervisor/fpu-reload.js";
import { ABI_VERSION, CB, CONTROL_MAGIC, IMAGE_BASE } from "../abi/constants.js";
import { readFunctionTable } from "../abi/function-table.js";
import { BadGuestBinaryError, VmletError } from "../errors/errors.js";
import { allocateGuestMemory, createVirtualMachine, prepareBackend, resolveBackend } from "../hypervisor/backend.js";
import { HostWrites } from "../mem/host-writes.js";
import type { SystemSetup, VirtualMachine } from "../hypervisor/virtual-machine.js";
import { loadElf, parseElf, type ElfImage, type ElfSegment } from "../mem/elf.js";
import { computeLayout, PAGE, THREAD_POINTER, type Access, type MemoryLayout } from "../mem/layout.js";
import { tlsBlockSize, writeThreadBlock } from "../mem/thread-block.js";
import { planHugePages } from "../mem/huge-pages.js";
import { buildPageTables, type TableForm } from "../mem/page-tables.js";
import { writeSystemTables } from "../mem/system-tables.js";
import { CallSession, callContext, finishSync } from "./call-session.js";
import type { ResolvedConfig } from "./config.js";
import { HostFunctionRegistry } from "./host-functions.js";
import { defaultGuestLogger, levelNumber } from "./logging.js";
import { randomSeed, randomUuid } from "./entropy.js";
import { Sandbox } from "./sandbox.js";
import { readGuestFile } from "./guest-files.js";

/** Guest images must fit in [IMAGE_BASE, IMAGE_BASE + 256 MiB). */
const MAX_IMAGE_SIZE = 256 << 20;

export async function buildSandbox(config: ResolvedConfig): Promise<Sandbox> {
  const backend = resolveBackend(config.backend);
  prepareBackend(backend); // the process backend's helper starts while the guest is read
  const bytes = await readGuest(config.guest);
  const image = parseElf(bytes, { minAddress: IMAGE_BASE, maxAddress: IMAGE_BASE + MAX_IMAGE_SIZE });
  const layout = computeLayout({
    image: image.segments.map(pageSpan),
    imageEnd: image.end,
    inputSize: config.inputSize,
    outputSize: config.outputSize,
    heapSize: config.heapSize,
    stackSize: config.stackSize,
    tlsBlockSize: tlsBlockSize(image.tls),
  });
  const hostFunctions = new HostFunctionRegistry();
  for (const f of config.hostFunctions) hostFunctions.register(f.name, f.params, f.returns, f.impl);
  const hugePages = planHugePages(config.hugePages, layout.memorySize, backend);
  const memory = allocateGuestMemory(layout.memorySize, backend, hugePages.hostAdvice);
  const vm = createVirtualMachine(memory, { backend });
  try {
    const system = prepareMemory(vm, image, bytes, layout, config, hugePages.tableForm);
    vm.start(image.entry, layout.stack.top, THREAD_POINTER);
    runInit(vm, layout, hostFunctions, config);
    checkGuestAbi(vm.memory, layout);
    const functions = readFunctionTable(vm.memory, layout.controlBlock);
    return new Sandbox({
      vm, memory, layout, system, functions, hostFunctions,
      lineage: { id: randomUuid(), guestElf: bytes, generation: 0 },
      base: undefined,
      logger: config.guestLogger ?? defaultGuestLogger,
      maxGuestLogLevel: config.maxGuestLogLevel,
      timeoutMs: config.timeoutMs,
      cpuTimeMs: config.cpuTimeMs,
      coreDumpDir: config.coreDumpDir,
    });
  } catch (error) {
    vm.destroy();
    throw error;
  }
}

/** The SDK writes its ABI version into the control block at start-up. */
function checkGuestAbi(memory: Uint8Array, layout: MemoryLayout): void {
  const view = new DataView(memory.buffer, memory.byteOffset + layout.controlBlock, CB.size);
  const guestAbi = view.getUint32(CB.guestAbi, true);
  if (guestAbi !== ABI_VERSION) {
    throw new BadGuestBinaryError(`guest was built with vmlet ABI version ${guestAbi}, this host speaks ${ABI_VERSION}: rebuild it with this SDK`);
  }
}

/** The guest's bytes, the lineage's own: a caller's buffer is copied, so that writing to it later changes no snapshot of this build. */
async function readGuest(guest: string | Uint8Array): Promise<Uint8Array> {
  if (guest instanceof Uint8Array) return new Uint8Array(guest); // a copy (a Buffer's slice() would be a view of the same memory)
  try {
    return await readGuestFile(guest);
  } catch (error) {
    throw new BadGuestBinaryError(`cannot read guest binary ${guest}: ${(error as Error).message}`, { cause: error });
  }
}

function pageSpan(s: ElfSegment): { start: number; size: number; access: Access } {
  const start = Math.floor(s.vaddr / PAGE) * PAGE;
  const end = Math.ceil((s.vaddr + s.memSize) / PAGE) * PAGE;
  const access: Access = s.executable ? "user-rx" : s.writable ? "user-rw" : "user-r";
  return { start, size: end - start, access };
}

/** Loads the image, writes the system and page tables and the control block; returns the CPU setup. */
function prepareMemory(vm: VirtualMachine, image: ElfImage, bytes: Uint8Array, layout: MemoryLayout, config: ResolvedConfig, tableForm: TableForm): SystemSetup {
  loadElf(image, bytes, vm.memory);
  writeThreadBlock(vm.memory, image.tls, bytes, randomSeed()); // the stack-protector canary: this sandbox's own
  const system = { ...writeSystemTables(vm.memory), pml4Address: buildPageTables(vm.memory, layout, tableForm) };
  vm.configure(system);
  writeControlBlock(vm.memory, layout, levelNumber(config.maxGuestLogLevel), guestXsaveMask(vm.guestXcr0));
  return system;
}

function writeControlBlock(memory: Uint8Array, layout: MemoryLayout, logLevel: number, xsaveMask: number): void {
  const view = new DataView(memory.buffer, memory.byteOffset + layout.controlBlock, CB.size);
  view.setUint32(CB.magic, CONTROL_MAGIC, true);
  view.setUint32(CB.abiVersion, ABI_VERSION, true);
  view.setBigUint64(CB.inputAddress, BigInt(layout.input.address), true);
  view.setUint32(CB.inputSize, layout.input.size, true);
  view.setBigUint64(CB.outputAddress, BigInt(layout.output.address), true);
  view.setUint32(CB.outputSize, layout.output.size, true);
  view.setBigUint64(CB.heapAddress, BigInt(layout.heap.address), true);
  view.setBigUint64(CB.heapSize, BigInt(layout.heap.size), true);
  view.setUint32(CB.maxLogLevel, logLevel, true);
  view.setUint32(CB.fpuXsaveMask, xsaveMask, true);
  view.setBigUint64(CB.rngSeed, randomSeed(), true);
  view.setBigUint64(CB.rngGeneration, 1n, true);
}

/**
 * Runs the guest from _start to its first READY: constructors, heap set-up, vmlet_init.
 * On the calling thread: start-up is short, and a first async call would otherwise
 * pay a vCPU migration. Host functions used during init must be synchronous.
 */
function runInit(vm: VirtualMachine, layout: MemoryLayout, hostFunctions: HostFunctionRegistry, config: ResolvedConfig): void {
  const ctx = callContext(vm, layout, hostFunctions, new HostWrites(vm.memory.byteLength), config.guestLogger ?? defaultGuestLogger, () => false);
  const session = new CallSession(ctx, "guest initialisation", "void", config.initTimeoutMs);
  try {
    finishSync(vm, session, vm.run(session.nextRunTimeoutNs()));
  } catch (error) {
    if (error instanceof VmletError) {
      error.message = `guest initialisation failed: ${error.message} (a guest must be built with the vmlet SDK, see docs/guest-sdk.md)`;
    }
    throw error;
  }
}

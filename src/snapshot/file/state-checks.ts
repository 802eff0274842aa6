/**
 * Cross-field rules for a snapshot state read from disk. The layout and the system
 * tables are recomputed from their inputs with the same code that built them and must
 * match exactly; the CPU state must be one a guest can be resumed in at a call boundary.
 */
import { isDeepStrictEqual } from "node:util";
import { IMAGE_BASE } from "../../abi/constants.js";
import type { CpuState } from "../../hypervisor/virtual-machine.js";
import { computeLayout, PAGE, THREAD_BLOCK_REGION, threadPointerOf, type ImageSegment, type MemoryLayout } from "../../mem/layout.js";
import { systemSetup } from "../../mem/system-tables.js";
import type { SnapshotState } from "../snapshot.js";
import { SnapshotInvalidError } from "./errors.js";

const IMAGE_SEGMENT = /^image segment (\d+)$/;
const GPR_RSP = 6;
/** RFLAGS bits a user-mode guest can hold: CF PF AF ZF SF TF IF DF OF RF AC ID, plus the always-one bit 1. */
const RFLAGS_ALLOWED = 0x1n | 0x2n | 0x4n | 0x10n | 0x40n | 0x80n | 0x100n | 0x200n | 0x400n | 0x800n | 0x10000n | 0x40000n | 0x200000n;
/** XSAVE components a vmlet guest's state can hold: x87, SSE, AVX, PKRU (KVM includes PKRU where the host has it). */
const XSTATE_ALLOWED = 0b111n | (1n << 9n);

export function checkState(state: SnapshotState, where: string): void {
  checkLayout(state.layout, `${where}.layout`);
  if (!isDeepStrictEqual(state.system, systemSetup(state.layout.pageTables.address))) {
    throw new SnapshotInvalidError(`${where}.system`, "does not match the system tables vmlet builds for this layout");
  }
  checkCpu(state.cpu, state.layout, `${where}.cpuState`);
  const indices = new Set(state.functions.map((f) => f.index));
  if (indices.size !== state.functions.length || state.functions.some((f) => f.index >= state.functions.length)) {
    throw new SnapshotInvalidError(`${where}.functions`, "indices must be 0 … n-1, each once");
  }
}

/** The layout must be exactly what computeLayout makes of its own image segments and sizes. */
function checkLayout(layout: MemoryLayout, where: string): void {
  const segments: ImageSegment[] = [];
  for (const region of layout.regions) {
    const m = IMAGE_SEGMENT.exec(region.name);
    if (!m) continue;
    if (Number(m[1]) !== segments.length) throw new SnapshotInvalidError(`${where}.regions`, "image segments out of order");
    segments.push({ start: region.start, size: region.size, access: region.access });
  }
  if (segments.length === 0) throw new SnapshotInvalidError(`${where}.regions`, "no image segments");
  let end = IMAGE_BASE;
  for (const [i, s] of segments.entries()) {
    if (s.start < end || s.start % PAGE || s.size === 0 || s.size % PAGE || !s.access.startsWith("user-")) {
      throw new SnapshotInvalidError(`${where}.regions`, `image segment ${i} is not page-aligned, user-mode and above the previous one`);
    }
    end = s.start + s.size;
  }
  let expected: MemoryLayout;
  try {
    expected = computeLayout({
      image: segments,
      imageEnd: layout.input.address - PAGE,
      inputSize: layout.input.size,
      outputSize: layout.output.size,
      heapSize: layout.heap.size,
      stackSize: layout.stack.top - layout.stack.bottom,
      tlsBlockSize: tlsBlockSizeOf(layout),
    });
  } catch (error) {
    throw new SnapshotInvalidError(where, (error as Error).message, { cause: error });
  }
  if (end > layout.input.address - PAGE || !isDeepStrictEqual(expected, layout)) {
    throw new SnapshotInvalidError(where, "is not a layout vmlet builds (regions, sizes or addresses disagree)");
  }
}

/** The thread-local data's size the thread block region says (page-rounded, as laid out); undefined in an old layout without one. */
function tlsBlockSizeOf(layout: MemoryLayout): number | undefined {
  const region = layout.regions.find((r) => r.name === THREAD_BLOCK_REGION);
  return region === undefined ? undefined : region.size - PAGE;
}

function checkCpu(cpu: CpuState, layout: MemoryLayout, where: string): void {
  const inRegion = (address: bigint, access: string): boolean =>
    layout.regions.some((r) => r.access === access && address >= BigInt(r.start) && address < BigInt(r.start + r.size));
  if (!inRegion(cpu.rip, "user-rx")) throw new SnapshotInvalidError(`${where}.rip`, `0x${cpu.rip.toString(16)} is not inside the guest's code`);
  const rsp = cpu.gprs[GPR_RSP]!;
  if (rsp < BigInt(layout.stack.bottom) || rsp > BigInt(layout.stack.top) || rsp % 8n !== 0n) {
    throw new SnapshotInvalidError(`${where}.gprs[rsp]`, `0x${rsp.toString(16)} is not an aligned address inside the stack`);
  }
  if ((cpu.rflags & ~RFLAGS_ALLOWED) !== 0n || (cpu.rflags & 0x2n) === 0n) {
    throw new SnapshotInvalidError(`${where}.rflags`, `0x${cpu.rflags.toString(16)} has bits a user-mode guest cannot hold`);
  }
  for (const [name, base] of [["fsBase", cpu.fsBase], ["gsBase", cpu.gsBase]] as const) {
    if (base >= 0x800000000000n && base < 0xffff800000000000n) throw new SnapshotInvalidError(`${where}.${name}`, "is not a canonical address");
  }
  // The FS base is the thread pointer vmlet laid out, never an address the file chose.
  const threadPointer = BigInt(threadPointerOf(layout));
  if (cpu.fsBase !== threadPointer) {
    throw new SnapshotInvalidError(`${where}.fsBase`, `0x${cpu.fsBase.toString(16)} is not the guest's thread pointer (0x${threadPointer.toString(16)})`);
  }
  const x = new DataView(cpu.xsave.buffer, cpu.xsave.byteOffset, cpu.xsave.byteLength);
  if (x.getUint32(24, true) > 0xffff) throw new SnapshotInvalidError(`${where}.xsave`, "MXCSR has reserved bits set");
  if ((x.getBigUint64(512, true) & ~XSTATE_ALLOWED) !== 0n) throw new SnapshotInvalidError(`${where}.xsave`, "XSTATE_BV names components vmlet guests cannot have");
  for (let at = 520; at < 576; at += 8) {
    if (x.getBigUint64(at, true) !== 0n) throw new SnapshotInvalidError(`${where}.xsave`, "XSAVE header reserved bytes (or XCOMP_BV) are not zero");
  }
}

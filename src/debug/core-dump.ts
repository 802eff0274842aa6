/**
 * Writes a sandbox's guest as an ELF core file that gdb loads with the guest ELF
 * (`gdb guest.elf core`): the user-mapped guest memory with its permissions, the guest's
 * registers where it stopped (for a fault: at the faulting instruction, read from the
 * exception frame on a VM), its FPU state, and the guest ELF. A copy of the ELF is written
 * next to the core (`<core>.elf`), so a sandbox made from a saved snapshot can be debugged
 * by someone who has only the layout. docs/debugging.md shows how to use them.
 */
import { closeSync, ftruncateSync, openSync, writeSync, writeFileSync } from "node:fs";
import path from "node:path";
import { IMAGE_BASE } from "../abi/constants.js";
import { StorageError } from "../snapshot/file/errors.js";
import type { CpuState, VirtualMachine } from "../hypervisor/virtual-machine.js";
import { parseElf } from "../mem/elf.js";
import type { MemoryLayout } from "../mem/layout.js";
import { guestStateAt } from "./guest-state.js";
import { layoutCore, type CoreExecutable, type CoreRegisters, type CoreSegment } from "./core-file.js";

const PAGE = 4096;
const MAX_IMAGE_SIZE = 256 << 20;
export const SIGSEGV = 11;
export const SIGFPE = 8;
export const SIGILL = 4;
export const SIGTRAP = 5;
export const SIGABRT = 6;

export interface CoreSource {
  readonly vm: VirtualMachine;
  readonly layout: MemoryLayout;
  readonly guestElf: Uint8Array;
}

/** Where the guest stopped, when it faulted: the vector, to find its exception frame on a VM. */
export interface FaultContext {
  readonly vector: number;
}

/** The signal gdb shows for a fault vector (as Linux would deliver it). */
export function signalForVector(vector: number): number {
  if (vector === 0 || vector === 16 || vector === 19) return SIGFPE;
  if (vector === 6) return SIGILL;
  if (vector === 1 || vector === 3) return SIGTRAP;
  return SIGSEGV;
}

/** Writes `file` and `file.elf`; returns both paths. */
export function writeCoreDump(file: string, source: CoreSource, signal: number, fault?: FaultContext): { core: string; elf: string } {
  const core = path.resolve(file);
  const elf = `${core}.elf`;
  const memory = source.vm.memory;
  const input = {
    registers: guestRegisters(source.vm, fault),
    signal,
    segments: userSegments(source.layout),
    executable: describeExecutable(source.guestElf, elf),
  };
  const { head, placements, fileSize } = layoutCore(input);
  try {
    writeFileSync(elf, source.guestElf);
    const fd = openSync(core, "w", 0o600);
    try {
      writeSync(fd, head, 0, head.length, 0);
      for (const { segment, fileOffset } of placements) writeNonZeroPages(fd, memory, segment, fileOffset);
      ftruncateSync(fd, fileSize);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    throw new StorageError(core, (error as NodeJS.ErrnoException).code, `cannot write the core dump: ${(error as Error).message}`, { cause: error });
  }
  return { core, elf };
}

/** Zero pages are skipped: they read as zeros from the file's holes. */
function writeNonZeroPages(fd: number, memory: Uint8Array, segment: CoreSegment, fileOffset: number): void {
  for (let at = 0; at < segment.size; at += PAGE) {
    const page = memory.subarray(segment.start + at, segment.start + at + PAGE);
    if (page.some((b) => b !== 0)) writeSync(fd, page, 0, page.length, fileOffset + at);
  }
}

/** The user-accessible regions of the layout, as the guest sees them. */
function userSegments(layout: MemoryLayout): CoreSegment[] {
  return layout.regions
    .filter((r) => r.access.startsWith("user-"))
    .sort((a, b) => a.start - b.start)
    .map((r) => ({ start: r.start, size: r.size, readable: true, writable: r.access === "user-rw", executable: r.access === "user-rx" }));
}

function describeExecutable(bytes: Uint8Array, copyPath: string): CoreExecutable {
  const image = parseElf(bytes, { minAddress: IMAGE_BASE, maxAddress: IMAGE_BASE + MAX_IMAGE_SIZE });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const phoff = Number(view.getBigUint64(32, true));
  const phnum = view.getUint16(56, true);
  const holder = image.segments.find((s) => s.fileOffset <= phoff && phoff + phnum * 56 <= s.fileOffset + s.fileSize);
  return {
    path: copyPath,
    entry: image.entry,
    phdrAddress: holder ? holder.vaddr + (phoff - holder.fileOffset) : 0,
    phnum,
    loads: image.segments.map((s) => ({
      start: Math.floor(s.vaddr / PAGE) * PAGE,
      end: Math.ceil((s.vaddr + s.fileSize) / PAGE) * PAGE,
      fileOffset: Math.floor(s.fileOffset / PAGE) * PAGE,
    })),
  };
}

/** The guest's registers where it stopped, for the core's notes. */
function guestRegisters(vm: VirtualMachine, fault?: FaultContext): CoreRegisters {
  const state = guestStateAt(vm, fault?.vector);
  return { ...state, xsave: padXsave(state), xcr0: vm.guestXcr0 };
}

function padXsave(state: CpuState): Uint8Array {
  if (state.xsave.length >= 576) return state.xsave;
  const out = new Uint8Array(576);
  out.set(state.xsave);
  return out;
}

/**
 * An ELF core file of a guest, in the form gdb reads for an x86-64 Linux process:
 *
 *   ELF header (ET_CORE, EM_X86_64)
 *   program headers: PT_NOTE, then one PT_LOAD per mapped guest region (with its permissions)
 *   notes: NT_PRSTATUS (general registers), NT_PRPSINFO, NT_PRFPREG (x87/SSE), NT_X86_XSTATE
 *          (the XSAVE image, XCR0 in its software-reserved bytes), NT_AUXV (AT_ENTRY, AT_PHDR,
 *          AT_PHENT, AT_PHNUM), NT_FILE (which guest ELF the code pages come from)
 *   segment data, page-aligned; zero pages are left as holes in the file (sparse)
 *
 * Everything is computed here from plain inputs; writing the bytes is core-dump.ts's job.
 */

import { XSAVE_COMPONENTS, XSAVE_HEADER_END } from "../hypervisor/xsave-components.js";

const PAGE = 4096;
const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const PT_LOAD = 1;
const PT_NOTE = 4;
const PF_X = 1, PF_W = 2, PF_R = 4;
const NT_PRSTATUS = 1, NT_PRFPREG = 2, NT_PRPSINFO = 3, NT_AUXV = 6, NT_X86_XSTATE = 0x202, NT_FILE = 0x46494c45;
const AT_NULL = 0, AT_PHDR = 3, AT_PHENT = 4, AT_PHNUM = 5, AT_PAGESZ = 6, AT_ENTRY = 9;
const PRSTATUS_SIZE = 336;
const PRSTATUS_REG_OFFSET = 112;
const PRPSINFO_SIZE = 136;
/** gdb reads the XCR0 a core's XSAVE image was taken with from these bytes (I386_LINUX_XSAVE_XCR0_OFFSET). */
const XSAVE_XCR0_OFFSET = 464;

/** The guest's registers in struct kvm_regs order (rax rbx rcx rdx rsi rdi rsp rbp r8..r15) plus the rest. */
export interface CoreRegisters {
  readonly gprs: BigUint64Array;
  readonly rip: bigint;
  readonly rflags: bigint;
  readonly fsBase: bigint;
  readonly gsBase: bigint;
  /** Standard-format XSAVE image (at least the 512-byte legacy area). */
  readonly xsave: Uint8Array;
  /** The XSAVE components the guest could use. */
  readonly xcr0: number;
}

export interface CoreSegment {
  readonly start: number;
  readonly size: number;
  readonly readable: boolean;
  readonly writable: boolean;
  readonly executable: boolean;
}

/** Where the guest ELF's code is, for NT_FILE and the auxiliary vector. */
export interface CoreExecutable {
  /** Path recorded in NT_FILE and NT_PRPSINFO (the copy written next to the core). */
  readonly path: string;
  readonly entry: number;
  /** Guest address of the ELF's program headers, if a segment maps them; 0 otherwise. */
  readonly phdrAddress: number;
  readonly phnum: number;
  /** The ELF's PT_LOAD segments: guest address range and file offset. */
  readonly loads: ReadonlyArray<{ readonly start: number; readonly end: number; readonly fileOffset: number }>;
}

export interface CoreInput {
  readonly registers: CoreRegisters;
  /** Signal number gdb shows ("Program terminated with signal …"): SIGSEGV for a fault, SIGABRT for an abort, 0 otherwise. */
  readonly signal: number;
  readonly segments: readonly CoreSegment[];
  readonly executable: CoreExecutable;
}

/** The file's layout: the header and notes to write at offset 0, and where each segment's bytes go. */
export interface CoreLayout {
  readonly head: Uint8Array;
  readonly placements: ReadonlyArray<{ readonly segment: CoreSegment; readonly fileOffset: number }>;
  readonly fileSize: number;
}

export function layoutCore(input: CoreInput): CoreLayout {
  const notes = encodeNotes(input);
  const phnum = 1 + input.segments.length;
  const notesOffset = EHDR_SIZE + phnum * PHDR_SIZE;
  let cursor = alignUp(notesOffset + notes.length, PAGE);
  const placements = input.segments.map((segment) => {
    const fileOffset = cursor;
    cursor += segment.size;
    return { segment, fileOffset };
  });
  const head = new Uint8Array(notesOffset + notes.length);
  const view = new DataView(head.buffer);
  writeElfHeader(view, phnum);
  writePhdr(view, EHDR_SIZE, { type: PT_NOTE, flags: PF_R, offset: notesOffset, vaddr: 0, size: notes.length, align: 4 });
  placements.forEach(({ segment, fileOffset }, i) => {
    const flags = (segment.readable ? PF_R : 0) | (segment.writable ? PF_W : 0) | (segment.executable ? PF_X : 0);
    writePhdr(view, EHDR_SIZE + (i + 1) * PHDR_SIZE, { type: PT_LOAD, flags, offset: fileOffset, vaddr: segment.start, size: segment.size, align: PAGE });
  });
  head.set(notes, notesOffset);
  return { head, placements, fileSize: cursor };
}

function writeElfHeader(v: DataView, phnum: number): void {
  [0x7f, 0x45, 0x4c, 0x46, 2 /* 64-bit */, 1 /* little-endian */, 1 /* version */, 0 /* System V */].forEach((b, i) => v.setUint8(i, b));
  v.setUint16(16, 4, true); // ET_CORE
  v.setUint16(18, 62, true); // EM_X86_64
  v.setUint32(20, 1, true);
  v.setBigUint64(32, BigInt(EHDR_SIZE), true); // e_phoff
  v.setUint16(52, EHDR_SIZE, true);
  v.setUint16(54, PHDR_SIZE, true);
  v.setUint16(56, phnum, true);
  v.setUint16(58, 64, true); // e_shentsize (no sections)
}

function writePhdr(v: DataView, at: number, p: { type: number; flags: number; offset: number; vaddr: number; size: number; align: number }): void {
  v.setUint32(at, p.type, true);
  v.setUint32(at + 4, p.flags, true);
  v.setBigUint64(at + 8, BigInt(p.offset), true);
  v.setBigUint64(at + 16, BigInt(p.vaddr), true);
  v.setBigUint64(at + 24, 0n, true); // p_paddr
  v.setBigUint64(at + 32, BigInt(p.size), true); // p_filesz (the same as p_memsz: zero pages are file holes)
  v.setBigUint64(at + 40, BigInt(p.size), true); // p_memsz
  v.setBigUint64(at + 48, BigInt(p.align), true);
}

function encodeNotes(input: CoreInput): Uint8Array {
  const parts = [
    note("CORE", NT_PRSTATUS, prstatus(input.registers, input.signal)),
    note("CORE", NT_PRPSINFO, prpsinfo(input.executable.path)),
    note("CORE", NT_PRFPREG, input.registers.xsave.slice(0, 512)),
    note("LINUX", NT_X86_XSTATE, xstate(input.registers)),
    note("CORE", NT_AUXV, auxv(input.executable)),
    note("CORE", NT_FILE, fileNote(input.executable)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** namesz, descsz, type, name (NUL, padded to 4), desc (padded to 4). */
function note(name: string, type: number, desc: Uint8Array): Uint8Array {
  const nameBytes = new TextEncoder().encode(`${name}\0`);
  const out = new Uint8Array(12 + alignUp(nameBytes.length, 4) + alignUp(desc.length, 4));
  const v = new DataView(out.buffer);
  v.setUint32(0, nameBytes.length, true);
  v.setUint32(4, desc.length, true);
  v.setUint32(8, type, true);
  out.set(nameBytes, 12);
  out.set(desc, 12 + alignUp(nameBytes.length, 4));
  return out;
}

/** struct elf_prstatus; pr_reg is struct user_regs_struct. */
function prstatus(r: CoreRegisters, signal: number): Uint8Array {
  const out = new Uint8Array(PRSTATUS_SIZE);
  const v = new DataView(out.buffer);
  v.setUint32(0, signal, true); // pr_info.si_signo
  v.setUint16(12, signal, true); // pr_cursig
  v.setUint32(32, 1, true); // pr_pid: the guest is "process 1"
  const g = r.gprs;
  // r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs eflags rsp ss fs_base gs_base ds es fs gs
  const regs = [g[15], g[14], g[13], g[12], g[7], g[1], g[11], g[10], g[9], g[8], g[0], g[2], g[3], g[4], g[5], ~0n & 0xffffffffffffffffn,
    r.rip, 0x33n, r.rflags, g[6], 0x2bn, r.fsBase, r.gsBase, 0n, 0n, 0n, 0n];
  regs.forEach((value, i) => v.setBigUint64(PRSTATUS_REG_OFFSET + i * 8, value ?? 0n, true));
  v.setUint32(PRSTATUS_REG_OFFSET + 27 * 8, 1, true); // pr_fpvalid
  return out;
}

function prpsinfo(path: string): Uint8Array {
  const out = new Uint8Array(PRPSINFO_SIZE);
  const name = path.split("/").pop() ?? "guest";
  out.set(new TextEncoder().encode(name).subarray(0, 15), 40); // pr_fname
  out.set(new TextEncoder().encode(path).subarray(0, 79), 56); // pr_psargs
  return out;
}

/** The image as gdb sizes it for this XCR0: up to the end of the last component it enables. */
function xstate(r: CoreRegisters): Uint8Array {
  const xcr0 = (r.xcr0 | 3) & 0x2ff;
  let size = XSAVE_HEADER_END;
  for (const [bit, { offset, size: bytes }] of XSAVE_COMPONENTS) if (xcr0 & (1 << bit)) size = Math.max(size, offset + bytes);
  const out = new Uint8Array(size);
  out.set(r.xsave.subarray(0, size));
  new DataView(out.buffer).setBigUint64(XSAVE_XCR0_OFFSET, BigInt(xcr0), true);
  return out;
}

function auxv(e: CoreExecutable): Uint8Array {
  const pairs: Array<[number, number]> = [[AT_PHDR, e.phdrAddress], [AT_PHENT, PHDR_SIZE], [AT_PHNUM, e.phnum], [AT_PAGESZ, PAGE], [AT_ENTRY, e.entry], [AT_NULL, 0]];
  const out = new Uint8Array(pairs.length * 16);
  const v = new DataView(out.buffer);
  pairs.forEach(([type, value], i) => {
    v.setBigUint64(i * 16, BigInt(type), true);
    v.setBigUint64(i * 16 + 8, BigInt(value), true);
  });
  return out;
}

/** count, page size, (start, end, file offset in pages) per mapping, then the file names. */
function fileNote(e: CoreExecutable): Uint8Array {
  const name = new TextEncoder().encode(`${e.path}\0`);
  const head = 16 + e.loads.length * 24;
  const out = new Uint8Array(head + e.loads.length * name.length);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, BigInt(e.loads.length), true);
  v.setBigUint64(8, BigInt(PAGE), true);
  e.loads.forEach((l, i) => {
    v.setBigUint64(16 + i * 24, BigInt(l.start), true);
    v.setBigUint64(24 + i * 24, BigInt(l.end), true);
    v.setBigUint64(32 + i * 24, BigInt(Math.floor(l.fileOffset / PAGE)), true);
    out.set(name, head + i * name.length);
  });
  return out;
}

const alignUp = (n: number, to: number): number => Math.ceil(n / to) * to;

/**
 * ELF64 loader for guest binaries.
 *
 * Guests are static, fixed-address x86-64 executables. The file is untrusted:
 * every header field and bound is checked before it is used, and any violation
 * is a BadGuestBinaryError whose message names the problem. 64-bit fields are
 * read as bigint and only become numbers once they are known to be in range, so
 * no check is fooled by floating-point rounding.
 */
import { BadGuestBinaryError, InvalidConfigError } from "../errors/errors.js";

export interface ElfSegment {
  vaddr: number; memSize: number; fileSize: number; fileOffset: number;
  readable: boolean; writable: boolean; executable: boolean;
}

/** The PT_TLS segment: the initial image of the thread-local data (.tdata, then .tbss zeroed). */
export interface ElfTls {
  fileOffset: number; fileSize: number; memSize: number;
  /** A power of two, at most a page (1 when the segment says 0 or 1). */
  align: number;
}

export interface ElfImage {
  entry: number;
  /** PT_LOAD segments only, sorted by vaddr. */
  segments: readonly ElfSegment[];
  /** The thread-local data, if the binary has a PT_TLS segment. */
  tls: ElfTls | undefined;
  /** Lowest vaddr rounded down to a page. */
  start: number;
  /** Highest vaddr + memSize rounded up to a page. */
  end: number;
}

/** Segments must lie in [minAddress, maxAddress); both page-aligned. */
export interface ElfLimits { minAddress: number; maxAddress: number }

export interface ElfSymbol { name: string; value: number; size: number; isFunction: boolean }

const PAGE = 4096;
const EHDR_SIZE = 64, PHDR_SIZE = 56, SHDR_SIZE = 64, SYM_SIZE = 24;
const MAX_LOAD_SEGMENTS = 64;
const EM_X86_64 = 62;
const ET_EXEC = 2, ET_DYN = 3;
const PT_LOAD = 1, PT_DYNAMIC = 2, PT_INTERP = 3, PT_TLS = 7;
const PF_X = 1, PF_W = 2, PF_R = 4;
const SHT_SYMTAB = 2, SHT_STRTAB = 3;
const STT_OBJECT = 1, STT_FUNC = 2;
const ADDRESS_SPACE = 1n << 64n;

interface Header {
  type: number; machine: number; entry: bigint; phoff: bigint; shoff: bigint;
  ehsize: number; phentsize: number; phnum: number; shentsize: number; shnum: number; shstrndx: number;
}

interface ProgramHeader {
  index: number; type: number; flags: number;
  offset: bigint; vaddr: bigint; fileSize: bigint; memSize: bigint; align: bigint;
}

/** A validated segment remembers its program-header index for error messages. */
interface IndexedSegment { index: number; segment: ElfSegment }

interface Section { index: number; type: number; offset: bigint; size: bigint; link: number; entsize: bigint }

function fail(message: string): never {
  throw new BadGuestBinaryError(`bad guest ELF: ${message}`);
}

const hex = (value: bigint | number): string => `0x${value.toString(16)}`;

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Converts a 64-bit field to a number, refusing values a double cannot hold exactly. */
function toSafe(value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${hex(value)} is too large`);
  return Number(value);
}

/** True when [offset, offset + size) lies inside a file of `length` bytes. */
function inFile(offset: bigint, size: bigint, length: number): boolean {
  return offset + size <= BigInt(length);
}

const pageDown = (address: number): number => Math.floor(address / PAGE) * PAGE;
const pageUp = (address: number): number => Math.ceil(address / PAGE) * PAGE;

/** Checks e_ident and e_version, then reads the rest of the ELF header. */
function readHeader(bytes: Uint8Array): Header {
  if (bytes.length < EHDR_SIZE) fail(`file is ${bytes.length} bytes, shorter than the 64-byte ELF header`);
  if (bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    fail("bad magic (not an ELF file)");
  }
  if (bytes[4] !== 2) fail(`EI_CLASS is ${bytes[4]}, not ELFCLASS64 (only 64-bit guests are supported)`);
  if (bytes[5] !== 1) fail(`EI_DATA is ${bytes[5]}, not little-endian`);
  if (bytes[6] !== 1) fail(`EI_VERSION is ${bytes[6]}, expected 1`);
  const view = viewOf(bytes);
  const version = view.getUint32(20, true);
  if (version !== 1) fail(`e_version is ${version}, expected 1`);
  return {
    type: view.getUint16(16, true),
    machine: view.getUint16(18, true),
    entry: view.getBigUint64(24, true),
    phoff: view.getBigUint64(32, true),
    shoff: view.getBigUint64(40, true),
    ehsize: view.getUint16(52, true),
    phentsize: view.getUint16(54, true),
    phnum: view.getUint16(56, true),
    shentsize: view.getUint16(58, true),
    shnum: view.getUint16(60, true),
    shstrndx: view.getUint16(62, true),
  };
}

/** Rejects anything that is not a static x86-64 executable with standard header sizes. */
function checkExecutableHeader(h: Header): void {
  if (h.machine !== EM_X86_64) fail(`wrong architecture: e_machine is ${h.machine}, expected ${EM_X86_64} (x86-64)`);
  if (h.type === ET_DYN) fail("e_type is ET_DYN: position-independent guests are not supported");
  if (h.type !== ET_EXEC) fail(`e_type is ${h.type}, expected ET_EXEC (2)`);
  if (h.ehsize !== EHDR_SIZE) fail(`e_ehsize is ${h.ehsize}, expected ${EHDR_SIZE}`);
  if (h.phentsize !== PHDR_SIZE) fail(`e_phentsize is ${h.phentsize}, expected ${PHDR_SIZE}`);
}

function readProgramHeaders(bytes: Uint8Array, h: Header): ProgramHeader[] {
  const phoff = toSafe(h.phoff, "e_phoff");
  if (!inFile(h.phoff, BigInt(h.phnum * PHDR_SIZE), bytes.length)) {
    fail(`program header table (offset ${hex(phoff)}, ${h.phnum} entries) extends past end of file (${bytes.length} bytes)`);
  }
  const view = viewOf(bytes);
  const headers: ProgramHeader[] = [];
  for (let index = 0; index < h.phnum; index++) {
    const at = phoff + index * PHDR_SIZE;
    headers.push({
      index,
      type: view.getUint32(at, true),
      flags: view.getUint32(at + 4, true),
      offset: view.getBigUint64(at + 8, true),
      vaddr: view.getBigUint64(at + 16, true),
      fileSize: view.getBigUint64(at + 32, true),
      memSize: view.getBigUint64(at + 40, true),
      align: view.getBigUint64(at + 48, true),
    });
  }
  return headers;
}

/** Validates one PT_LOAD; after the limit checks every value fits a safe integer. */
function toSegment(p: ProgramHeader, fileLength: number, limits: ElfLimits): ElfSegment {
  const what = `segment ${p.index}`;
  if (p.memSize === 0n) fail(`${what}: memSize is 0`);
  if (p.fileSize > p.memSize) fail(`${what}: fileSize ${hex(p.fileSize)} exceeds memSize ${hex(p.memSize)}`);
  if (!inFile(p.offset, p.fileSize, fileLength)) {
    fail(`${what}: file range ${hex(p.offset)}+${hex(p.fileSize)} extends past end of file (${fileLength} bytes)`);
  }
  if (p.align > 1n && (p.align & (p.align - 1n)) !== 0n) fail(`${what}: p_align ${hex(p.align)} is not a power of two`);
  const end = p.vaddr + p.memSize;
  if (end > ADDRESS_SPACE) fail(`${what}: vaddr ${hex(p.vaddr)} + memSize ${hex(p.memSize)} overflows the address space`);
  if (p.vaddr < BigInt(limits.minAddress)) fail(`${what}: vaddr ${hex(p.vaddr)} is below minAddress ${hex(limits.minAddress)}`);
  if (end > BigInt(limits.maxAddress)) fail(`${what}: ends at ${hex(end)}, above maxAddress ${hex(limits.maxAddress)}`);
  const writable = (p.flags & PF_W) !== 0;
  const executable = (p.flags & PF_X) !== 0;
  if (writable && executable) fail(`${what} is both writable and executable (W^X)`);
  return {
    vaddr: Number(p.vaddr),
    memSize: Number(p.memSize),
    fileSize: Number(p.fileSize),
    fileOffset: Number(p.offset),
    readable: (p.flags & PF_R) !== 0,
    writable,
    executable,
  };
}

/**
 * Validates the PT_TLS segment, if any. The host copies its file bytes into the thread
 * block it lays out (its vaddr only names the image inside a PT_LOAD), so what matters is
 * that the bytes are in the file and the alignment is one the block can honour: the
 * thread pointer is page-aligned, so at most a page.
 */
function toTls(headers: readonly ProgramHeader[], fileLength: number): ElfTls | undefined {
  const all = headers.filter((p) => p.type === PT_TLS);
  if (all.length > 1) fail(`${all.length} PT_TLS segments (at most one)`);
  const p = all[0];
  if (p === undefined) return undefined;
  const what = `PT_TLS segment ${p.index}`;
  if (p.fileSize > p.memSize) fail(`${what}: fileSize ${hex(p.fileSize)} exceeds memSize ${hex(p.memSize)}`);
  if (!inFile(p.offset, p.fileSize, fileLength)) {
    fail(`${what}: file range ${hex(p.offset)}+${hex(p.fileSize)} extends past end of file (${fileLength} bytes)`);
  }
  const align = p.align === 0n ? 1n : p.align;
  if ((align & (align - 1n)) !== 0n) fail(`${what}: p_align ${hex(p.align)} is not a power of two`);
  if (align > BigInt(PAGE)) fail(`${what}: p_align ${hex(p.align)} is above the page size (the thread pointer is page-aligned)`);
  if (p.vaddr % align !== 0n) fail(`${what}: vaddr ${hex(p.vaddr)} is not a multiple of p_align ${hex(align)}`);
  return {
    fileOffset: toSafe(p.offset, `${what} offset`),
    fileSize: toSafe(p.fileSize, `${what} fileSize`),
    memSize: toSafe(p.memSize, `${what} memSize`),
    align: Number(align),
  };
}

/** Permissions are set per page, so neighbours may not even share a page. */
function checkNoSharedPages(sorted: readonly IndexedSegment[]): void {
  let previous: IndexedSegment | undefined;
  for (const current of sorted) {
    if (previous !== undefined) {
      const prevEnd = previous.segment.vaddr + previous.segment.memSize;
      const pair = `segments ${previous.index} and ${current.index}`;
      if (prevEnd > current.segment.vaddr) fail(`${pair} overlap`);
      if (pageDown(prevEnd - 1) >= pageDown(current.segment.vaddr)) fail(`${pair} share a page`);
    }
    previous = current;
  }
}

function checkEntry(entry: number, segments: readonly ElfSegment[]): void {
  const inside = segments.some((s) => s.executable && entry >= s.vaddr && entry < s.vaddr + s.memSize);
  if (!inside) fail(`entry point ${hex(entry)} is not inside an executable segment`);
}

function checkLimits(limits: ElfLimits): void {
  const { minAddress: min, maxAddress: max } = limits;
  const ok = Number.isSafeInteger(min) && Number.isSafeInteger(max) && min >= 0 && min < max;
  if (!ok || min % PAGE !== 0 || max % PAGE !== 0) {
    throw new InvalidConfigError(`ELF limits [${min}, ${max}) must be page-aligned with 0 <= minAddress < maxAddress`);
  }
}

/** Parses and validates a static x86-64 ELF64 executable against the address limits. */
export function parseElf(bytes: Uint8Array, limits: ElfLimits): ElfImage {
  checkLimits(limits);
  const header = readHeader(bytes);
  checkExecutableHeader(header);
  const programHeaders = readProgramHeaders(bytes, header);
  if (programHeaders.some((p) => p.type === PT_INTERP || p.type === PT_DYNAMIC)) {
    fail("dynamically linked (PT_INTERP or PT_DYNAMIC present); guests must be static");
  }
  const loads = programHeaders.filter((p) => p.type === PT_LOAD);
  if (loads.length === 0) fail("no PT_LOAD segments");
  if (loads.length > MAX_LOAD_SEGMENTS) fail(`too many PT_LOAD segments (${loads.length}, at most ${MAX_LOAD_SEGMENTS})`);
  const indexed = loads
    .map((p) => ({ index: p.index, segment: toSegment(p, bytes.length, limits) }))
    .sort((a, b) => a.segment.vaddr - b.segment.vaddr);
  checkNoSharedPages(indexed);
  const segments = indexed.map((s) => s.segment);
  const entry = toSafe(header.entry, "e_entry");
  checkEntry(entry, segments);
  const first = segments[0];
  const last = segments[segments.length - 1];
  if (first === undefined || last === undefined) fail("no PT_LOAD segments");
  const tls = toTls(programHeaders, bytes.length);
  return { entry, segments, tls, start: pageDown(first.vaddr), end: pageUp(last.vaddr + last.memSize) };
}

/** Copies each segment's file bytes to memory[vaddr - memoryBase ...] and zero-fills memSize beyond fileSize. */
export function loadElf(image: ElfImage, bytes: Uint8Array, memory: Uint8Array, memoryBase = 0): void {
  for (const s of image.segments) {
    const dst = s.vaddr - memoryBase;
    if (dst < 0 || dst + s.memSize > memory.length) {
      fail(`segment at ${hex(s.vaddr)} (${hex(s.memSize)} bytes) does not fit guest memory at ${hex(memoryBase)}`);
    }
    if (s.fileSize > s.memSize || s.fileOffset + s.fileSize > bytes.length) {
      fail(`segment at ${hex(s.vaddr)}: file range does not match the ELF bytes`);
    }
    memory.set(bytes.subarray(s.fileOffset, s.fileOffset + s.fileSize), dst);
    memory.fill(0, dst + s.fileSize, dst + s.memSize);
  }
}

function readSections(bytes: Uint8Array, h: Header): Section[] {
  if (h.shoff === 0n || h.shnum === 0) return [];
  if (h.shentsize !== SHDR_SIZE) fail(`e_shentsize is ${h.shentsize}, expected ${SHDR_SIZE}`);
  if (h.shstrndx >= h.shnum) fail(`e_shstrndx ${h.shstrndx} is not below e_shnum ${h.shnum}`);
  const shoff = toSafe(h.shoff, "e_shoff");
  if (!inFile(h.shoff, BigInt(h.shnum * SHDR_SIZE), bytes.length)) {
    fail(`section header table (offset ${hex(shoff)}, ${h.shnum} entries) extends past end of file`);
  }
  const view = viewOf(bytes);
  const sections: Section[] = [];
  for (let index = 0; index < h.shnum; index++) {
    const at = shoff + index * SHDR_SIZE;
    sections.push({
      index,
      type: view.getUint32(at + 4, true),
      offset: view.getBigUint64(at + 24, true),
      size: view.getBigUint64(at + 32, true),
      link: view.getUint32(at + 40, true),
      entsize: view.getBigUint64(at + 56, true),
    });
  }
  return sections;
}

function sectionBytes(bytes: Uint8Array, s: Section, what: string): Uint8Array {
  if (!inFile(s.offset, s.size, bytes.length)) fail(`${what} (section ${s.index}) extends past end of file`);
  return bytes.subarray(Number(s.offset), Number(s.offset + s.size));
}

const decoder = new TextDecoder();

function symbolName(strtab: Uint8Array, offset: number, symbol: number): string {
  if (offset >= strtab.length) fail(`symbol ${symbol}: name offset ${offset} is outside the string table`);
  const nul = strtab.indexOf(0, offset);
  if (nul < 0) fail(`symbol ${symbol}: name is not NUL-terminated within the string table`);
  return decoder.decode(strtab.subarray(offset, nul));
}

/** Function and object symbols from .symtab (empty if stripped); throws on an out-of-bounds table. */
export function readSymbols(bytes: Uint8Array): ElfSymbol[] {
  const sections = readSections(bytes, readHeader(bytes));
  const symtab = sections.find((s) => s.type === SHT_SYMTAB);
  if (symtab === undefined) return [];
  if (symtab.entsize !== BigInt(SYM_SIZE)) fail(`.symtab entry size is ${symtab.entsize}, expected ${SYM_SIZE}`);
  const strtabSection = sections[symtab.link];
  if (strtabSection?.type !== SHT_STRTAB) fail(`.symtab sh_link ${symtab.link} is not a string table`);
  const table = sectionBytes(bytes, symtab, ".symtab");
  const strtab = sectionBytes(bytes, strtabSection, ".strtab");
  if (table.length % SYM_SIZE !== 0) fail(`.symtab size ${table.length} is not a multiple of ${SYM_SIZE}`);
  const view = viewOf(table);
  const symbols: ElfSymbol[] = [];
  for (let i = 0; i < table.length / SYM_SIZE; i++) {
    const at = i * SYM_SIZE;
    const kind = view.getUint8(at + 4) & 0xf;
    const nameOffset = view.getUint32(at, true);
    // Name offset 0 is the empty name by convention; skip without reading.
    if ((kind !== STT_FUNC && kind !== STT_OBJECT) || nameOffset === 0) continue;
    const name = symbolName(strtab, nameOffset, i);
    if (name === "") continue;
    const value = toSafe(view.getBigUint64(at + 8, true), `symbol ${i} value`);
    const size = toSafe(view.getBigUint64(at + 16, true), `symbol ${i} size`);
    symbols.push({ name, value, size, isFunction: kind === STT_FUNC });
  }
  return symbols;
}

/**
 * A decoder of the DWARF line-number table (.debug_line, versions 2 to 5: what gcc and gas
 * emit) that maps code addresses to file:line, as `addr2line` does. No maintained npm DWARF
 * reader exists; this reads only what symbolising a profile needs. The bytes come from an
 * untrusted guest ELF: every read is bounds-checked (a BadGuestBinaryError names the
 * problem), and the work is bounded by the section's size.
 */
import { BadGuestBinaryError } from "../errors/errors.js";

export interface SourceLine { readonly file: string; readonly line: number }

/** The string sections that DWARF 5 file and directory names may point into. */
export interface LineStrings { readonly lineStr?: Uint8Array | undefined; readonly str?: Uint8Array | undefined }

interface Row { readonly address: number; readonly file: number; readonly line: number }

interface Sequence { readonly start: number; readonly end: number; readonly rows: readonly Row[]; readonly files: readonly string[] }

// Standard opcodes (DWARF 5, 6.2.5.2) and extended opcodes (6.2.5.3).
const LNS_COPY = 1, LNS_ADVANCE_PC = 2, LNS_ADVANCE_LINE = 3, LNS_SET_FILE = 4, LNS_CONST_ADD_PC = 8, LNS_FIXED_ADVANCE_PC = 9;
const LNE_END_SEQUENCE = 1, LNE_SET_ADDRESS = 2, LNE_DEFINE_FILE = 3;
// Entry formats of DWARF 5 directory and file tables (6.2.4.1) and the forms they use (7.5.6).
const LNCT_PATH = 1, LNCT_DIRECTORY_INDEX = 2;
const FORM_BLOCK = 0x09, FORM_DATA1 = 0x0b, FORM_DATA2 = 0x05, FORM_DATA4 = 0x06, FORM_DATA8 = 0x07, FORM_DATA16 = 0x1e;
const FORM_STRING = 0x08, FORM_STRP = 0x0e, FORM_LINE_STRP = 0x1f, FORM_UDATA = 0x0f, FORM_SDATA = 0x0d;

function fail(message: string): never {
  throw new BadGuestBinaryError(`bad guest ELF: .debug_line: ${message}`);
}

const decoder = new TextDecoder();

/** A bounds-checked little-endian reader over [position, end). */
class Cursor {
  private readonly view: DataView;
  constructor(private readonly bytes: Uint8Array, public position: number, public readonly end: number) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private take(n: number): number {
    if (n < 0 || this.position + n > this.end) fail(`read of ${n} bytes at offset ${this.position} runs past ${this.end}`);
    const at = this.position;
    this.position += n;
    return at;
  }

  get done(): boolean { return this.position >= this.end; }
  u8(): number { return this.view.getUint8(this.take(1)); }
  i8(): number { return this.view.getInt8(this.take(1)); }
  u16(): number { return this.view.getUint16(this.take(2), true); }
  u32(): number { return this.view.getUint32(this.take(4), true); }
  /** A 64-bit value; above 2^53 it loses precision, which only matters for addresses no guest has. */
  u64(): number { return Number(this.view.getBigUint64(this.take(8), true)); }
  skip(n: number): void { this.take(n); }

  uleb(): number {
    let result = 0, scale = 1;
    for (let i = 0; i < 10; i++) {
      const byte = this.u8();
      result += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return result;
      scale *= 128;
    }
    fail(`LEB128 longer than 10 bytes at offset ${this.position}`);
  }

  sleb(): number {
    let result = 0, scale = 1, byte = 0x80;
    for (let i = 0; i < 10 && (byte & 0x80) !== 0; i++) {
      byte = this.u8();
      result += (byte & 0x7f) * scale;
      scale *= 128;
    }
    if ((byte & 0x80) !== 0) fail(`LEB128 longer than 10 bytes at offset ${this.position}`);
    return (byte & 0x40) !== 0 ? result - scale : result;
  }

  cstring(): string {
    const nul = this.bytes.indexOf(0, this.position);
    if (nul < 0 || nul >= this.end) fail(`string at offset ${this.position} is not NUL-terminated`);
    const text = decoder.decode(this.bytes.subarray(this.position, nul));
    this.position = nul + 1;
    return text;
  }
}

function stringAt(section: Uint8Array | undefined, offset: number, what: string): string {
  if (section === undefined) fail(`${what} needs a section the ELF does not have`);
  const nul = section.indexOf(0, offset);
  if (offset >= section.length || nul < 0) fail(`${what} offset ${offset} is outside its string section`);
  return decoder.decode(section.subarray(offset, nul));
}

interface UnitHeader {
  readonly version: number;
  readonly offsetSize: 4 | 8;
  readonly minInstructionLength: number;
  readonly lineBase: number;
  readonly lineRange: number;
  readonly opcodeBase: number;
  readonly standardLengths: readonly number[];
  /** Full paths, indexed as the line program's file register is (1-based before DWARF 5). */
  readonly files: readonly string[];
  readonly programStart: number;
}

const isAbsolute = (p: string): boolean => p.startsWith("/");
const joinPath = (dir: string, name: string): string => (isAbsolute(name) || dir === "" ? name : `${dir}/${name}`);

/** Reads one DWARF 5 attribute value in `form`; strings come back as strings, the rest as numbers. */
function readForm(c: Cursor, form: number, offsetSize: 4 | 8, strings: LineStrings): string | number {
  const offset = (): number => (offsetSize === 8 ? c.u64() : c.u32());
  switch (form) {
    case FORM_STRING: return c.cstring();
    case FORM_LINE_STRP: return stringAt(strings.lineStr, offset(), "DW_FORM_line_strp");
    case FORM_STRP: return stringAt(strings.str, offset(), "DW_FORM_strp");
    case FORM_UDATA: return c.uleb();
    case FORM_SDATA: return c.sleb();
    case FORM_DATA1: return c.u8();
    case FORM_DATA2: return c.u16();
    case FORM_DATA4: return c.u32();
    case FORM_DATA8: return c.u64();
    case FORM_DATA16: c.skip(16); return 0;
    case FORM_BLOCK: c.skip(c.uleb()); return 0;
    default: fail(`unsupported form 0x${form.toString(16)} in an entry format`);
  }
}

/** A DWARF 5 directory or file table: its entry format, then its entries (path and directory index). */
function readEntryTable(c: Cursor, offsetSize: 4 | 8, strings: LineStrings): { path: string; dir: number }[] {
  const format: [number, number][] = [];
  const formatCount = c.u8();
  for (let i = 0; i < formatCount; i++) format.push([c.uleb(), c.uleb()]);
  const count = c.uleb();
  if (count > c.end - c.position) fail(`table of ${count} entries is larger than the unit`);
  const entries: { path: string; dir: number }[] = [];
  for (let i = 0; i < count; i++) {
    let path = "", dir = 0;
    for (const [content, form] of format) {
      const value = readForm(c, form, offsetSize, strings);
      if (content === LNCT_PATH && typeof value === "string") path = value;
      if (content === LNCT_DIRECTORY_INDEX && typeof value === "number") dir = value;
    }
    entries.push({ path, dir });
  }
  return entries;
}

/** DWARF 5: directory 0 is the compilation directory, relative ones are under it. */
function filesV5(c: Cursor, offsetSize: 4 | 8, strings: LineStrings): string[] {
  const dirs = readEntryTable(c, offsetSize, strings).map((d) => d.path);
  const compDir = dirs[0] ?? "";
  const resolvedDirs = dirs.map((d, i) => (i === 0 ? d : joinPath(compDir, d)));
  return readEntryTable(c, offsetSize, strings).map((f) => joinPath(resolvedDirs[f.dir] ?? "", f.path));
}

/** DWARF 2-4: include directories, then file entries; index 0 is unused (files count from 1). */
function filesV4(c: Cursor): string[] {
  const dirs = [""];
  for (let dir = c.cstring(); dir !== ""; dir = c.cstring()) dirs.push(dir);
  const files = [""];
  for (let name = c.cstring(); name !== ""; name = c.cstring()) {
    const dir = c.uleb();
    c.uleb(); // modification time
    c.uleb(); // length
    files.push(joinPath(dirs[dir] ?? "", name));
  }
  return files;
}

function readUnitHeader(c: Cursor, offsetSize: 4 | 8, strings: LineStrings): UnitHeader {
  const version = c.u16();
  if (version < 2 || version > 5) fail(`unsupported version ${version}`);
  if (version >= 5) {
    const addressSize = c.u8();
    c.u8(); // segment selector size
    if (addressSize !== 8) fail(`address size ${addressSize}, expected 8`);
  }
  const headerLength = offsetSize === 8 ? c.u64() : c.u32();
  const programStart = c.position + headerLength;
  if (programStart > c.end) fail(`header length ${headerLength} runs past the unit`);
  const minInstructionLength = c.u8();
  if (version >= 4) c.u8(); // maximum operations per instruction (VLIW only)
  c.u8(); // default is_stmt
  const lineBase = c.i8();
  const lineRange = c.u8();
  const opcodeBase = c.u8();
  if (lineRange === 0) fail("line_range is 0");
  if (opcodeBase === 0) fail("opcode_base is 0");
  const standardLengths: number[] = [];
  for (let i = 1; i < opcodeBase; i++) standardLengths.push(c.u8());
  const files = version >= 5 ? filesV5(c, offsetSize, strings) : filesV4(c);
  return { version, offsetSize, minInstructionLength, lineBase, lineRange, opcodeBase, standardLengths, files, programStart };
}

/** The line-program state machine (DWARF 5, 6.2.2) over one unit; returns its sequences. */
function runProgram(c: Cursor, h: UnitHeader): Sequence[] {
  const files = [...h.files];
  const sequences: Sequence[] = [];
  let address = 0, file = 1, line = 1, rows: Row[] = [];
  const emit = (): void => { rows.push({ address, file, line }); };
  const advance = (operations: number): void => { address += operations * h.minInstructionLength; };
  c.position = h.programStart;
  while (!c.done) {
    const opcode = c.u8();
    if (opcode >= h.opcodeBase) {
      const adjusted = opcode - h.opcodeBase;
      advance(Math.floor(adjusted / h.lineRange));
      line += h.lineBase + (adjusted % h.lineRange);
      emit();
    } else if (opcode === 0) {
      const length = c.uleb();
      const end = c.position + length;
      if (length === 0 || end > c.end) fail(`extended opcode of length ${length} runs past the unit`);
      const sub = c.u8();
      if (sub === LNE_END_SEQUENCE) {
        emit();
        sequences.push(toSequence(rows, files));
        address = 0; file = 1; line = 1; rows = [];
      } else if (sub === LNE_SET_ADDRESS) {
        if (length !== 9) fail(`DW_LNE_set_address of ${length - 1} bytes, expected 8`);
        address = c.u64();
      } else if (sub === LNE_DEFINE_FILE && h.version < 5) {
        files.push(c.cstring());
      }
      c.position = end; // skips the operands of extended opcodes this reader does not need
    } else if (opcode === LNS_COPY) {
      emit();
    } else if (opcode === LNS_ADVANCE_PC) {
      advance(c.uleb());
    } else if (opcode === LNS_ADVANCE_LINE) {
      line += c.sleb();
    } else if (opcode === LNS_SET_FILE) {
      file = c.uleb();
    } else if (opcode === LNS_CONST_ADD_PC) {
      advance(Math.floor((255 - h.opcodeBase) / h.lineRange));
    } else if (opcode === LNS_FIXED_ADVANCE_PC) {
      address += c.u16();
    } else {
      // Other standard opcodes change only registers this reader ignores; skip their operands.
      for (let i = 0; i < (h.standardLengths[opcode - 1] ?? 0); i++) c.uleb();
    }
  }
  return sequences;
}

/** Rows sorted by address (stable: of rows at one address the last one counts, as in addr2line). */
function toSequence(rows: Row[], files: readonly string[]): Sequence {
  const sorted = rows.map((row, i) => ({ row, i })).sort((a, b) => a.row.address - b.row.address || a.i - b.i).map((x) => x.row);
  const first = sorted[0], last = sorted[sorted.length - 1];
  return { start: first?.address ?? 0, end: last?.address ?? 0, rows: sorted, files };
}

/** Address → file:line for one ELF, from its .debug_line section. */
export class LineTable {
  private constructor(private readonly sequences: readonly Sequence[]) {}

  /** Decodes every unit of `debugLine`; throws BadGuestBinaryError on malformed data. */
  static decode(debugLine: Uint8Array, strings: LineStrings = {}): LineTable {
    const c = new Cursor(debugLine, 0, debugLine.length);
    const sequences: Sequence[] = [];
    while (!c.done) {
      let length = c.u32();
      let offsetSize: 4 | 8 = 4;
      if (length === 0xffffffff) {
        length = c.u64();
        offsetSize = 8;
      } else if (length >= 0xfffffff0) {
        fail(`reserved unit length 0x${length.toString(16)}`);
      }
      const end = c.position + length;
      if (end > debugLine.length) fail(`unit at offset ${c.position} of ${length} bytes runs past the section`);
      const unit = new Cursor(debugLine, c.position, end);
      sequences.push(...runProgram(unit, readUnitHeader(unit, offsetSize, strings)));
      c.position = end;
    }
    return new LineTable(sequences.filter((s) => s.end > s.start).sort((a, b) => a.start - b.start));
  }

  /** The source line of the instruction at `address`, if a sequence covers it. */
  lookup(address: number): SourceLine | undefined {
    const sequence = this.sequences[lastAtOrBelow(this.sequences, (s) => s.start, address)];
    if (sequence === undefined || address >= sequence.end) return undefined;
    const row = sequence.rows[lastAtOrBelow(sequence.rows, (r) => r.address, address)];
    if (row === undefined) return undefined;
    return { file: sequence.files[row.file] ?? `<file ${row.file}>`, line: row.line };
  }
}

/** Index of the last item whose key is <= value in items sorted by key (-1 if none). */
function lastAtOrBelow<T>(items: readonly T[], key: (item: T) => number, value: number): number {
  let lo = -1, hi = items.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    const item = items[mid];
    if (item !== undefined && key(item) <= value) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

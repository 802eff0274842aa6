/**
 * Names code addresses of a guest ELF: the function from the symbol table, the file and line
 * from the DWARF line table. A line table that cannot be read leaves lines out (and says
 * why) rather than failing the whole profile.
 */
import { BadGuestBinaryError } from "../errors/errors.js";
import { readSymbols, type ElfSymbol } from "../mem/elf.js";
import { LineTable, type SourceLine } from "./dwarf-lines.js";
import { readNamedSections } from "./elf-sections.js";

export interface CodeLocation {
  readonly function: string | undefined;
  readonly source: SourceLine | undefined;
}

export class Symbolizer {
  private readonly functions: readonly ElfSymbol[];
  private readonly lines: LineTable | undefined;
  /** Why there are no line numbers, when there are none. */
  readonly linesUnavailable: string | undefined;

  constructor(elf: Uint8Array, symbols: readonly ElfSymbol[] = readSymbols(elf)) {
    this.functions = symbols.filter((s) => s.isFunction).sort((a, b) => a.value - b.value);
    const { table, problem } = lineTableOf(elf);
    this.lines = table;
    this.linesUnavailable = problem;
  }

  /** The function and line of the instruction at `address`. */
  locate(address: number): CodeLocation {
    return { function: this.functionAt(address)?.name, source: this.lines?.lookup(address) };
  }

  private functionAt(address: number): ElfSymbol | undefined {
    let lo = 0, hi = this.functions.length - 1, found: ElfSymbol | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const f = this.functions[mid];
      if (f === undefined) break;
      if (f.value <= address) {
        found = f;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found !== undefined && (found.size === 0 || address < found.value + found.size) ? found : undefined;
  }
}

function lineTableOf(elf: Uint8Array): { table?: LineTable; problem?: string } {
  try {
    const sections = readNamedSections(elf);
    const debugLine = sections.get(".debug_line");
    if (debugLine === undefined) return { problem: "the guest ELF has no .debug_line (build it with -g)" };
    return { table: LineTable.decode(debugLine, { lineStr: sections.get(".debug_line_str"), str: sections.get(".debug_str") }) };
  } catch (error) {
    if (error instanceof BadGuestBinaryError) return { problem: error.message };
    throw error;
  }
}

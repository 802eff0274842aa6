/**
 * Sections of an ELF64 file by name, for the debug readers (.debug_line and its string
 * tables). The file is untrusted: every offset is checked against the file, and a section
 * that does not fit is a BadGuestBinaryError.
 */
import { BadGuestBinaryError } from "../errors/errors.js";

const EHDR_SIZE = 64, SHDR_SIZE = 64;
const SHT_NOBITS = 8;

function fail(message: string): never {
  throw new BadGuestBinaryError(`bad guest ELF: ${message}`);
}

/** The bytes of every named section that has contents in the file (later duplicates ignored). */
export function readNamedSections(bytes: Uint8Array): Map<string, Uint8Array> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < EHDR_SIZE || view.getUint32(0, false) !== 0x7f454c46 || bytes[4] !== 2 || bytes[5] !== 1) {
    fail("not a little-endian ELF64 file");
  }
  const shoff = view.getBigUint64(40, true);
  const shnum = view.getUint16(60, true);
  const shstrndx = view.getUint16(62, true);
  const sections = new Map<string, Uint8Array>();
  if (shoff === 0n || shnum === 0) return sections;
  if (view.getUint16(58, true) !== SHDR_SIZE) fail("e_shentsize is not 64");
  if (shoff + BigInt(shnum * SHDR_SIZE) > BigInt(bytes.length)) fail("section header table extends past end of file");
  const header = (index: number) => Number(shoff) + index * SHDR_SIZE;
  const contents = (index: number): Uint8Array | undefined => {
    const at = header(index);
    if (view.getUint32(at + 4, true) === SHT_NOBITS) return undefined;
    const offset = view.getBigUint64(at + 24, true);
    const size = view.getBigUint64(at + 32, true);
    if (offset + size > BigInt(bytes.length)) fail(`section ${index} extends past end of file`);
    return bytes.subarray(Number(offset), Number(offset + size));
  };
  if (shstrndx >= shnum) fail(`e_shstrndx ${shstrndx} is not below e_shnum ${shnum}`);
  const names = contents(shstrndx) ?? fail("the section name table has no contents");
  const decoder = new TextDecoder();
  for (let index = 1; index < shnum; index++) {
    const nameOffset = view.getUint32(header(index), true);
    const end = names.indexOf(0, nameOffset);
    if (nameOffset >= names.length || end < 0) fail(`section ${index}: name is outside the section name table`);
    const name = decoder.decode(names.subarray(nameOffset, end));
    const data = contents(index);
    if (data !== undefined && !sections.has(name)) sections.set(name, data);
  }
  return sections;
}

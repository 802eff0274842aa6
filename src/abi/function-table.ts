/**
 * Reads the function table the guest published at start-up (name, parameter
 * tags, return tag per entry). Guest memory is untrusted: every address, count
 * and string is checked against guest memory bounds.
 */
import { GuestProtocolError } from "../errors/errors.js";
import { CB, FN_ENTRY, MAX_NAME, MAX_PARAMS } from "./constants.js";
import { typeOfTag, type ReturnType, type Signature, type ValueType } from "./types.js";

export interface GuestFunction extends Signature {
  readonly name: string;
  readonly index: number;
}

const MAX_FUNCTIONS = 4096;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function readFunctionTable(memory: Uint8Array, controlBlock: number): Map<string, GuestFunction> {
  const view = new DataView(memory.buffer, memory.byteOffset, memory.byteLength);
  const table = view.getBigUint64(controlBlock + CB.fnTableAddress, true);
  const count = view.getUint32(controlBlock + CB.fnCount, true);
  if (count > MAX_FUNCTIONS) throw new GuestProtocolError(`guest exports ${count} functions, more than ${MAX_FUNCTIONS}`);
  const base = checkedRange(memory, table, count * FN_ENTRY.size, "function table");
  const functions = new Map<string, GuestFunction>();
  for (let index = 0; index < count; index++) {
    const fn = readEntry(memory, view, base + index * FN_ENTRY.size, index);
    if (functions.has(fn.name)) throw new GuestProtocolError(`guest exports "${fn.name}" twice`);
    functions.set(fn.name, fn);
  }
  return functions;
}

/** One FN_ENTRY at `at` in `memory` (also read from an ELF image, without running it: src/cli/guest-types.ts). */
export function readEntry(memory: Uint8Array, view: DataView, at: number, index: number): GuestFunction {
  const name = readName(memory, view.getBigUint64(at + FN_ENTRY.name, true), index);
  const nParams = view.getUint32(at + FN_ENTRY.nParams, true);
  if (nParams > MAX_PARAMS) throw new GuestProtocolError(`guest function "${name}" has ${nParams} parameters, more than ${MAX_PARAMS}`);
  const paramsAt = checkedRange(memory, view.getBigUint64(at + FN_ENTRY.params, true), nParams, `parameters of "${name}"`);
  const params: ValueType[] = [];
  for (let i = 0; i < nParams; i++) {
    const type = typeOfTag(memory[paramsAt + i]!);
    if (type === undefined || type === "void") throw new GuestProtocolError(`guest function "${name}" parameter ${i} has an invalid type tag`);
    params.push(type);
  }
  const returns: ReturnType | undefined = typeOfTag(view.getUint32(at + FN_ENTRY.ret, true));
  if (returns === undefined) throw new GuestProtocolError(`guest function "${name}" has an invalid return type tag`);
  return { name, index, params, returns };
}

function readName(memory: Uint8Array, address: bigint, index: number): string {
  const start = checkedRange(memory, address, 1, `name of function ${index}`);
  // Only as far as a name may reach, not to the end of guest memory (up to a GiB of it).
  const found = memory.subarray(start, start + MAX_NAME + 1).indexOf(0);
  const end = found < 0 ? -1 : start + found;
  if (end < 0 || end - start > MAX_NAME) throw new GuestProtocolError(`name of function ${index} is not a NUL-terminated string of at most ${MAX_NAME} bytes`);
  const name = new TextDecoder().decode(memory.subarray(start, end));
  if (!NAME.test(name)) throw new GuestProtocolError(`function ${index} has an invalid name "${name}"`);
  return name;
}

function checkedRange(memory: Uint8Array, address: bigint, length: number, what: string): number {
  if (address < 0n || address + BigInt(length) > BigInt(memory.length)) {
    throw new GuestProtocolError(`${what} at 0x${address.toString(16)} lies outside guest memory`);
  }
  return Number(address);
}

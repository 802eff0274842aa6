/**
 * The guest's thread block (x86-64 TLS ABI, variant II), laid out once when a sandbox is
 * built: the PT_TLS initial image (.tdata) then zeroes (.tbss) end exactly at the thread
 * pointer, and the thread control block starts there. The guest's FS base is the thread
 * pointer, so `%fs:0` reads the TCB's first word, its own address (what code that takes a
 * __thread variable's address loads), and `%fs:0x28` the stack-protector canary. The
 * linker's local-exec offsets are negative offsets from the thread pointer to
 * alignUp(memSize, align) below it. The block is ordinary guest memory: snapshots keep it.
 */
import { BadGuestBinaryError } from "../errors/errors.js";
import type { ElfTls } from "./elf.js";
import { MAX_TLS_BLOCK_SIZE, PAGE, THREAD_POINTER } from "./layout.js";

const TCB_SELF = 0x00;
const TCB_STACK_CANARY = 0x28;

/** Bytes from the start of the thread-local data to the thread pointer (0 without PT_TLS). */
export function tlsBlockSize(tls: ElfTls | undefined): number {
  if (tls === undefined) return 0;
  const size = Math.ceil(tls.memSize / tls.align) * tls.align;
  if (size > MAX_TLS_BLOCK_SIZE) {
    throw new BadGuestBinaryError(`bad guest ELF: thread-local data of ${size} bytes does not fit the ${MAX_TLS_BLOCK_SIZE} bytes vmlet reserves below the thread pointer`);
  }
  return size;
}

/**
 * Writes the thread block: the initial image below the thread pointer, zeroes up to it and
 * over the TCB's page, the TCB's self pointer and the canary. The canary's lowest byte is zero,
 * as glibc's is, so a string overflow stops at it rather than copying it out or over.
 */
export function writeThreadBlock(memory: Uint8Array, tls: ElfTls | undefined, elf: Uint8Array, canary: bigint): void {
  const start = THREAD_POINTER - tlsBlockSize(tls);
  memory.fill(0, start, THREAD_POINTER + PAGE);
  if (tls !== undefined) memory.set(elf.subarray(tls.fileOffset, tls.fileOffset + tls.fileSize), start);
  const view = new DataView(memory.buffer, memory.byteOffset, memory.byteLength);
  view.setBigUint64(THREAD_POINTER + TCB_SELF, BigInt(THREAD_POINTER), true);
  view.setBigUint64(THREAD_POINTER + TCB_STACK_CANARY, BigInt.asUintN(64, canary) & ~0xffn, true);
}

/**
 * What a process-backend child's exit record means, as the exits and faults a KVM vCPU
 * gives: an `out` or `in` (a #GP in user mode, decoded from the instruction at RIP) is an
 * I/O exit; any other fault, trap or trapped system call is the fault a VM's stub would
 * report (a port exit at PORT_FAULT_BASE + vector), with the registers to describe it.
 */
import { FAULT_VECTORS, PORT_FAULT_BASE } from "../../abi/constants.js";
import type { VmExit } from "../virtual-machine.js";
import { GUEST_PORTS } from "../../mem/system-tables.js";

const SIGILL = 4, SIGTRAP = 5, SIGBUS = 7, SIGFPE = 8, SIGSEGV = 11, SIGSYS = 31;
export const INTERRUPT_SIGNAL = 12;
const GP = 13, PF = 14, UD = 6;
/** The length of `syscall` (0f 05): SIGSYS reports RIP after it. */
const SYSCALL_LENGTH = 2;

export interface ExitRecord {
  readonly signo: number;
  readonly trapno: number;
  readonly error: number;
  readonly address: bigint;
  readonly rip: bigint;
  readonly rax: bigint;
  readonly rdx: bigint;
}

/** A decoded exit: the VmExit, how far RIP moves on when the guest resumes, and for a fault what to report. */
export interface DecodedExit {
  readonly exit: VmExit;
  readonly advance: number;
  readonly fault?: { readonly vector: number; readonly rip: bigint; readonly errorCode: number | undefined; readonly address: bigint };
}

/** Reads up to 4 instruction bytes at `rip` from guest memory, or none if they are outside it. */
export type CodeReader = (rip: bigint, length: number) => Uint8Array | undefined;
/** Whether the guest's page tables map the page of `address` at all (present, user or supervisor). */
export type PresentCheck = (address: bigint) => boolean;

const PF_PRESENT = 1;

export function decodeExit(record: ExitRecord, code: CodeReader, present: PresentCheck): DecodedExit {
  switch (record.signo) {
    case INTERRUPT_SIGNAL:
      return { exit: { kind: "interrupted" }, advance: 0 };
    case SIGSEGV:
      if (record.trapno === GP) return decodeIo(record, code) ?? fault(GP, record, record.error);
      // The child maps only user pages: its present bit says little. A VM's says whether the page table maps the page.
      if (record.trapno === PF) return fault(PF, record, (record.error & ~PF_PRESENT) | (present(record.address) ? PF_PRESENT : 0));
      return fault(validVector(record.trapno, GP), record, record.error);
    case SIGSYS:
      // A system call is #UD in a VM (vmlet leaves EFER.SCE clear): report it the same way, at the instruction.
      return fault(UD, { ...record, rip: record.rip - BigInt(SYSCALL_LENGTH) }, undefined);
    case SIGILL:
      return fault(UD, record, undefined);
    case SIGFPE:
      return fault(validVector(record.trapno, 0), record, undefined);
    case SIGTRAP:
      return fault(validVector(record.trapno, 3), record, undefined);
    case SIGBUS:
      return fault(PF, record, (record.error & ~PF_PRESENT) | (present(record.address) ? PF_PRESENT : 0));
    default:
      return { exit: { kind: "unknown", reason: record.signo }, advance: 0 };
  }
}

function validVector(trapno: number, fallback: number): number {
  return Number.isInteger(trapno) && trapno >= 0 && trapno < FAULT_VECTORS ? trapno : fallback;
}

function fault(vector: number, record: ExitRecord, errorCode: number | undefined): DecodedExit {
  return {
    exit: { kind: "io-out", port: PORT_FAULT_BASE + vector, size: 1, value: vector },
    advance: 0,
    fault: { vector, rip: record.rip, errorCode: vector === PF || vector === GP ? errorCode : undefined, address: record.address },
  };
}

/** `out`/`in` with an immediate port or DX, byte or dword (or word with 0x66). */
function decodeIo(record: ExitRecord, code: CodeReader): DecodedExit | undefined {
  const bytes = code(record.rip, 3);
  if (!bytes) return undefined;
  let i = 0, size = 4;
  if (bytes[0] === 0x66) {
    size = 2;
    i = 1;
  }
  const op = bytes[i]!;
  const immediate = op === 0xe4 || op === 0xe5 || op === 0xe6 || op === 0xe7;
  const viaDx = op === 0xec || op === 0xed || op === 0xee || op === 0xef;
  if (!immediate && !viaDx) return undefined;
  if ((op & 1) === 0) size = 1;
  const port = immediate ? bytes[i + 1]! : Number(record.rdx & 0xffffn);
  // A VM's TSS I/O bitmap lets CPL 3 reach only these ports, and checks every port a wide
  // access touches (an `outl` to 0x13 reaches 0x14–0x16): any other is #GP there too.
  for (let p = port; p < port + size; p++) if (!GUEST_PORTS.includes(p)) return undefined;
  const length = i + (immediate ? 2 : 1);
  const isOut = op === 0xe6 || op === 0xe7 || op === 0xee || op === 0xef;
  if (!isOut) return { exit: { kind: "io-in", port, size }, advance: length };
  const mask = size === 4 ? 0xffffffffn : size === 2 ? 0xffffn : 0xffn;
  return { exit: { kind: "io-out", port, size, value: Number(record.rax & mask) }, advance: length };
}

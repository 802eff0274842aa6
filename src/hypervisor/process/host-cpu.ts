/** What the host CPU lets user code do, read once from the kernel's auxiliary vector. */
import { readFileSync } from "node:fs";
import { loadAddon } from "../../native/addon.js";

/** XCR0 components a guest's state may hold here: x87 … AVX-512 and PKRU (no AMX: it needs a permission the child never asks for). */
const GUEST_COMPONENTS = 0x2ff;

/** The XCR0 a process-backend guest runs with: the host's, as far as a child can use it (VirtualMachine.guestXcr0). */
export function processGuestXcr0(): number {
  return loadAddon().hostXcr0() & GUEST_COMPONENTS;
}

const AT_HWCAP2 = 26n;
const HWCAP2_FSGSBASE = 2n;

let fsgsbase: boolean | undefined;

/** Whether user code (and so a process-backend guest) can set its FS and GS bases (wrfsbase). */
export function userCanSetSegmentBases(): boolean {
  if (fsgsbase === undefined) {
    fsgsbase = false;
    try {
      const auxv = readFileSync("/proc/self/auxv");
      for (let at = 0; at + 16 <= auxv.length; at += 16) {
        if (auxv.readBigUInt64LE(at) === AT_HWCAP2) fsgsbase = (auxv.readBigUInt64LE(at + 8) & HWCAP2_FSGSBASE) !== 0n;
      }
    } catch {
      // no auxv: say no (wrfsbase in the park loop would fault where the CPU does not allow it)
    }
  }
  return fsgsbase;
}

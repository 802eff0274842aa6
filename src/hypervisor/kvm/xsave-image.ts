/**
 * A snapshot's XSAVE image as KVM_SET_XSAVE takes it on this host. KVM refuses (EINVAL) an
 * image whose XSTATE_BV names a component the vCPU's CPUID does not offer, so a snapshot taken
 * where the guest's FPU included, say, PKRU (an Intel host) would not load on a host without
 * it (an AMD EPYC with XCR0 0xe7). Such components are dropped: marked in their initial state,
 * their bytes zeroed. That loses nothing a guest may rely on: at the call boundary where every
 * snapshot is taken, the SysV ABI makes all vector registers caller-saved, vmlet guests have no
 * protection keys in their page tables, and a guest built to need a CPU feature is refused by
 * the snapshot's guestCpu check before this point (CpuIncompatibleError).
 */
import { cpuidEntry } from "../cpu-features.js";
import { XSAVE_COMPONENTS } from "../xsave-components.js";

const XSTATE_BV = 512;

/** The XSAVE components KVM lets this host's vCPUs hold: CPUID leaf 0xD, subleaf 0, EDX:EAX of KVM_GET_SUPPORTED_CPUID. */
export function supportedXsaveComponents(entries: Uint8Array, count: number): bigint {
  const leaf = cpuidEntry(entries, count, 0xd, 0);
  return leaf ? BigInt(leaf.eax) | (BigInt(leaf.edx) << 32n) : 0b11n; // no leaf 0xD: x87 and SSE only
}

/** `xsave` itself when this host takes it as it is; otherwise a copy without the components it lacks. */
export function xsaveForHost(xsave: Uint8Array, supported: bigint): Uint8Array {
  if (xsave.byteLength <= XSTATE_BV) return xsave;
  const view = new DataView(xsave.buffer, xsave.byteOffset, xsave.byteLength);
  const present = view.getBigUint64(XSTATE_BV, true);
  const dropped = present & ~(supported | 0b11n);
  if (dropped === 0n) return xsave;
  const copy = xsave.slice();
  new DataView(copy.buffer).setBigUint64(XSTATE_BV, present & ~dropped, true);
  for (const [component, { offset, size }] of XSAVE_COMPONENTS) {
    if ((dropped >> BigInt(component)) & 1n) copy.fill(0, offset, Math.min(offset + size, copy.byteLength));
  }
  return copy;
}

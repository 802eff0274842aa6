/** A KVM VM file descriptor: memory slots, dirty logging, vCPU creation. */
import { native } from "../../native/errors.js";
import type { KvmSystem } from "./system.js";

/** KVM_MEM_LOG_DIRTY_PAGES */
export const MEM_LOG_DIRTY_PAGES = 1;
const CAP_MANUAL_DIRTY_LOG_PROTECT2 = 168;
const CAP_DIRTY_LOG_RING = 192;
const CAP_DIRTY_LOG_RING_ACQ_REL = 223;
/** 4096 entries of 16 bytes per vCPU: a call may dirty this many pages before the ring is emptied in the middle of it. */
const DIRTY_RING_BYTES = 64 * 1024;

/** Tests turn the dirty ring off to cover the dirty-bitmap path the kernels without it take. */
let dirtyRingAllowed = true;
/** @internal */
export function setDirtyRingAllowed(allowed: boolean): void {
  dirtyRingAllowed = allowed;
}

/** The kernel's answer per KvmSystem (it does not change): asked once, not on every VM creation. */
const ringCaps = new WeakMap<KvmSystem, number>();

/** The dirty-ring capability to enable, or 0 if the kernel has no ring of DIRTY_RING_BYTES (or tests turned it off). */
function dirtyRingCap(system: KvmSystem): number {
  if (!dirtyRingAllowed) return 0;
  let cap = ringCaps.get(system);
  if (cap === undefined) {
    const { addon, fd } = system;
    const ring = addon.checkExtension(fd, CAP_DIRTY_LOG_RING_ACQ_REL) > 0 ? CAP_DIRTY_LOG_RING_ACQ_REL : CAP_DIRTY_LOG_RING;
    cap = addon.checkExtension(fd, ring) >= DIRTY_RING_BYTES ? ring : 0;
    ringCaps.set(system, cap);
  }
  return cap;
}

/** Whether new VMs get a dirty ring (else restores read the dirty bitmap). */
export function dirtyRingAvailable(system: KvmSystem): boolean {
  return dirtyRingCap(system) !== 0;
}

export class KvmVm {
  private closed = false;

  constructor(readonly system: KvmSystem, readonly fd: number) {}

  /** KVM_SET_USER_MEMORY_REGION */
  setMemoryRegion(slot: number, guestAddress: number, memory: ArrayBuffer, flags = 0): void {
    native("KVM_SET_USER_MEMORY_REGION", () =>
      this.system.addon.setUserMemoryRegion(this.fd, slot, flags, guestAddress, memory, 0, memory.byteLength),
    );
  }

  /**
   * KVM_ENABLE_CAP(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2): KVM_GET_DIRTY_LOG stops re-protecting
   * pages; the restore plan re-protects them (native/vcpu_restore.c). False if the kernel lacks it.
   */
  enableManualDirtyProtect(): boolean {
    if (this.system.addon.checkExtension(this.fd, CAP_MANUAL_DIRTY_LOG_PROTECT2) <= 0) return false;
    native("KVM_ENABLE_CAP", () => this.system.addon.enableCap(this.fd, CAP_MANUAL_DIRTY_LOG_PROTECT2, 1));
    return true;
  }

  /**
   * KVM_ENABLE_CAP(KVM_CAP_DIRTY_LOG_RING[_ACQ_REL]): dirty pages are pushed into a ring per
   * vCPU instead of a bitmap per slot. Before any vCPU exists. Returns the ring's size in
   * bytes, or 0 if the kernel has no ring (the dirty bitmap is used then).
   */
  enableDirtyRing(): number {
    const cap = dirtyRingCap(this.system);
    if (cap === 0) return 0;
    native("KVM_ENABLE_CAP", () => this.system.addon.enableCap(this.fd, cap, DIRTY_RING_BYTES));
    return DIRTY_RING_BYTES;
  }

  /** KVM_CREATE_VCPU */
  createVcpuFd(id: number): number {
    return native("KVM_CREATE_VCPU", () => this.system.addon.createVcpuFd(this.fd, id));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // The last reference to a VM tears it down (~0.5 ms): let the reaper thread wait for it.
    this.system.addon.closeFdLater(this.fd);
  }
}

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

/** The dirty-ring capability to enable on `fd` (a VM or /dev/kvm), or 0 if the kernel has no ring of DIRTY_RING_BYTES. */
function dirtyRingCap(system: KvmSystem, fd: number): number {
  const { addon } = system;
  const cap = addon.checkExtension(fd, CAP_DIRTY_LOG_RING_ACQ_REL) > 0 ? CAP_DIRTY_LOG_RING_ACQ_REL : CAP_DIRTY_LOG_RING;
  return addon.checkExtension(fd, cap) >= DIRTY_RING_BYTES ? cap : 0;
}

/** Whether new VMs get a dirty ring (else restores read the dirty bitmap). */
export function dirtyRingAvailable(system: KvmSystem): boolean {
  return dirtyRingAllowed && dirtyRingCap(system, system.fd) !== 0;
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
    const cap = dirtyRingAllowed ? dirtyRingCap(this.system, this.fd) : 0;
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

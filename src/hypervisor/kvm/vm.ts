/** A KVM VM file descriptor: memory slots, dirty logging, vCPU creation. */
import { native } from "../../native/errors.js";
import type { KvmSystem } from "./system.js";

/** KVM_MEM_LOG_DIRTY_PAGES */
export const MEM_LOG_DIRTY_PAGES = 1;
const CAP_MANUAL_DIRTY_LOG_PROTECT2 = 168;

export class KvmVm {
  private closed = false;

  constructor(readonly system: KvmSystem, readonly fd: number) {}

  /** KVM_SET_USER_MEMORY_REGION */
  setMemoryRegion(slot: number, guestAddress: number, memory: ArrayBuffer, flags = 0): void {
    native("KVM_SET_USER_MEMORY_REGION", () =>
      this.system.addon.setUserMemoryRegion(this.fd, slot, flags, guestAddress, memory, 0, memory.byteLength),
    );
  }

  /** KVM_GET_DIRTY_LOG: one bit per 4 KiB page of the slot; KVM clears its copy. */
  getDirtyLog(slot: number, bitmap: BigUint64Array): void {
    native("KVM_GET_DIRTY_LOG", () => this.system.addon.getDirtyLog(this.fd, slot, bitmap));
  }

  /** KVM_CLEAR_DIRTY_LOG: re-protects the pages whose bits are set (manual-protect mode). */
  clearDirtyLog(slot: number, numPages: number, bitmap: BigUint64Array): void {
    native("KVM_CLEAR_DIRTY_LOG", () => this.system.addon.clearDirtyLog(this.fd, slot, 0, numPages, bitmap));
  }

  /**
   * KVM_ENABLE_CAP(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2): KVM_GET_DIRTY_LOG stops re-protecting
   * pages; the caller re-protects with clearDirtyLog. False if the kernel lacks it.
   */
  enableManualDirtyProtect(): boolean {
    if (this.system.addon.checkExtension(this.fd, CAP_MANUAL_DIRTY_LOG_PROTECT2) <= 0) return false;
    native("KVM_ENABLE_CAP", () => this.system.addon.enableCap(this.fd, CAP_MANUAL_DIRTY_LOG_PROTECT2, 1));
    return true;
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

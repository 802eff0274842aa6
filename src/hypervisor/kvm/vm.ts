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

  /**
   * KVM_ENABLE_CAP(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2): KVM_GET_DIRTY_LOG stops re-protecting
   * pages; the restore plan re-protects them (native/vcpu_restore.c). False if the kernel lacks it.
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

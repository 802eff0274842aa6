/** A KVM VM file descriptor: memory slots, dirty logging, vCPU creation. */
import { native } from "./errors.js";
import type { KvmSystem } from "./system.js";

/** KVM_MEM_LOG_DIRTY_PAGES */
export const MEM_LOG_DIRTY_PAGES = 1;

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

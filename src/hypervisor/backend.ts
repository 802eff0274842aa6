/** Which backend this process would use, without creating a VM. */
import { KvmSystem } from "./kvm/system.js";
import type { BackendInfo } from "./virtual-machine.js";

/** Opens the backend (checking it is usable) and says which one and which flavour it is. */
export function backendInfo(): BackendInfo {
  return KvmSystem.open().backend;
}

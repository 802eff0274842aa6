/** `vmlet doctor`: checks the machine can run sandboxes and says which backend flavour it has. */
import { existsSync } from "node:fs";
import { SandboxBuilder } from "../sandbox/builder.js";
import { backendDetails, backendInfo } from "../hypervisor/backend.js";
import { VmletError } from "../errors/errors.js";
import { guestPath } from "./paths.js";

export async function doctor(print: (line: string) => void): Promise<boolean> {
  print(`/dev/kvm: ${existsSync("/dev/kvm") ? "present" : "missing"}`);
  try {
    const info = backendInfo();
    print(`backend: ${info.name}, flavour ${info.flavour}${info.flavour === "pvm" ? " (software virtualisation for nested hosts: CPL-3 guest code runs natively, exits cost more than on hardware KVM)" : " (hardware virtualisation)"}`);
    const details = backendDetails();
    print(`dirty pages: ${details.dirtyPages === "ring" ? "KVM dirty ring (restores read it without an ioctl)" : "KVM dirty bitmap (this kernel has no dirty ring: one or two ioctls per restore)"}`);
    const how = details.xsaveMask === 0 ? "fxsave64 (x87 and SSE)" : `xsave64 of XCR0 0x${details.xsaveMask.toString(16)} (guests run under the host's XCR0)`;
    print(`guest FPU state: ${how}; ${details.reloadSkipsIoctl ? "guests reload it on resume, restores skip KVM_SET_XSAVE" : "restores load it with KVM_SET_XSAVE"}`);
    const sb = await new SandboxBuilder().guest(guestPath("demo")).build();
    const ok = sb.callSync("add", 2, 40) === 42;
    sb.close();
    print(`test sandbox: ${ok ? "ok" : "WRONG RESULT"}`);
    return ok;
  } catch (error) {
    print(`not usable: ${error instanceof VmletError ? `[${error.code}] ` : ""}${(error as Error).message}`);
    return false;
  }
}

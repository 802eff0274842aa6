/** `vmlet doctor`: checks the machine can run sandboxes and says which backend flavour it has. */
import { existsSync } from "node:fs";
import { SandboxBuilder } from "../sandbox/builder.js";
import { backendInfo } from "../hypervisor/backend.js";
import { VmletError } from "../errors/errors.js";
import { guestPath } from "./paths.js";

export async function doctor(print: (line: string) => void): Promise<boolean> {
  print(`/dev/kvm: ${existsSync("/dev/kvm") ? "present" : "missing"}`);
  try {
    const info = backendInfo();
    print(`backend: ${info.name}, flavour ${info.flavour}${info.flavour === "pvm" ? " (software virtualisation for nested hosts: CPL-3 guest code runs natively, exits cost more than on hardware KVM)" : " (hardware virtualisation)"}`);
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

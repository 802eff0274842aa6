/** `vmlet doctor`: which backends work on this machine, which one sandboxes get, and a test sandbox on it. */
import { existsSync } from "node:fs";
import { SandboxBuilder } from "../sandbox/builder.js";
import { backendAvailability, backendDetails, backendInfo } from "../hypervisor/backend.js";
import type { BackendInfo } from "../hypervisor/virtual-machine.js";
import { VmletError } from "../errors/errors.js";
import { guestPath } from "./paths.js";

const ISOLATION: Record<BackendInfo["name"], string> = {
  kvm: "a virtual machine per sandbox: separate address space and CPU state, enforced by the hypervisor",
  process: "a child process per sandbox, confined by seccomp (futex and rt_sigreturn only): the kernel's process isolation, weaker than a VM",
};

const KVM_HINTS = [
  "to use KVM: load kvm_intel/kvm_amd (or kvm-pvm on nested hosts), give this user read-write access to /dev/kvm (the kvm group),",
  "pass the device into containers (docker/podman --device /dev/kvm; the Kubernetes KVM device plugin), enable nested virtualisation on cloud VMs",
];

function describeFlavour(info: BackendInfo): string {
  if (info.name === "process") return "seccomp";
  return info.flavour === "pvm" ? "pvm (software virtualisation for nested hosts: CPL-3 guest code runs natively, exits cost more than on hardware KVM)" : "hardware (hardware virtualisation)";
}

function describeDirtyPages(source: "ring" | "bitmap" | "compare"): string {
  if (source === "ring") return "KVM dirty ring (restores read it without an ioctl)";
  if (source === "bitmap") return "KVM dirty bitmap (this kernel has no dirty ring: one or two ioctls per restore)";
  return "compared with the snapshot (the host cannot see the child's writes: restores compare every page holding data)";
}

export async function doctor(print: (line: string) => void): Promise<boolean> {
  print(`/dev/kvm: ${existsSync("/dev/kvm") ? "present" : "missing"}`);
  const availability = backendAvailability();
  for (const b of availability) print(`backend ${b.name}: ${b.works ? `works; ${ISOLATION[b.name]}` : `not usable: ${b.why}`}`);
  if (!availability.find((b) => b.name === "kvm")?.works) for (const hint of KVM_HINTS) print(`  ${hint}`);
  try {
    const info = backendInfo();
    print(`sandboxes use: ${info.name}, flavour ${describeFlavour(info)}${process.env.VMLET_BACKEND ? " (VMLET_BACKEND)" : " (auto)"}`);
    const details = backendDetails();
    print(`dirty pages: ${describeDirtyPages(details.dirtyPages)}`);
    const how = details.xsaveMask === 0 ? "fxsave64 (x87 and SSE)" : `xsave64 of XCR0 0x${details.xsaveMask.toString(16)} (guests run under the host's XCR0)`;
    const load = info.name === "process" ? "restores load it through the child's resume frame" : details.reloadSkipsIoctl ? "guests reload it on resume, restores skip KVM_SET_XSAVE" : "restores load it with KVM_SET_XSAVE";
    print(`guest FPU state: ${how}; ${load}`);
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

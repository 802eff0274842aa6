/** The /dev/kvm system file descriptor: version, capabilities, supported CPUID, VM creation. */
import { existsSync } from "node:fs";
import { BackendUnavailableError } from "../../errors/errors.js";
import type { BackendInfo } from "../virtual-machine.js";
import { native } from "../../native/errors.js";
import { loadAddon, type NativeAddon, type NativeError } from "../../native/addon.js";
import { CPUID_ENTRY_SIZE, checkStructSizes } from "./structs.js";
import { supportedXsaveComponents } from "./xsave-image.js";

const KVM_API_VERSION = 12;
/** Capabilities vmlet needs (linux/kvm.h KVM_CAP_*). */
const REQUIRED_CAPS: ReadonlyArray<[number, string]> = [
  [3, "KVM_CAP_USER_MEMORY"],
  [7, "KVM_CAP_EXT_CPUID"],
  [55, "KVM_CAP_XSAVE"],
  [136, "KVM_CAP_IMMEDIATE_EXIT"],
];
const MAX_CPUID_ENTRIES = 256;

export class KvmSystem {
  readonly backend: BackendInfo;
  /** VirtualMachine.guestXcr0: PVM runs guests under the host's XCR0; vmlet's own CR4 has no OSXSAVE. */
  readonly guestXcr0: number;
  readonly vcpuMmapSize: number;
  /** KVM_GET_SUPPORTED_CPUID entries, handed to every vCPU so guests see the host's features. */
  readonly supportedCpuid: Uint8Array;
  readonly supportedCpuidCount: number;
  /** XSAVE components the vCPUs may hold (what KVM_SET_XSAVE accepts in XSTATE_BV). */
  readonly xsaveComponents: bigint;

  private constructor(readonly addon: NativeAddon, readonly fd: number) {
    this.backend = { name: "kvm", flavour: detectFlavour() };
    this.guestXcr0 = this.backend.flavour === "pvm" ? addon.hostXcr0() : 0;
    this.vcpuMmapSize = native("KVM_GET_VCPU_MMAP_SIZE", () => addon.getVcpuMmapSize(fd));
    const cpuid = new Uint8Array(MAX_CPUID_ENTRIES * CPUID_ENTRY_SIZE);
    this.supportedCpuidCount = native("KVM_GET_SUPPORTED_CPUID", () => addon.getSupportedCpuid(fd, cpuid));
    this.supportedCpuid = cpuid.subarray(0, this.supportedCpuidCount * CPUID_ENTRY_SIZE);
    this.xsaveComponents = supportedXsaveComponents(this.supportedCpuid, this.supportedCpuidCount);
  }

  /** Opens /dev/kvm once per process and checks the API version and capabilities. */
  static open(): KvmSystem {
    if (shared) return shared;
    const addon = loadAddon();
    checkStructSizes(addon);
    const fd = openDevice(addon);
    const version = apiVersion(addon, fd);
    if (version !== KVM_API_VERSION) {
      throw new BackendUnavailableError(`/dev/kvm reports API version ${version}, vmlet needs ${KVM_API_VERSION}`);
    }
    for (const [cap, name] of REQUIRED_CAPS) {
      if (native("KVM_CHECK_EXTENSION", () => addon.checkExtension(fd, cap)) <= 0) {
        throw new BackendUnavailableError(`/dev/kvm lacks ${name}`);
      }
    }
    shared = new KvmSystem(addon, fd);
    return shared;
  }

  /** KVM_CREATE_VM */
  createVm(): number {
    return native("KVM_CREATE_VM", () => this.addon.createVm(this.fd));
  }
}

let shared: KvmSystem | undefined;

function openDevice(addon: NativeAddon): number {
  try {
    return addon.openKvm();
  } catch (error) {
    const code = (error as NativeError).code;
    const why =
      code === "ENOENT" ? "/dev/kvm does not exist: this machine has no KVM (enable virtualisation or load kvm)"
      : code === "EACCES" || code === "EPERM" ? "no permission to open /dev/kvm (add your user to the kvm group)"
      : `cannot open /dev/kvm: ${(error as Error).message}`;
    throw new BackendUnavailableError(why, { cause: error });
  }
}

/** KVM_GET_API_VERSION; a device that opens but does not answer it is not KVM (masked with /dev/null, or another driver). */
function apiVersion(addon: NativeAddon, fd: number): number {
  try {
    return addon.getApiVersion(fd);
  } catch (error) {
    addon.closeFd(fd);
    throw new BackendUnavailableError(`/dev/kvm opens but does not answer KVM ioctls (${(error as NativeError).code ?? (error as Error).message}): it is masked or not a KVM device`, { cause: error });
  }
}

/** PVM is KVM's software-virtualisation flavour for nested hosts (/sys/module/kvm_pvm). */
function detectFlavour(): "pvm" | "hardware" {
  return existsSync("/sys/module/kvm_pvm") ? "pvm" : "hardware";
}

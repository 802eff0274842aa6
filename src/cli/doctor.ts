/** `vmlet doctor`: which backends work on this machine, which one sandboxes get, and a test sandbox on it. */
import { existsSync } from "node:fs";
import { SandboxBuilder } from "../sandbox/builder.js";
import { backendAvailability, backendDetails, backendInfo } from "../hypervisor/backend.js";
import type { BackendInfo, BackendName } from "../hypervisor/virtual-machine.js";
import { VmletError } from "../errors/errors.js";
import { expectPositionals, parseArgs } from "./args.js";
import type { Io } from "./io.js";
import { guestPath } from "./paths.js";

export const DOCTOR_USAGE = `usage: vmlet doctor [--json]
  Says which backends work on this machine (KVM, the seccomp-confined process backend)
  and why not, what to do to get KVM, which backend sandboxes use, how restores find
  dirty pages and how guests save their FPU state, then runs a test sandbox.
  Exit 0 when the test sandbox answered, 1 otherwise.
  --json   one JSON document instead of the text`;

const ISOLATION: Record<BackendInfo["name"], string> = {
  kvm: "a virtual machine per sandbox: separate address space and CPU state, enforced by the hypervisor",
  process: "a child process per sandbox, confined by seccomp (futex, rt_sigreturn and its own FS-base call only): the kernel's process isolation, weaker than a VM",
};

const KVM_HINTS = [
  "to use KVM: load kvm_intel/kvm_amd (or kvm-pvm on nested hosts), give this user read-write access to /dev/kvm (the kvm group),",
  "pass the device into containers (docker/podman --device /dev/kvm; the Kubernetes KVM device plugin), enable nested virtualisation on cloud VMs",
];

/** What doctor found, as --json prints it; the text output says the same in lines. */
export interface DoctorReport {
  readonly ok: boolean;
  readonly kvmDevice: "present" | "missing";
  readonly backends: ReadonlyArray<{ readonly name: BackendName; readonly works: boolean; readonly why: string | null; readonly isolation: string }>;
  /** What to do to get KVM, when it does not work here. */
  readonly kvmHints: readonly string[];
  /** The backend sandboxes use, and what chose it; null when none works. */
  readonly selected: { readonly name: BackendName; readonly flavour: string; readonly description: string; readonly chosenBy: "VMLET_BACKEND" | "auto" } | null;
  readonly dirtyPages: { readonly source: "ring" | "bitmap" | "compare"; readonly description: string } | null;
  readonly guestFpu: { readonly xsaveMask: number; readonly description: string } | null;
  readonly testSandbox: "ok" | "wrong result" | null;
  /** Why sandboxes cannot run here (a backend, or the test sandbox, failed). */
  readonly error: { readonly code: string; readonly message: string } | null;
}

function describeFlavour(info: BackendInfo): string {
  if (info.name === "process") return "seccomp";
  return info.flavour === "pvm" ? "pvm (software virtualisation for nested hosts: CPL-3 guest code runs natively, exits cost more than on hardware KVM)" : "hardware (hardware virtualisation)";
}

function describeDirtyPages(source: "ring" | "bitmap" | "compare"): string {
  if (source === "ring") return "KVM dirty ring (restores read it without an ioctl)";
  if (source === "bitmap") return "KVM dirty bitmap (this kernel has no dirty ring: one or two ioctls per restore)";
  return "compared with the snapshot (the host cannot see the child's writes: restores compare every page holding data)";
}

export async function doctorCommand(argv: readonly string[], io: Io): Promise<number> {
  const args = parseArgs(argv, { options: { json: { type: "boolean" } } }, DOCTOR_USAGE);
  if (args.help) {
    io.out(DOCTOR_USAGE);
    return 0;
  }
  expectPositionals(args, [], DOCTOR_USAGE);
  const report = await diagnose();
  if (io.json) io.printJson(report);
  else for (const line of describe(report)) io.out(line);
  return report.ok ? 0 : 1;
}

export async function diagnose(): Promise<DoctorReport> {
  const availability = backendAvailability();
  const found = {
    kvmDevice: existsSync("/dev/kvm") ? "present" : "missing",
    backends: availability.map((b) => ({ name: b.name, works: b.works, why: b.why ?? null, isolation: ISOLATION[b.name] })),
    kvmHints: availability.find((b) => b.name === "kvm")?.works ? [] : KVM_HINTS,
  } as const;
  let selected: DoctorReport["selected"] = null;
  let dirtyPages: DoctorReport["dirtyPages"] = null;
  let guestFpu: DoctorReport["guestFpu"] = null;
  try {
    const info = backendInfo();
    selected = { name: info.name, flavour: info.flavour, description: describeFlavour(info), chosenBy: process.env.VMLET_BACKEND ? "VMLET_BACKEND" : "auto" };
    const details = backendDetails();
    dirtyPages = { source: details.dirtyPages, description: describeDirtyPages(details.dirtyPages) };
    const how = details.xsaveMask === 0 ? "fxsave64 (x87 and SSE)" : `xsave64 of XCR0 0x${details.xsaveMask.toString(16)} (guests run under the host's XCR0)`;
    const load = info.name === "process" ? "restores load it through the child's resume frame" : details.reloadSkipsIoctl ? "guests reload it on resume, restores skip KVM_SET_XSAVE" : "restores load it with KVM_SET_XSAVE";
    guestFpu = { xsaveMask: details.xsaveMask, description: `${how}; ${load}` };
    const sb = await new SandboxBuilder().guest(guestPath("demo")).build();
    const ok = sb.callSync("add", 2, 40) === 42;
    sb.close();
    return { ok, ...found, selected, dirtyPages, guestFpu, testSandbox: ok ? "ok" : "wrong result", error: null };
  } catch (error) {
    const code = error instanceof VmletError ? error.code : "ERROR";
    return { ok: false, ...found, selected, dirtyPages, guestFpu, testSandbox: null, error: { code, message: (error as Error).message } };
  }
}

/** The report as the text doctor prints. */
function describe(report: DoctorReport): string[] {
  const lines = [`/dev/kvm: ${report.kvmDevice}`];
  for (const b of report.backends) lines.push(`backend ${b.name}: ${b.works ? `works; ${b.isolation}` : `not usable: ${b.why ?? ""}`}`);
  for (const hint of report.kvmHints) lines.push(`  ${hint}`);
  const s = report.selected;
  if (s) lines.push(`sandboxes use: ${s.name}, flavour ${s.description} (${s.chosenBy})`);
  if (report.dirtyPages) lines.push(`dirty pages: ${report.dirtyPages.description}`);
  if (report.guestFpu) lines.push(`guest FPU state: ${report.guestFpu.description}`);
  if (report.testSandbox) lines.push(`test sandbox: ${report.testSandbox === "ok" ? "ok" : "WRONG RESULT"}`);
  if (report.error) lines.push(`not usable: ${report.error.code === "ERROR" ? "" : `[${report.error.code}] `}${report.error.message}`);
  return lines;
}

/**
 * What a snapshot's memory must hold, whoever made it: vmlet's own supervisor pages
 * (mem/supervisor-pages.ts: the tables and stubs that decide what runs at CPL 0), and, when
 * the snapshot resumes at vmlet__resume, an FPU area inside the guest's stack (the host may
 * rewrite a record in it: hypervisor/fpu-reload.ts). A loaded snapshot breaking either is
 * SNAPSHOT_INVALID; a snapshot taken from a sandbox is checked on the pages its capture
 * copied from guest memory, and a difference there means the backend let something write
 * supervisor memory (HYPERVISOR).
 */
import { HypervisorError } from "../errors/errors.js";
import { fpuAreaInStack, isResumeSequence, RESUME_SEQUENCE } from "../hypervisor/fpu-reload.js";
import type { MemoryLayout } from "../mem/layout.js";
import { findForeignSupervisorPage, type ForeignPage } from "../mem/supervisor-pages.js";
import { SnapshotInvalidError } from "./file/errors.js";
import type { MemoryImage } from "./memory-image.js";
import type { SnapshotState } from "./snapshot.js";

const GPR_RSP = 6;

const describe = (page: ForeignPage): string => `supervisor page 0x${page.address.toString(16)} (${page.region})`;

/** A loaded snapshot's memory: `where` names the memory blob, `configWhere` the config holding the CPU state. */
export function checkLoadedImage(image: MemoryImage, state: SnapshotState, where: string, configWhere = "config"): void {
  const foreign = findForeignSupervisorPage(state.layout, (start, length) => image.read(start, length));
  if (foreign) throw new SnapshotInvalidError(where, `${describe(foreign)} is not what vmlet builds for this layout`);
  const rsp = state.cpu.gprs[GPR_RSP]!;
  if (isResumeSequence(image.read(Number(state.cpu.rip), RESUME_SEQUENCE.length)) && !fpuAreaInStack(rsp, state.layout.stack)) {
    throw new SnapshotInvalidError(`${configWhere}.cpuState.gprs[rsp]`, `0x${rsp.toString(16)}: the FPU area vmlet__resume reloads does not lie inside the stack`);
  }
}

/** A snapshot just taken: `written` lists the pages copied from guest memory (all of them when undefined). */
export function checkCapturedImage(image: MemoryImage, layout: MemoryLayout, written?: readonly number[]): void {
  const foreign = findForeignSupervisorPage(layout, (start, length) => image.read(start, length), written);
  if (foreign) {
    throw new HypervisorError("snapshot", undefined, `${describe(foreign)} of guest memory is not what vmlet built: something wrote supervisor memory; the snapshot is refused`);
  }
}

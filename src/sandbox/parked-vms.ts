/**
 * VMs of closed sandboxes, kept to start the next sandbox from the same snapshot.
 * Reuse is a restore: memory is restored to the snapshot's image (every page the last
 * guest or the host wrote put back), the system registers, pending events and all CPU
 * state the guest can see are set from the snapshot — what restore() does to a pooled sandbox
 * between requests, so a reused VM isolates no less than a SandboxPool. It saves VM
 * creation and teardown: KVM_CREATE_VM, the vCPU and the memory slot, whose set-up cost
 * grows with memory size (about 0.6 ms more at 1 GiB than at 16 MiB on PVM).
 *
 * A VM is only reused for a snapshot with the same memory contents as the one it last
 * ran (the same image, or a blob with the same digest), so even the kernel's caches of
 * the guest's page tables (shadow paging) describe the page tables the new guest has.
 */
import type { BackendName, VirtualMachine } from "../hypervisor/virtual-machine.js";
import type { GuestMemory } from "../mem/guest-memory.js";
import type { MemoryImage } from "../snapshot/memory-image.js";
import { knownDigest } from "../snapshot/file/blob-digests.js";

interface Parked {
  readonly key: string | MemoryImage;
  readonly vm: VirtualMachine;
  /** Mapped from `image` alone: the last guest's pages were dropped when it was parked. */
  readonly memory: GuestMemory;
  readonly image: MemoryImage;
}

/** Oldest first. Few: each holds a VM and its memory slot. */
const parked: Parked[] = [];
const MAX_PARKED = 4;
let reusedCount = 0;
let enabled = true;

/**
 * What identifies an image's contents: its memory blob's digest, else the top digest of a
 * layer chain it was loaded from or saved as (each diff layer names the digest below it, so
 * the top one fixes the whole chain), else the image itself.
 */
const keyOf = (image: MemoryImage): string | MemoryImage => knownDigest(image) ?? image.history.savedAs.values().next().value ?? image;

/**
 * Keeps a closed sandbox's VM for the next sandbox of `image`: its memory is made equal
 * to the image now, by `restoreImage` (a restore to it: only the pages written since
 * memory last equalled it are copied, and the guest's mappings of the others stay, so the
 * next sandbox's first call does not fault them in again) or, without one, by mapping the
 * whole image again. The oldest parked VM is destroyed if there are too many.
 */
export function parkVm(image: MemoryImage, vm: VirtualMachine, memory: GuestMemory, restoreImage?: () => void): void {
  if (!enabled) {
    vm.destroy();
    return;
  }
  try {
    if (restoreImage) {
      vm.quiesce();
      restoreImage();
    } else {
      vm.discardRestore();
      vm.quiesce();
      memory.mapImage(image);
    }
  } catch {
    vm.destroy(); // close() must not fail: a VM that cannot be reset is simply not kept
    return;
  }
  parked.push({ key: keyOf(image), vm, memory, image });
  if (parked.length > MAX_PARKED) parked.shift()!.vm.destroy();
}

/**
 * A parked VM that last ran `image`'s contents, removed from the list and made ready to
 * start from `image`: memory mapped from it, no pending interrupt, a new dirty-page record.
 * The caller sets the system registers and CPU state. Undefined if none is parked.
 */
export function unparkVm(image: MemoryImage, backend: BackendName): { vm: VirtualMachine; memory: GuestMemory } | undefined {
  const key = keyOf(image);
  const at = parked.findIndex((p) => p.key === key && p.memory.size === image.size && p.vm.backend.name === backend);
  if (at < 0) return undefined;
  const { vm, memory, image: mapped } = parked.splice(at, 1)[0]!;
  reusedCount++;
  try {
    // Remapping a live VM's memory makes KVM walk every page of the slot (~0.4 ms at 1 GiB
    // on PVM); not needed when the memory maps this very file already.
    vm.quiesce();
    if (mapped !== image) memory.mapImage(image); // each image is its own memfd: another one is other pages
    vm.clearInterrupt();
    vm.takeDirtyPages();
  } catch (error) {
    vm.destroy();
    throw error;
  }
  return { vm, memory };
}

/** @internal For tests: how many VMs are parked, and how many were reused so far. */
export function parkedVmStats(): { parked: number; reused: number } {
  return { parked: parked.length, reused: reusedCount };
}

/** @internal For benchmarks: turns parking off (every sandbox gets a new VM, as the first one of a snapshot does) or back on. */
export function setVmParking(on: boolean): void {
  enabled = on;
  if (!on) for (const p of parked.splice(0)) p.vm.destroy();
}

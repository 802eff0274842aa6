/**
 * Where guest memory uses 2 MiB pages (docs/snapshots.md, "Huge pages"). Two separate
 * things, each kept only where measurements showed a gain:
 *
 * - 2 MiB leaves in the guest's own page tables (mem/page-tables.ts, form "2m"): a large
 *   heap needs 512 times fewer leaf entries, so tables are built, walked (the process
 *   backend's configure) and checked (snapshot load) faster, and on KVM the guest's TLB
 *   covers 2 MiB per entry. The form is kept in the tables themselves, so a snapshot
 *   carries it.
 * - Transparent huge pages behind guest memory on the host (MADV_HUGEPAGE): one 2 MiB
 *   fault instead of 512 when the guest first touches memory. Anonymous memory (KVM) gets
 *   them where the kernel's THP setting is "madvise" or "always"; the process backend's
 *   memfd only where shmem THP is enabled (shmem_enabled "advise", "within_size" or
 *   "always"), which "auto" does not assume. Dirty tracking and restores stay 4 KiB.
 */
import type { BackendName } from "../hypervisor/virtual-machine.js";
import type { TableForm } from "./page-tables.js";

/** "auto" (default): huge pages where measured to pay; "off": 4 KiB everywhere; "on": 2 MiB guest mappings and host THP advice for any guest. */
export type HugePages = "auto" | "off" | "on";

export const HUGE_PAGES_CHOICES: readonly HugePages[] = ["auto", "off", "on"];

/** What a sandbox's memory uses. */
export interface HugePagePlan {
  /** The form of the guest's page tables (only for a sandbox built from a guest binary: a snapshot carries its own). */
  readonly tableForm: TableForm;
  /** Whether host memory behind the guest is advised for transparent huge pages. */
  readonly hostAdvice: boolean;
}

/**
 * From this guest memory size "auto" uses both: below it a guest has no heap worth a
 * 2 MiB leaf, and a huge page costs a 2 MiB zero-fill where a small guest touches a few
 * 4 KiB pages.
 */
export const AUTO_FROM = 16 << 20;

/** The plan for a guest of `memorySize` bytes on `backend`. */
export function planHugePages(mode: HugePages, memorySize: number, backend: BackendName): HugePagePlan {
  if (mode === "off") return { tableForm: "4k", hostAdvice: false };
  if (mode === "on") return { tableForm: "2m", hostAdvice: true };
  const large = memorySize >= AUTO_FROM;
  // The process backend's memfd gets THP only from shmem settings no default has; not measured to pay.
  return { tableForm: large ? "2m" : "4k", hostAdvice: large && backend === "kvm" };
}

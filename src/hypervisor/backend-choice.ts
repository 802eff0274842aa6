/** The backends a caller may ask for (src/hypervisor/backend.ts resolves them). */
export type BackendChoice = "auto" | "kvm" | "process";
export const BACKEND_CHOICES: readonly BackendChoice[] = ["auto", "kvm", "process"];

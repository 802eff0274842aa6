/**
 * The CPU as a guest sees it, in backend-neutral terms: vendor and the named features
 * user-mode code can detect with CPUID and use. A snapshot records them; a machine
 * whose vCPUs lack one of them cannot resume it (the guest may have chosen a code path
 * that needs it). AVX-family features are left out: vmlet does not enable XSAVE for
 * guests (CR4.OSXSAVE is clear), so guests cannot use them.
 */

export interface CpuIdentity {
  readonly vendor: string;
  /** Sorted feature names, e.g. "sse2", "popcnt". */
  readonly features: readonly string[];
}

type Reg = "eax" | "ebx" | "ecx" | "edx";
/** [name, leaf, subleaf, register, bit] */
const FEATURES: ReadonlyArray<readonly [string, number, number, Reg, number]> = [
  ["fpu", 1, 0, "edx", 0], ["tsc", 1, 0, "edx", 4], ["cx8", 1, 0, "edx", 8], ["cmov", 1, 0, "edx", 15],
  ["mmx", 1, 0, "edx", 23], ["fxsr", 1, 0, "edx", 24], ["sse", 1, 0, "edx", 25], ["sse2", 1, 0, "edx", 26],
  ["sse3", 1, 0, "ecx", 0], ["pclmulqdq", 1, 0, "ecx", 1], ["ssse3", 1, 0, "ecx", 9], ["cx16", 1, 0, "ecx", 13],
  ["sse4_1", 1, 0, "ecx", 19], ["sse4_2", 1, 0, "ecx", 20], ["movbe", 1, 0, "ecx", 22], ["popcnt", 1, 0, "ecx", 23],
  ["aes", 1, 0, "ecx", 25], ["rdrand", 1, 0, "ecx", 30],
  ["bmi1", 7, 0, "ebx", 3], ["bmi2", 7, 0, "ebx", 8], ["erms", 7, 0, "ebx", 9], ["rdseed", 7, 0, "ebx", 18],
  ["adx", 7, 0, "ebx", 19], ["sha", 7, 0, "ebx", 29],
  ["lahf_lm", 0x80000001, 0, "ecx", 0], ["abm", 0x80000001, 0, "ecx", 5], ["syscall", 0x80000001, 0, "edx", 11],
  ["nx", 0x80000001, 0, "edx", 20], ["rdtscp", 0x80000001, 0, "edx", 27], ["lm", 0x80000001, 0, "edx", 29],
];

const ENTRY_SIZE = 40; // struct kvm_cpuid_entry2: function, index, flags, eax, ebx, ecx, edx, padding[3]
const REG_OFFSET: Record<Reg, number> = { eax: 12, ebx: 16, ecx: 20, edx: 24 };

/** Byte offset of the entry for (leaf, subleaf) among `count` KVM_GET_SUPPORTED_CPUID-style entries. */
function entryOffset(view: DataView, count: number, leaf: number, subleaf: number): number | undefined {
  for (let i = 0; i < count; i++) {
    const at = i * ENTRY_SIZE;
    if (view.getUint32(at, true) === leaf && view.getUint32(at + 4, true) === subleaf) return at;
  }
  return undefined;
}

/** The registers of the entry for (leaf, subleaf), or undefined without one. */
export function cpuidEntry(entries: Uint8Array, count: number, leaf: number, subleaf: number): Record<Reg, number> | undefined {
  const view = new DataView(entries.buffer, entries.byteOffset, count * ENTRY_SIZE);
  const at = entryOffset(view, count, leaf, subleaf);
  if (at === undefined) return undefined;
  const reg = (r: Reg): number => view.getUint32(at + REG_OFFSET[r], true);
  return { eax: reg("eax"), ebx: reg("ebx"), ecx: reg("ecx"), edx: reg("edx") };
}

/** Reads vendor and features from KVM_GET_SUPPORTED_CPUID-style entries. */
export function cpuIdentityFromCpuid(entries: Uint8Array, count: number): CpuIdentity {
  const view = new DataView(entries.buffer, entries.byteOffset, count * ENTRY_SIZE);
  const find = (leaf: number, subleaf: number): number | undefined => entryOffset(view, count, leaf, subleaf);
  const vendorAt = find(0, 0);
  const vendor = vendorAt === undefined ? "unknown" : [REG_OFFSET.ebx, REG_OFFSET.edx, REG_OFFSET.ecx]
    .map((o) => String.fromCharCode(...new Uint8Array(entries.buffer, entries.byteOffset + vendorAt + o, 4)))
    .join("");
  const features = FEATURES.filter(([, leaf, subleaf, reg, bit]) => {
    const at = find(leaf, subleaf);
    return at !== undefined && ((view.getUint32(at + REG_OFFSET[reg], true) >>> bit) & 1) === 1;
  }).map(([name]) => name);
  return { vendor, features: features.sort() };
}

/** The same, from the host CPU's own CPUID (what code in a host process sees). */
export function cpuIdentityFromHost(cpuid: (leaf: number, subleaf: number) => readonly number[]): CpuIdentity {
  const leaves: ReadonlyArray<readonly [number, number]> = [[0, 0], [1, 0], [7, 0], [0x80000001, 0]];
  const entries = new Uint8Array(leaves.length * ENTRY_SIZE);
  const view = new DataView(entries.buffer);
  leaves.forEach(([leaf, subleaf], i) => {
    const at = i * ENTRY_SIZE;
    view.setUint32(at, leaf, true);
    view.setUint32(at + 4, subleaf, true);
    cpuid(leaf, subleaf).forEach((value, r) => view.setUint32(at + 12 + 4 * r, value >>> 0, true));
  });
  return cpuIdentityFromCpuid(entries, leaves.length);
}

/** Features in `required` that `offered` lacks. */
export function missingFeatures(required: readonly string[], offered: CpuIdentity): string[] {
  const have = new Set(offered.features);
  return required.filter((f) => !have.has(f));
}

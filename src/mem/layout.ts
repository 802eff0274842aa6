/**
 * Guest memory layout. Guest virtual = guest physical (identity map), so a
 * software CPU that ignores paging can run the same image.
 *
 *   0x0000_0000  ┌──────────────────────────────┐
 *                │ null guard (not present)     │ catches NULL dereferences
 *   0x0000_1000  │ GDT + TSS + I/O bitmap       │ supervisor RW
 *   0x0000_2000  │ IDT (32 gates)               │ supervisor R
 *   0x0000_3000  │ fault stubs (`out` per vec.) │ supervisor RX, run at CPL 0
 *   0x0000_4000  │ guard                        │
 *   0x0000_5000  │ ring-0 stack (fault frames)  │ supervisor RW, RSP0
 *   0x0000_8000  │ guard                        │
 *   0x0000_9000  │ IST1 stack (#DF, NMI)        │ supervisor RW
 *   0x0000_a000  │ (unmapped)                   │
 *   0x0001_0000  │ control block                │ user RW: addresses, log level, seed
 *   0x0001_1000  │ (unmapped)                   │
 *                │ thread-local data ↑          │ user RW: .tdata image, .tbss zeroed
 *   0x000f_e000  │ thread control block         │ user RW: FS base (self pointer, canary)
 *   0x000f_f000  │ guard                        │
 *   0x0010_0000  │ guest image (ELF segments)   │ code RX, rodata R, data/bss RW
 *   image end    │ guard                        │
 *                │ input buffer                 │ user RW: host → guest messages
 *                │ guard                        │
 *                │ output buffer                │ user RW: guest → host messages
 *                │ guard                        │
 *                │ heap                         │ user RW (malloc)
 *                │ guard                        │ stack overflow → #PF here
 *                │ stack  ↓                     │ user RW
 *   stack top    │ page tables                  │ supervisor RW (PML4, PDPT, PDs, PTs)
 *   memory size  └──────────────────────────────┘ rounded up to 2 MiB
 *
 * Every user page is no-execute except the image's code; every page not listed
 * is not present, so a stray access is a page fault the host reports.
 */
import { CONTROL_BLOCK_ADDRESS, IMAGE_BASE } from "../abi/constants.js";
import { InvalidConfigError } from "../errors/errors.js";

export const PAGE = 0x1000;
const TWO_MIB = 0x200000;
const ONE_GIB = 0x40000000;

/** Page access as mapped in the page tables. */
export type Access = "none" | "kernel-rw" | "kernel-r" | "kernel-rx" | "user-r" | "user-rw" | "user-rx";

export interface Region {
  readonly name: string;
  readonly start: number;
  readonly size: number;
  readonly access: Access;
}

export interface ImageSegment {
  readonly start: number;
  readonly size: number;
  readonly access: Access;
}

export interface LayoutRequest {
  /** ELF segments, page-aligned and non-overlapping (the ELF loader checks). */
  readonly image: readonly ImageSegment[];
  readonly imageEnd: number;
  readonly inputSize: number;
  readonly outputSize: number;
  readonly heapSize: number;
  readonly stackSize: number;
  /**
   * Bytes of thread-local data below the thread pointer (thread-block.ts); 0 gives a
   * thread control block alone. Undefined: no thread block at all, as in the layouts of
   * snapshots taken before vmlet laid one out (their guests run with FS base 0).
   */
  readonly tlsBlockSize?: number | undefined;
}

/**
 * The thread pointer (the guest's FS base): the x86-64 TLS ABI's variant II puts the
 * thread-local data just below it and the thread control block at it. A fixed address
 * below the image, so a snapshot's FS base can be checked against the one place it may be.
 */
export const THREAD_POINTER = 0xfe000;
/** The region of the thread block: thread-local data and the thread control block's page. */
export const THREAD_BLOCK_REGION = "thread-local storage";
/** Thread-local data may reach down to a guard page above the control block. */
export const MAX_TLS_BLOCK_SIZE = THREAD_POINTER - (CONTROL_BLOCK_ADDRESS + 2 * PAGE);

/** Fixed low-memory system pages. */
export const SYSTEM = {
  gdt: 0x1000,
  tss: 0x1100,
  idt: 0x2000,
  stubs: 0x3000,
  ring0Stack: { start: 0x5000, top: 0x8000 },
  istStack: { start: 0x9000, top: 0xa000 },
} as const;

export interface MemoryLayout {
  readonly memorySize: number;
  readonly regions: readonly Region[];
  readonly controlBlock: number;
  readonly input: { readonly address: number; readonly size: number };
  readonly output: { readonly address: number; readonly size: number };
  readonly heap: { readonly address: number; readonly size: number };
  readonly stack: { readonly bottom: number; readonly top: number };
  readonly pageTables: { readonly address: number; readonly size: number };
}

const align = (n: number, to: number): number => Math.ceil(n / to) * to;

export function computeLayout(req: LayoutRequest): MemoryLayout {
  for (const [name, size] of [["inputSize", req.inputSize], ["outputSize", req.outputSize], ["heapSize", req.heapSize], ["stackSize", req.stackSize]] as const) {
    if (!Number.isSafeInteger(size) || size < PAGE) throw new InvalidConfigError(`${name} must be at least ${PAGE} bytes (got ${size})`);
  }
  const regions: Region[] = [
    { name: "gdt+tss", start: SYSTEM.gdt, size: PAGE, access: "kernel-rw" },
    { name: "idt", start: SYSTEM.idt, size: PAGE, access: "kernel-r" },
    { name: "fault stubs", start: SYSTEM.stubs, size: PAGE, access: "kernel-rx" },
    { name: "ring-0 stack", start: SYSTEM.ring0Stack.start, size: SYSTEM.ring0Stack.top - SYSTEM.ring0Stack.start, access: "kernel-rw" },
    { name: "ist stack", start: SYSTEM.istStack.start, size: SYSTEM.istStack.top - SYSTEM.istStack.start, access: "kernel-rw" },
    { name: "control block", start: CONTROL_BLOCK_ADDRESS, size: PAGE, access: "user-rw" },
    ...threadBlockRegion(req.tlsBlockSize),
    ...req.image.map((s, i) => ({ name: `image segment ${i}`, ...s })),
  ];
  let cursor = align(Math.max(req.imageEnd, IMAGE_BASE), PAGE) + PAGE; // guard after the image
  const place = (name: string, size: number): { address: number; size: number } => {
    const region = { name, start: cursor, size: align(size, PAGE), access: "user-rw" as const };
    regions.push(region);
    cursor += region.size + PAGE; // each buffer is followed by a guard page
    return { address: region.start, size: region.size };
  };
  const input = place("input buffer", req.inputSize);
  const output = place("output buffer", req.outputSize);
  const heap = place("heap", req.heapSize);
  const stackSize = align(req.stackSize, PAGE);
  regions.push({ name: "stack", start: cursor, size: stackSize, access: "user-rw" });
  const stack = { bottom: cursor, top: cursor + stackSize };
  const tablesStart = stack.top;
  const tablesSize = pageTableBytes(tablesStart);
  regions.push({ name: "page tables", start: tablesStart, size: tablesSize, access: "kernel-rw" });
  const memorySize = align(tablesStart + tablesSize, TWO_MIB);
  return {
    memorySize,
    regions,
    controlBlock: CONTROL_BLOCK_ADDRESS,
    input,
    output,
    heap,
    stack,
    pageTables: { address: tablesStart, size: tablesSize },
  };
}

/** The thread-local data's pages below the thread pointer and the thread control block's page at it (none for an old layout). */
function threadBlockRegion(tlsBlockSize: number | undefined): Region[] {
  if (tlsBlockSize === undefined) return [];
  if (!Number.isSafeInteger(tlsBlockSize) || tlsBlockSize < 0 || tlsBlockSize > MAX_TLS_BLOCK_SIZE) {
    throw new InvalidConfigError(`thread-local data must be 0 to ${MAX_TLS_BLOCK_SIZE} bytes (got ${tlsBlockSize})`);
  }
  const below = align(tlsBlockSize, PAGE);
  return [{ name: THREAD_BLOCK_REGION, start: THREAD_POINTER - below, size: below + PAGE, access: "user-rw" }];
}

/** The guest's thread pointer (FS base) for a layout: 0 for an old layout without a thread block. */
export function threadPointerOf(layout: MemoryLayout): number {
  return layout.regions.some((r) => r.name === THREAD_BLOCK_REGION) ? THREAD_POINTER : 0;
}

/** Bytes of page tables needed to map [0, end + the tables themselves). */
function pageTableBytes(end: number): number {
  let size = 0;
  for (;;) {
    const mapped = align(end + size, TWO_MIB);
    const next = PAGE * (1 + 1 + Math.ceil(mapped / ONE_GIB) + mapped / TWO_MIB); // PML4, PDPT, PDs, PTs
    if (next <= size) return size;
    size = next;
  }
}

/** Renders the layout as a table of regions (`vmlet layout` prints it for a guest). */
export function describeLayout(layout: MemoryLayout): string {
  const hex = (n: number): string => `0x${n.toString(16).padStart(8, "0")}`;
  const lines = [...layout.regions]
    .sort((a, b) => a.start - b.start)
    .map((r) => `${hex(r.start)}-${hex(r.start + r.size)}  ${r.access.padEnd(9)}  ${r.name}`);
  return [...lines, `memory size ${layout.memorySize} bytes`].join("\n");
}

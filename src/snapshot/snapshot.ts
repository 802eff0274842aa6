/**
 * A snapshot: everything needed to resume a guest at a call boundary. The state is a
 * plain, versioned value (CPU state in the backend-neutral form, layout, the guest's
 * exports, the host-function set) plus the memory image. Immutable once taken.
 */
import type { GuestFunction } from "../abi/function-table.js";
import type { CpuIdentity } from "../hypervisor/cpu-features.js";
import type { BackendInfo, CpuState, SystemSetup } from "../hypervisor/virtual-machine.js";
import type { MemoryLayout } from "../mem/layout.js";
import type { LogLevel } from "../sandbox/logging.js";
import type { MemoryImage } from "./memory-image.js";
import { loadSnapshot, type LoadOptions } from "./file/load.js";
import { saveSnapshot, type SaveOptions } from "./file/save.js";
import { checkCheckedLoadOptions } from "./file/option-checks.js";
import type { HostFunctionSignature } from "./host-function-rules.js";

/** Version of the snapshot state type; bumped when its meaning changes. */
export const SNAPSHOT_STATE_VERSION = 1;

export interface SnapshotState {
  readonly version: typeof SNAPSHOT_STATE_VERSION;
  /** Shared by every sandbox and snapshot descended from one guest build; restores stay within it. */
  readonly lineage: string;
  /** Counts snapshots taken in the lineage's sandboxes: 1 for the first. */
  readonly generation: number;
  readonly layout: MemoryLayout;
  readonly system: SystemSetup;
  readonly cpu: CpuState;
  /** Vendor and features the guest's CPU offered: a machine lacking one cannot resume it. */
  readonly guestCpu: CpuIdentity;
  /** The backend that took the snapshot (advisory: any backend resumes the neutral state). */
  readonly takenBy: BackendInfo;
  readonly functions: readonly GuestFunction[];
  readonly hostFunctions: readonly HostFunctionSignature[];
  readonly maxGuestLogLevel: LogLevel;
  readonly createdAt: Date;
}

/** @internal Shared by every sandbox and snapshot descended from one guest build. */
export interface Lineage {
  readonly id: string;
  readonly guestElf: Uint8Array;
  /** Generation of the last snapshot taken in the lineage. */
  generation: number;
}

export class Snapshot {
  /** @internal Taken by Sandbox.snapshot(). */
  constructor(
    readonly state: SnapshotState,
    /** @internal */ readonly image: MemoryImage,
    /** @internal */ readonly lineage: Lineage,
  ) {}

  /**
   * The guest ELF the lineage was built from, kept for symbolising dumps and profiles: a
   * copy, since every sandbox and snapshot of the lineage (and later builds of the same
   * file) share the bytes.
   */
  get guestElf(): Uint8Array {
    return new Uint8Array(this.lineage.guestElf); // a copy, whatever subclass (Buffer) the lineage holds
  }

  get generation(): number {
    return this.state.generation;
  }

  /** Guest memory size in bytes. */
  get memorySize(): number {
    return this.state.layout.memorySize;
  }

  /** Host functions (as signatures) the sandbox had when the snapshot was taken. */
  get hostFunctions(): string[] {
    return this.state.hostFunctions.map((f) => `${f.name}(${f.params.join(", ")}) -> ${f.returns}`);
  }

  /** Functions the guest exports. */
  get functions(): string[] {
    return this.state.functions.map((f) => `${f.name}(${f.params.join(", ")}) -> ${f.returns}`);
  }

  /**
   * Saves the snapshot into the OCI image layout `dir` (created if missing) under `tag`,
   * replacing the tag if it exists. Crash-safe; blobs already in the layout are not
   * written again. With `base` (a tag or manifest digest of `dir` holding an ancestor of
   * this snapshot), only the pages changed since it are written, as a diff layer over the
   * base's layers. Resolves to the manifest digest ("sha256:…"). See docs/snapshot-format.md.
   */
  save(dir: string, tag: string, options?: SaveOptions): Promise<string> {
    return saveSnapshot(this, dir, tag, options);
  }

  /**
   * Loads a snapshot saved with save(): `ref` is a tag or a manifest digest. The memory
   * layers are copied into private memory, bottom-up (the cost is the pages they store,
   * not the memory size), so nothing done to the blob files later reaches a sandbox; every
   * other blob is read, size-capped and digest-checked, and every field validated. A
   * snapshot with more guest memory than `maxMemorySize` (default 4 GiB) is refused.
   */
  static load(dir: string, ref: string, options?: Pick<LoadOptions, "maxMemorySize">): Promise<Snapshot> {
    return loadSnapshot(dir, ref, options?.maxMemorySize === undefined ? {} : { maxMemorySize: options.maxMemorySize });
  }

  /** Like load() (and with its `maxMemorySize`), but first verifies the sha256 of every blob, the memory image included. */
  static async checkedLoad(dir: string, ref: string, options?: Omit<LoadOptions, "verify">): Promise<Snapshot> {
    return loadSnapshot(dir, ref, { ...checkCheckedLoadOptions(options), verify: true });
  }

  /** Pages the image stores (the rest are zero). */
  get pagesStored(): number {
    return this.image.pagesStored;
  }
}

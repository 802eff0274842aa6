/**
 * The snapshot config blob (application/vnd.vmlet.snapshot.config.v1+json): the
 * snapshot's state as plain JSON. 64-bit values are hex strings, the XSAVE area base64.
 * `decodeConfig` trusts nothing: every field is type- and range-checked here, and the
 * cross-field rules (layout, system tables, CPU state) in state-checks.ts.
 */
import { ABI_VERSION, LOG_LEVELS } from "../../abi/constants.js";
import type { GuestFunction } from "../../abi/function-table.js";
import type { ReturnType, ValueType } from "../../abi/types.js";
import type { CpuIdentity } from "../../hypervisor/cpu-features.js";
import type { BackendInfo, CpuState, SystemSetup } from "../../hypervisor/virtual-machine.js";
import type { Access, MemoryLayout, Region } from "../../mem/layout.js";
import type { LogLevel } from "../../sandbox/logging.js";
import { VMLET_VERSION } from "../../version.js";
import type { HostFunctionSignature } from "../host-function-rules.js";
import { SNAPSHOT_STATE_VERSION, type SnapshotState } from "../snapshot.js";
import { isWellFormed, MAX_WORKING_SET_RANGES, type WorkingSet } from "../working-set.js";
import { SnapshotIncompatibleError, SnapshotInvalidError } from "./errors.js";
import { SNAPSHOT_FORMAT_VERSION } from "./format.js";
import * as J from "./json-checks.js";
import { checkState } from "./state-checks.js";

export const ARCH = "x86_64";
const VALUE_TYPES: readonly ValueType[] = ["i32", "u32", "i64", "u64", "f32", "f64", "bool", "string", "bytes"];
const RETURN_TYPES: readonly ReturnType[] = ["void", ...VALUE_TYPES];
const ACCESS: readonly Access[] = ["none", "kernel-rw", "kernel-r", "kernel-rx", "user-r", "user-rw", "user-rx"];
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const LINEAGE = /^[A-Za-z0-9-]{1,64}$/;
const MAX_FUNCTIONS = 4096;
const MAX_PARAMS = 16;
const MAX_MEMORY = 64 * 1024 * 1024 * 1024;
const XSAVE_BYTES = 4096;

export interface SnapshotConfigBlob {
  readonly formatVersion: typeof SNAPSHOT_FORMAT_VERSION;
  readonly abiVersion: number;
  readonly arch: typeof ARCH;
  readonly vmletVersion: string;
  readonly created: string;
  readonly takenBy: BackendInfo;
  readonly lineage: string;
  readonly generation: number;
  readonly guestCpu: CpuIdentity;
  readonly cpuState: {
    readonly gprs: string[];
    readonly rip: string;
    readonly rflags: string;
    readonly fsBase: string;
    readonly gsBase: string;
    readonly xsave: string;
  };
  /** Where the guest resumes: the RIP of its call-boundary loop. */
  readonly entryPoint: string;
  readonly layout: MemoryLayout;
  readonly system: SystemSetup;
  readonly functions: readonly GuestFunction[];
  readonly hostFunctions: readonly HostFunctionSignature[];
  readonly maxGuestLogLevel: LogLevel;
  /** Optional: the pages sandboxes touched (and wrote) right after resume, [firstPage, endPage] pairs; a hint (docs/snapshot-format.md). */
  readonly workingSet?: { readonly touched: Array<[number, number]>; readonly written: Array<[number, number]> };
}

export function encodeConfig(state: SnapshotState, workingSet?: WorkingSet): SnapshotConfigBlob {
  const { cpu } = state;
  return {
    formatVersion: SNAPSHOT_FORMAT_VERSION,
    abiVersion: ABI_VERSION,
    arch: ARCH,
    vmletVersion: VMLET_VERSION,
    created: state.createdAt.toISOString(),
    takenBy: { ...state.takenBy },
    lineage: state.lineage,
    generation: state.generation,
    guestCpu: { vendor: state.guestCpu.vendor, features: [...state.guestCpu.features] },
    cpuState: {
      gprs: [...cpu.gprs].map(J.hex64),
      rip: J.hex64(cpu.rip),
      rflags: J.hex64(cpu.rflags),
      fsBase: J.hex64(cpu.fsBase),
      gsBase: J.hex64(cpu.gsBase),
      xsave: Buffer.from(cpu.xsave.buffer, cpu.xsave.byteOffset, cpu.xsave.byteLength).toString("base64"),
    },
    entryPoint: J.hex64(cpu.rip),
    layout: state.layout,
    system: state.system,
    functions: state.functions.map((f) => ({ name: f.name, index: f.index, params: [...f.params], returns: f.returns })),
    hostFunctions: state.hostFunctions.map((f) => ({ name: f.name, params: [...f.params], returns: f.returns })),
    maxGuestLogLevel: state.maxGuestLogLevel,
    ...(workingSet && { workingSet: { touched: pairsOf(workingSet.touched), written: pairsOf(workingSet.written) } }),
  };
}

const pairsOf = (ranges: Uint32Array): Array<[number, number]> => Array.from({ length: ranges.length / 2 }, (_, i) => [ranges[2 * i]!, ranges[2 * i + 1]!]);

function decodeWorkingSet(value: J.Json | undefined, where: string, pages: number): WorkingSet | undefined {
  if (value === undefined) return undefined;
  const o = J.object(value, where);
  const ranges = (key: string): Uint32Array => {
    const list = J.array(o[key], `${where}.${key}`, MAX_WORKING_SET_RANGES).flatMap((r, i) => {
      const pair = J.array(r, `${where}.${key}[${i}]`, 2);
      return pair.map((p, k) => J.integer(p, `${where}.${key}[${i}][${k}]`, 0, pages));
    });
    if (!isWellFormed(list, pages) || list.length % 2 !== 0) {
      throw new SnapshotInvalidError(`${where}.${key}`, "must be sorted, disjoint, non-empty [firstPage, endPage] pairs inside guest memory");
    }
    return Uint32Array.from(list);
  };
  return { touched: ranges("touched"), written: ranges("written") };
}

/** Parses and checks a config blob; versions first, so an old or new format gets the precise error. */
export function decodeConfig(bytes: Uint8Array, where = "config"): SnapshotState {
  return decodeConfigBlob(bytes, where).state;
}

/** A config blob's state and its optional working set (a malformed working set is SNAPSHOT_INVALID, like any other field). */
export function decodeConfigBlob(bytes: Uint8Array, where = "config"): { state: SnapshotState; workingSet: WorkingSet | undefined } {
  const c = J.object(J.parseJson(bytes, where), where);
  const state = decodeState(c, where);
  return { state, workingSet: decodeWorkingSet(c.workingSet, `${where}.workingSet`, state.layout.memorySize / 4096) };
}

function decodeState(c: J.JsonObject, where: string): SnapshotState {
  const at = (key: string): string => `${where}.${key}`;
  if (c.formatVersion !== SNAPSHOT_FORMAT_VERSION) {
    throw new SnapshotIncompatibleError(`snapshot format version ${JSON.stringify(c.formatVersion)} is not supported by vmlet ${VMLET_VERSION} (it reads version ${SNAPSHOT_FORMAT_VERSION}); see docs/snapshot-versioning.md`);
  }
  if (c.abiVersion !== ABI_VERSION) {
    throw new SnapshotIncompatibleError(`the snapshot's guest uses ABI version ${JSON.stringify(c.abiVersion)}; this vmlet speaks ${ABI_VERSION}`);
  }
  if (c.arch !== ARCH) throw new SnapshotIncompatibleError(`the snapshot is for ${JSON.stringify(c.arch)}; this vmlet runs ${ARCH} guests`);
  J.string(c.vmletVersion, at("vmletVersion"), undefined, 64);
  const created = new Date(J.string(c.created, at("created"), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/));
  if (Number.isNaN(created.getTime())) throw new SnapshotInvalidError(at("created"), "is not a date");
  const takenBy = J.object(c.takenBy, at("takenBy"));
  const guestCpu = J.object(c.guestCpu, at("guestCpu"));
  const state: SnapshotState = {
    version: SNAPSHOT_STATE_VERSION,
    lineage: J.string(c.lineage, at("lineage"), LINEAGE),
    generation: J.integer(c.generation, at("generation"), 1, Number.MAX_SAFE_INTEGER),
    layout: decodeLayout(c.layout, at("layout")),
    system: decodeSystem(c.system, at("system")),
    cpu: decodeCpu(c.cpuState, at("cpuState")),
    guestCpu: {
      vendor: J.string(guestCpu.vendor, at("guestCpu.vendor"), /^[\x20-\x7e]{0,12}$/),
      features: J.array(guestCpu.features, at("guestCpu.features"), 256).map((f, i) => J.string(f, at(`guestCpu.features[${i}]`), /^[a-z0-9_]{1,32}$/)),
    },
    takenBy: decodeTakenBy(takenBy, at),
    functions: decodeFunctions(c.functions, at("functions")),
    hostFunctions: decodeHostFunctions(c.hostFunctions, at("hostFunctions")),
    maxGuestLogLevel: J.oneOf(c.maxGuestLogLevel, at("maxGuestLogLevel"), LOG_LEVELS),
    createdAt: created,
  };
  if (J.u64(c.entryPoint, at("entryPoint")) !== state.cpu.rip) throw new SnapshotInvalidError(at("entryPoint"), "differs from cpuState.rip");
  checkState(state, where);
  return state;
}

function decodeLayout(value: J.Json | undefined, where: string): MemoryLayout {
  const l = J.object(value, where);
  const span = (key: string): { address: number; size: number } => {
    const o = J.object(l[key], `${where}.${key}`);
    return { address: J.integer(o.address, `${where}.${key}.address`, 0, MAX_MEMORY), size: J.integer(o.size, `${where}.${key}.size`, 0, MAX_MEMORY) };
  };
  const stack = J.object(l.stack, `${where}.stack`);
  const regions: Region[] = J.array(l.regions, `${where}.regions`, 64).map((r, i) => {
    const o = J.object(r, `${where}.regions[${i}]`);
    return {
      name: J.string(o.name, `${where}.regions[${i}].name`, /^[a-z0-9 +-]{1,32}$/),
      start: J.integer(o.start, `${where}.regions[${i}].start`, 0, MAX_MEMORY),
      size: J.integer(o.size, `${where}.regions[${i}].size`, 0, MAX_MEMORY),
      access: J.oneOf(o.access, `${where}.regions[${i}].access`, ACCESS),
    };
  });
  return {
    memorySize: J.integer(l.memorySize, `${where}.memorySize`, 0x200000, MAX_MEMORY),
    regions,
    controlBlock: J.integer(l.controlBlock, `${where}.controlBlock`, 0, MAX_MEMORY),
    input: span("input"),
    output: span("output"),
    heap: span("heap"),
    stack: { bottom: J.integer(stack.bottom, `${where}.stack.bottom`, 0, MAX_MEMORY), top: J.integer(stack.top, `${where}.stack.top`, 0, MAX_MEMORY) },
    pageTables: span("pageTables"),
  };
}

function decodeSystem(value: J.Json | undefined, where: string): SystemSetup {
  const s = J.object(value, where);
  const table = (key: string): { base: number; limit: number } => {
    const o = J.object(s[key], `${where}.${key}`);
    return { base: J.integer(o.base, `${where}.${key}.base`, 0, MAX_MEMORY), limit: J.integer(o.limit, `${where}.${key}.limit`, 0, 0xfffff) };
  };
  const tss = J.object(s.tss, `${where}.tss`);
  return {
    pml4Address: J.integer(s.pml4Address, `${where}.pml4Address`, 0, MAX_MEMORY),
    gdt: table("gdt"),
    idt: table("idt"),
    tss: { ...table("tss"), selector: J.integer(tss.selector, `${where}.tss.selector`, 0, 0xffff) },
    userCodeSelector: J.integer(s.userCodeSelector, `${where}.userCodeSelector`, 0, 0xffff),
    userDataSelector: J.integer(s.userDataSelector, `${where}.userDataSelector`, 0, 0xffff),
  };
}

function decodeCpu(value: J.Json | undefined, where: string): CpuState {
  const c = J.object(value, where);
  const gprs = J.array(c.gprs, `${where}.gprs`, 16);
  if (gprs.length !== 16) throw new SnapshotInvalidError(`${where}.gprs`, `must hold 16 registers (has ${gprs.length})`);
  const xsave = J.base64(c.xsave, `${where}.xsave`, XSAVE_BYTES);
  if (xsave.byteLength !== XSAVE_BYTES) throw new SnapshotInvalidError(`${where}.xsave`, `must be ${XSAVE_BYTES} bytes (is ${xsave.byteLength})`);
  return {
    gprs: BigUint64Array.from(gprs.map((g, i) => J.u64(g, `${where}.gprs[${i}]`))),
    rip: J.u64(c.rip, `${where}.rip`),
    rflags: J.u64(c.rflags, `${where}.rflags`),
    fsBase: J.u64(c.fsBase, `${where}.fsBase`),
    gsBase: J.u64(c.gsBase, `${where}.gsBase`),
    xsave,
  };
}

function decodeSignature(o: J.JsonObject, where: string): { params: ValueType[]; returns: ReturnType } {
  return {
    params: J.array(o.params, `${where}.params`, MAX_PARAMS).map((p, i) => J.oneOf(p, `${where}.params[${i}]`, VALUE_TYPES)),
    returns: J.oneOf(o.returns, `${where}.returns`, RETURN_TYPES),
  };
}

function decodeFunctions(value: J.Json | undefined, where: string): GuestFunction[] {
  const list = J.array(value, where, MAX_FUNCTIONS).map((f, i) => {
    const o = J.object(f, `${where}[${i}]`);
    return { name: J.string(o.name, `${where}[${i}].name`, NAME), index: J.integer(o.index, `${where}[${i}].index`, 0, MAX_FUNCTIONS - 1), ...decodeSignature(o, `${where}[${i}]`) };
  });
  J.unique(list.map((f) => f.name), where);
  return list;
}

function decodeHostFunctions(value: J.Json | undefined, where: string): HostFunctionSignature[] {
  const list = J.array(value, where, MAX_FUNCTIONS).map((f, i) => {
    const o = J.object(f, `${where}[${i}]`);
    return { name: J.string(o.name, `${where}[${i}].name`, NAME), ...decodeSignature(o, `${where}[${i}]`) };
  });
  J.unique(list.map((f) => f.name), where);
  return list;
}

/** The backend that took the snapshot: a record only (a snapshot resumes on either backend). */
function decodeTakenBy(takenBy: J.JsonObject, at: (field: string) => string): BackendInfo {
  const name = J.oneOf(takenBy.name, at("takenBy.name"), ["kvm", "process"]);
  if (name === "process") return { name, flavour: J.oneOf(takenBy.flavour, at("takenBy.flavour"), ["seccomp"]) };
  return { name, flavour: J.oneOf(takenBy.flavour, at("takenBy.flavour"), ["pvm", "hardware"]) };
}

/**
 * Reads the memory-profile table a guest built with profiling on keeps in its memory
 * (`vmlet__profile`; layout in guest/include/vmlet_profile.h, mirrored here). Everything in
 * it is guest-written and untrusted: a header that does not describe a table fitting its
 * symbol is a GuestProtocolError; a site that cannot be honest (too many frames, counts no
 * double holds, more in use than allocated) is left out and counted in `skipped`.
 */
import { GuestProtocolError } from "../errors/errors.js";

/** guest/include/vmlet_profile.h (pinned by test/memory-profile.test.ts). */
export const PROFILE_TABLE = {
  symbol: "vmlet__profile",
  magic: 0x464f5250,
  version: 1,
  header: { magic: 0, version: 4, sites: 8, depth: 12, siteSize: 16, used: 20, size: 24 },
  site: { allocObjects: 0, allocBytes: 8, inuseObjects: 16, inuseBytes: 24, frames: 32, hash: 36, pcs: 40 },
} as const;

const MAX_DEPTH = 256;
const MAX_SITES = 1 << 20;

/** One allocation site: its counts and return addresses, innermost first (none: unattributed). */
export interface ProfileSite {
  readonly allocObjects: number;
  readonly allocBytes: number;
  readonly inuseObjects: number;
  readonly inuseBytes: number;
  readonly pcs: readonly number[];
}

export interface ProfileTable {
  readonly sites: readonly ProfileSite[];
  /** Sites left out because their record could not be honest. */
  readonly skipped: number;
}

/** Where the table is: its symbol's address and size in the guest ELF. */
export interface TableLocation { readonly address: number; readonly size: number }

function fail(message: string): never {
  throw new GuestProtocolError(`memory profile table: ${message}`);
}

interface Header { sites: number; depth: number; siteSize: number }

function readHeader(view: DataView, size: number): Header {
  const h = PROFILE_TABLE.header;
  if (size < h.size) fail(`its symbol is ${size} bytes, smaller than the ${h.size}-byte header`);
  const magic = view.getUint32(h.magic, true);
  if (magic === 0) fail("not initialised (the guest's start-up did not run its constructor)");
  if (magic !== PROFILE_TABLE.magic) fail(`bad magic 0x${magic.toString(16)}`);
  const version = view.getUint32(h.version, true);
  if (version !== PROFILE_TABLE.version) fail(`version ${version}, this vmlet reads version ${PROFILE_TABLE.version}`);
  const sites = view.getUint32(h.sites, true);
  const depth = view.getUint32(h.depth, true);
  const siteSize = view.getUint32(h.siteSize, true);
  if (depth === 0 || depth > MAX_DEPTH) fail(`depth ${depth} is not in 1..${MAX_DEPTH}`);
  if (siteSize !== PROFILE_TABLE.site.pcs + 8 * depth) fail(`site size ${siteSize} does not match depth ${depth}`);
  if (sites === 0 || sites > MAX_SITES || h.size + sites * siteSize > size) fail(`${sites} sites of ${siteSize} bytes do not fit its ${size}-byte symbol`);
  return { sites, depth, siteSize };
}

const u64 = (view: DataView, at: number): bigint => view.getBigUint64(at, true);
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** A site slot: undefined when empty, "bad" when it cannot be honest. */
function readSite(view: DataView, at: number, slot: number, depth: number): ProfileSite | undefined | "bad" {
  const s = PROFILE_TABLE.site;
  const counts = [s.allocObjects, s.allocBytes, s.inuseObjects, s.inuseBytes].map((offset) => u64(view, at + offset));
  const [allocObjects = 0n, allocBytes = 0n, inuseObjects = 0n, inuseBytes = 0n] = counts;
  const frames = view.getUint32(at + s.frames, true);
  if (allocObjects === 0n && frames === 0) return undefined;
  if (frames > depth || (frames === 0 && slot !== 0)) return "bad";
  if (counts.some((c) => c > SAFE) || inuseObjects > allocObjects || inuseBytes > allocBytes) return "bad";
  const pcs: number[] = [];
  for (let i = 0; i < frames; i++) pcs.push(Number(u64(view, at + s.pcs + 8 * i)));
  return { allocObjects: Number(allocObjects), allocBytes: Number(allocBytes), inuseObjects: Number(inuseObjects), inuseBytes: Number(inuseBytes), pcs };
}

/** Reads the table at `where` in guest memory. */
export function readProfileTable(memory: Uint8Array, where: TableLocation): ProfileTable {
  const { address, size } = where;
  if (!Number.isSafeInteger(address) || !Number.isSafeInteger(size) || address < 0 || size < 0 || address + size > memory.length) {
    fail(`its symbol [0x${address.toString(16)}, +${size}) is outside guest memory (${memory.length} bytes)`);
  }
  const view = new DataView(memory.buffer, memory.byteOffset + address, size);
  const header = readHeader(view, size);
  const sites: ProfileSite[] = [];
  let skipped = 0;
  for (let slot = 0; slot < header.sites; slot++) {
    const site = readSite(view, PROFILE_TABLE.header.size + slot * header.siteSize, slot, header.depth);
    if (site === "bad") skipped++;
    else if (site !== undefined) sites.push(site);
  }
  return { sites, skipped };
}

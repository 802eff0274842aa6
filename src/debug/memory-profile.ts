/**
 * A guest's memory profile in pprof format: the allocation sites the guest counted in its
 * profile table (profile-table.ts), symbolised from the guest ELF (symbolizer.ts) and
 * encoded with pprof-format. Sample types as in Go heap profiles: alloc_objects,
 * alloc_space, inuse_objects, inuse_space (the default). docs/debugging.md shows how to view it.
 */
import { IMAGE_BASE } from "../abi/constants.js";
import { InvalidConfigError } from "../errors/errors.js";
import { parseElf, readSymbols } from "../mem/elf.js";
import { PROFILE_TABLE, readProfileTable, type ProfileSite } from "./profile-table.js";
import { Symbolizer } from "./symbolizer.js";
import lazyModules from "../lazy-modules.cjs";

/** pprof-format's types, as the CommonJS build that lazy-modules.cts loads declares them. */
type Pprof = ReturnType<typeof lazyModules.pprofFormat>;
type Profile = InstanceType<Pprof["Profile"]>;
type Location = InstanceType<Pprof["Location"]>;
type PprofFunction = InstanceType<Pprof["Function"]>;
type StringTable = InstanceType<Pprof["StringTable"]>;
type SampleInput = Exclude<ConstructorParameters<Pprof["Sample"]>[0], undefined>;

export interface ProfileSource {
  /** Guest memory, guest address = offset. */
  readonly memory: Uint8Array;
  readonly guestElf: Uint8Array;
}

const SAMPLE_TYPES = [["alloc_objects", "count"], ["alloc_space", "bytes"], ["inuse_objects", "count"], ["inuse_space", "bytes"]] as const;
const MAX_IMAGE_SIZE = 256 << 20;
const UNATTRIBUTED = "(vmlet: allocations without a site of their own: the profile table was full, or no stack)";

/** The profile, gzip-compressed as `go tool pprof` and `pprof` read it. */
export function memoryProfile(source: ProfileSource): Uint8Array {
  return lazyModules.zlib().gzipSync(buildMemoryProfile(source).encode());
}

/** The profile, decoded (for callers that inspect or merge it). */
export function buildMemoryProfile(source: ProfileSource): Profile {
  const symbols = readSymbols(source.guestElf);
  const table = symbols.find((s) => s.name === PROFILE_TABLE.symbol && !s.isFunction);
  if (table === undefined) {
    throw new InvalidConfigError("this guest was not built with memory profiling on (build it with `make VMLET_PROFILE=1`; docs/debugging.md)");
  }
  const { sites, skipped } = readProfileTable(source.memory, { address: table.value, size: table.size });
  const image = parseElf(source.guestElf, { minAddress: IMAGE_BASE, maxAddress: IMAGE_BASE + MAX_IMAGE_SIZE });
  const builder = new ProfileBuilder(new Symbolizer(source.guestElf, symbols), { start: image.start, end: image.end });
  for (const site of sites) builder.add(site);
  if (skipped > 0) builder.comment(`vmlet: ${skipped} malformed site record(s) in the guest's table were left out`);
  if (builder.symbolizer.linesUnavailable !== undefined) builder.comment(`vmlet: no line numbers: ${builder.symbolizer.linesUnavailable}`);
  return builder.finish();
}

/** Collects samples, giving each distinct return address one location and each function one entry. */
class ProfileBuilder {
  private readonly pprof = lazyModules.pprofFormat();
  private readonly strings: StringTable = new this.pprof.StringTable();
  private readonly samples: SampleInput[] = [];
  private readonly locations = new Map<number, Location>();
  private readonly functions = new Map<string, PprofFunction>();
  private readonly comments: number[] = [];

  /** The guest image: pprof's one mapping, already symbolised. */
  constructor(readonly symbolizer: Symbolizer, private readonly image: { start: number; end: number }) {}

  add(site: ProfileSite): void {
    const locationId = site.pcs.length > 0 ? site.pcs.map((pc) => this.locationOf(pc)) : [this.locationOf(0)];
    this.samples.push({ locationId, value: [site.allocObjects, site.allocBytes, site.inuseObjects, site.inuseBytes] });
  }

  comment(text: string): void {
    this.comments.push(this.strings.dedup(text));
  }

  finish(): Profile {
    const s = (text: string): number => this.strings.dedup(text);
    const { Mapping, Profile, ValueType } = this.pprof;
    return new Profile({
      sampleType: SAMPLE_TYPES.map(([type, unit]) => new ValueType({ type: s(type), unit: s(unit) })),
      sample: this.samples,
      mapping: [new Mapping({
        id: 1, memoryStart: this.image.start, memoryLimit: this.image.end, filename: s("guest.elf"),
        hasFunctions: true, hasFilenames: true, hasLineNumbers: !this.symbolizer.linesUnavailable,
      })],
      location: [...this.locations.values()],
      function: [...this.functions.values()],
      stringTable: this.strings,
      periodType: new ValueType({ type: s("space"), unit: s("bytes") }),
      period: 1, // every allocation is counted: no sampling
      defaultSampleType: s("inuse_space"),
      timeNanos: BigInt(Date.now()) * 1_000_000n,
      comment: this.comments,
    });
  }

  /** pcs are return addresses: the call is the instruction before, so its line is looked up at pc - 1. */
  private locationOf(pc: number): number {
    const known = this.locations.get(pc);
    if (known !== undefined) return Number(known.id);
    const id = this.locations.size + 1;
    const where = pc === 0 ? { function: UNATTRIBUTED, source: undefined } : this.symbolizer.locate(pc - 1);
    // Code without a function symbol (assembly labels) still has a line: "??" as addr2line -f says.
    const name = where.function ?? (where.source ? "??" : undefined);
    const line = name === undefined ? [] : [{ functionId: this.functionOf(name, where.source?.file ?? ""), line: where.source?.line ?? 0 }];
    const mappingId = pc >= this.image.start && pc < this.image.end ? 1 : 0;
    this.locations.set(pc, new this.pprof.Location({ id, mappingId, address: pc, line }));
    return id;
  }

  private functionOf(name: string, file: string): number {
    const key = `${name}\0${file}`;
    const known = this.functions.get(key);
    if (known !== undefined) return Number(known.id);
    const id = this.functions.size + 1;
    this.functions.set(key, new this.pprof.Function({ id, name: this.strings.dedup(name), systemName: this.strings.dedup(name), filename: this.strings.dedup(file) }));
    return id;
  }
}

/**
 * The OCI side of the format: the layout marker, the index (tags → manifests) and the
 * snapshot manifest (config + memory + guest ELF). Builders for writing, strict
 * parsers for reading.
 */
import { ANNOTATION, DIGEST_PATTERN, INDEX_FILE, MAX_MEMORY_LAYERS, MEDIA_TYPE, OCI_LAYOUT_VERSION, TAG_PATTERN } from "./format.js";
import { SnapshotInvalidError } from "./errors.js";
import * as J from "./json-checks.js";

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly artifactType?: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface OciIndex {
  readonly schemaVersion: 2;
  readonly mediaType: typeof MEDIA_TYPE.index;
  readonly manifests: readonly Descriptor[];
}

export interface SnapshotManifest {
  readonly schemaVersion: 2;
  readonly mediaType: typeof MEDIA_TYPE.manifest;
  readonly artifactType: typeof MEDIA_TYPE.artifact;
  readonly config: Descriptor;
  /** The memory layers bottom-up (one full layer, then diffs), then the guest ELF. */
  readonly layers: readonly Descriptor[];
  readonly annotations: Readonly<Record<string, string>>;
}

const MAX_MANIFESTS = 10_000;
/** Layers a manifest may list at all; the memory chain's own limit (MAX_MEMORY_LAYERS) is checked after, with its own message. */
const MAX_LAYERS = 1024;
const MAX_ANNOTATIONS = 64;

export const layoutMarker = (): string => `${JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION })}\n`;

export function parseLayoutMarker(bytes: Uint8Array): void {
  const o = J.object(J.parseJson(bytes, "oci-layout"), "oci-layout");
  J.exactly(o.imageLayoutVersion, "oci-layout.imageLayoutVersion", OCI_LAYOUT_VERSION);
}

export const emptyIndex = (): OciIndex => ({ schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests: [] });

/** Parses index.json; descriptors of other artifacts are kept as they are. */
export function parseIndex(bytes: Uint8Array): OciIndex {
  const o = J.object(J.parseJson(bytes, "index.json"), "index.json");
  J.exactly(o.schemaVersion, "index.json.schemaVersion", 2);
  if (o.mediaType !== undefined) J.exactly(o.mediaType, "index.json.mediaType", MEDIA_TYPE.index);
  const manifests = J.array(o.manifests, "index.json.manifests", MAX_MANIFESTS).map((d, i) => parseDescriptor(d, `index.json.manifests[${i}]`));
  return { schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests };
}

export function parseDescriptor(value: J.Json | undefined, where: string): Descriptor {
  const o = J.object(value, where);
  const annotations = o.annotations === undefined ? undefined : parseAnnotations(o.annotations, `${where}.annotations`);
  const artifactType = o.artifactType === undefined ? undefined : J.string(o.artifactType, `${where}.artifactType`, undefined, 255);
  return {
    mediaType: J.string(o.mediaType, `${where}.mediaType`, undefined, 255),
    digest: J.string(o.digest, `${where}.digest`, DIGEST_PATTERN),
    size: J.integer(o.size, `${where}.size`, 0, Number.MAX_SAFE_INTEGER),
    ...(artifactType === undefined ? {} : { artifactType }),
    ...(annotations === undefined ? {} : { annotations }),
  };
}

function parseAnnotations(value: J.Json, where: string): Record<string, string> {
  const o = J.object(value, where);
  const keys = Object.keys(o);
  if (keys.length > MAX_ANNOTATIONS) throw new SnapshotInvalidError(where, `has more than ${MAX_ANNOTATIONS} entries`);
  return Object.fromEntries(keys.map((k) => [k, J.string(o[k], `${where}.${k}`)]));
}

export const tagOf = (d: Descriptor): string | undefined => d.annotations?.[ANNOTATION.refName];

export function buildManifest(config: Descriptor, memoryLayers: readonly Descriptor[], guestElf: Descriptor, annotations: Record<string, string>): SnapshotManifest {
  return { schemaVersion: 2, mediaType: MEDIA_TYPE.manifest, artifactType: MEDIA_TYPE.artifact, config, layers: [...memoryLayers, guestElf], annotations };
}

export interface ParsedManifest {
  readonly manifest: SnapshotManifest;
  /** Bottom-up: the full memory layer, then each diff layer over the one before it. */
  readonly memoryLayers: readonly Descriptor[];
  readonly guestElf: Descriptor;
}

/**
 * Parses a manifest and checks it is a vmlet snapshot: artifact type, config, one guest ELF
 * layer and a memory chain (checkMemoryChain). Whether each diff layer really lies over the
 * layer below it is in the diff's own header, checked when it is read.
 */
export function parseManifest(bytes: Uint8Array, where: string): ParsedManifest {
  const o = J.object(J.parseJson(bytes, where), where);
  J.exactly(o.schemaVersion, `${where}.schemaVersion`, 2);
  J.exactly(o.mediaType, `${where}.mediaType`, MEDIA_TYPE.manifest);
  J.exactly(o.artifactType, `${where}.artifactType`, MEDIA_TYPE.artifact);
  const config = parseDescriptor(o.config, `${where}.config`);
  J.exactly(config.mediaType, `${where}.config.mediaType`, MEDIA_TYPE.config);
  const layers = J.array(o.layers, `${where}.layers`, MAX_LAYERS).map((l, i) => parseDescriptor(l, `${where}.layers[${i}]`));
  const elves = layers.filter((l) => l.mediaType === MEDIA_TYPE.guestElf);
  const memoryLayers = layers.filter((l) => l.mediaType !== MEDIA_TYPE.guestElf);
  if (elves.length !== 1 || memoryLayers.length === 0 || memoryLayers.some((l) => l.mediaType !== MEDIA_TYPE.memory && l.mediaType !== MEDIA_TYPE.memoryDiff)) {
    throw new SnapshotInvalidError(`${where}.layers`, `must be memory layers (one ${MEDIA_TYPE.memory}, then any ${MEDIA_TYPE.memoryDiff}) and one ${MEDIA_TYPE.guestElf} layer`);
  }
  checkMemoryChain(memoryLayers, `${where}.layers`);
  const annotations = o.annotations === undefined ? {} : parseAnnotations(o.annotations, `${where}.annotations`);
  const manifest: SnapshotManifest = { schemaVersion: 2, mediaType: MEDIA_TYPE.manifest, artifactType: MEDIA_TYPE.artifact, config, layers, annotations };
  return { manifest, memoryLayers, guestElf: elves[0]! };
}

/**
 * A memory chain is one full layer at the bottom and diff layers over it: never deeper
 * than MAX_MEMORY_LAYERS, and never the same layer twice (a cycle: a layer over itself).
 */
function checkMemoryChain(layers: readonly Descriptor[], where: string): void {
  if (layers.length > MAX_MEMORY_LAYERS) throw new SnapshotInvalidError(where, `a chain of ${layers.length} memory layers is deeper than the limit of ${MAX_MEMORY_LAYERS} (squash it)`);
  const seen = new Set<string>();
  for (const layer of layers) {
    if (seen.has(layer.digest)) throw new SnapshotInvalidError(where, `the memory chain holds layer ${layer.digest} twice: a cycle`);
    seen.add(layer.digest);
  }
  if (layers[0]!.mediaType !== MEDIA_TYPE.memory) throw new SnapshotInvalidError(where, `the diff layer ${layers[0]!.digest} has no base: the bottom memory layer must be a full ${MEDIA_TYPE.memory} layer`);
  const extra = layers.findIndex((l, i) => i > 0 && l.mediaType === MEDIA_TYPE.memory);
  if (extra > 0) throw new SnapshotInvalidError(where, `only the bottom memory layer may be a full one (memory layer ${extra}, ${layers[extra]!.digest}, is one too)`);
}

/** Finds a manifest by tag or by digest. A tag that names two different manifests is refused, never resolved to one of them. */
export function resolveRef(index: OciIndex, ref: string): Descriptor | undefined {
  if (DIGEST_PATTERN.test(ref)) return index.manifests.find((d) => d.digest === ref);
  const named = index.manifests.filter((d) => tagOf(d) === ref);
  const digests = distinctDigests(named);
  if (digests.length > 1) throw ambiguousTagError(ref, digests);
  return named[0];
}

/** Tags that name more than one distinct manifest, with those manifests' digests. */
export function ambiguousTags(index: OciIndex): Map<string, string[]> {
  const byTag = new Map<string, Descriptor[]>();
  for (const d of index.manifests) {
    const tag = tagOf(d);
    if (tag !== undefined) byTag.set(tag, [...(byTag.get(tag) ?? []), d]);
  }
  const ambiguous = new Map<string, string[]>();
  for (const [tag, named] of byTag) {
    const digests = distinctDigests(named);
    if (digests.length > 1) ambiguous.set(tag, digests);
  }
  return ambiguous;
}

export function ambiguousTagError(tag: string, digests: readonly string[]): SnapshotInvalidError {
  return new SnapshotInvalidError(INDEX_FILE, `tag "${tag}" names ${digests.length} different manifests (${digests.join(", ")}); refusing to pick one`);
}

const distinctDigests = (descriptors: readonly Descriptor[]): string[] => [...new Set(descriptors.map((d) => d.digest))];

export function isValidRef(ref: string): boolean {
  return TAG_PATTERN.test(ref) || DIGEST_PATTERN.test(ref);
}

export const toJsonBytes = (value: unknown): Uint8Array => new TextEncoder().encode(`${JSON.stringify(value)}\n`);

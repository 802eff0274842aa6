/**
 * Edits of an in-memory copy of a snapshot layout (index.json plus blobs by digest), for
 * the snapshot-layouts fuzzer. An edit names what it changes, how, and whether the digests
 * are fixed up afterwards (the blob re-hashed under its new name and every referrer
 * re-pointed with the new digest and size, up to index.json) or left stale.
 */
import { createHash } from "node:crypto";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The layout's files: index.json and the blobs by hex digest. Buffers are never changed in place. */
export interface LayoutFiles {
  index: Buffer;
  readonly blobs: Map<string, Buffer>;
}

export type Target = "index" | "manifest" | "config" | "memory" | "elf";

export type Change =
  | { readonly kind: "json"; readonly path: readonly (string | number)[]; readonly action: "set" | "delete" | "add"; readonly value?: JsonValue }
  | { readonly kind: "bytes"; readonly at: number; readonly bytes: readonly number[] }
  | { readonly kind: "resize"; readonly length: number }
  | { readonly kind: "remove" };

/** JSON values by name, made on use (a 1 MiB string or 10,000-deep array should not sit in every printed input). */
export type JsonValue = { readonly name: string; readonly n?: number };

export interface Edit {
  readonly target: Target;
  /** Which tag's blobs (index edits ignore it). */
  readonly tag: string;
  readonly change: Change;
  readonly fixDigests: boolean;
}

const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");
const hexOf = (digest: unknown): string | undefined => (typeof digest === "string" && digest.startsWith("sha256:") ? digest.slice(7) : undefined);

export function cloneFiles(files: LayoutFiles): LayoutFiles {
  return { index: files.index, blobs: new Map(files.blobs) };
}

/** Deeper JSON is left as text: the edits walk trees recursively, and the loader refuses such files anyway. */
const MAX_EDIT_DEPTH = 64;

function parse(bytes: Buffer | undefined): Json | undefined {
  if (!bytes || nesting(bytes) > MAX_EDIT_DEPTH) return undefined;
  try {
    return JSON.parse(bytes.toString("utf8")) as Json;
  } catch {
    return undefined;
  }
}

/** The deepest bracket nesting of JSON text (brackets inside strings count too: an overestimate is fine here). */
function nesting(bytes: Buffer): number {
  let depth = 0;
  let max = 0;
  for (const b of bytes) {
    if (b === 0x5b || b === 0x7b) max = Math.max(max, ++depth);
    else if (b === 0x5d || b === 0x7d) depth--;
  }
  return max;
}

const isObject = (v: Json | undefined): v is { [key: string]: Json } => typeof v === "object" && v !== null && !Array.isArray(v);

/** Hex digests of `tag`'s manifest, config, memory and ELF, as the files now say (undefined where the chain is broken). */
export function digestsOf(files: LayoutFiles, tag: string): Partial<Record<Exclude<Target, "index">, string>> {
  const index = parse(files.index);
  const entry = isObject(index) && Array.isArray(index.manifests)
    ? index.manifests.find((m) => isObject(m) && isObject(m.annotations) && m.annotations["org.opencontainers.image.ref.name"] === tag)
    : undefined;
  const manifestHex = isObject(entry) ? hexOf(entry.digest) : undefined;
  const manifest = parse(manifestHex === undefined ? undefined : files.blobs.get(manifestHex));
  if (!isObject(manifest)) return { ...(manifestHex && { manifest: manifestHex }) };
  const layers = Array.isArray(manifest.layers) ? manifest.layers : [];
  const layer = (i: number): string | undefined => (isObject(layers[i]) ? hexOf((layers[i] as { digest?: Json }).digest) : undefined);
  const out: Partial<Record<Exclude<Target, "index">, string>> = {};
  if (manifestHex) out.manifest = manifestHex;
  const config = isObject(manifest.config) ? hexOf(manifest.config.digest) : undefined;
  if (config) out.config = config;
  const memory = layer(0);
  if (memory) out.memory = memory;
  const elf = layer(1);
  if (elf) out.elf = elf;
  return out;
}

/** Applies one edit to `files`; an edit whose target the earlier edits made unreachable does nothing. */
export function applyEdit(files: LayoutFiles, edit: Edit): void {
  if (edit.target === "index") {
    files.index = change(files.index, edit.change) ?? Buffer.alloc(0);
    return;
  }
  const digests = digestsOf(files, edit.tag);
  const hex = digests[edit.target];
  const old = hex === undefined ? undefined : files.blobs.get(hex);
  if (hex === undefined || old === undefined) return;
  const updated = change(old, edit.change);
  if (updated === undefined) {
    files.blobs.delete(hex);
    return;
  }
  if (!edit.fixDigests) {
    files.blobs.set(hex, updated);
    return;
  }
  const newHex = sha256(updated);
  files.blobs.set(newHex, updated);
  repoint(files, edit.tag, edit.target === "manifest" ? "index" : "manifest", hex, newHex, updated.length, digests.manifest);
}

/** Points the referrer of a changed blob at its new digest and size, re-hashing the referrer in turn. */
function repoint(files: LayoutFiles, tag: string, referrer: "index" | "manifest", oldHex: string, newHex: string, size: number, manifestHex: string | undefined): void {
  const text = referrer === "index" ? files.index : manifestHex === undefined ? undefined : files.blobs.get(manifestHex);
  if (!text) return;
  const json = parse(text);
  let updated: Buffer;
  if (json === undefined) {
    updated = Buffer.from(text.toString("utf8").replaceAll(oldHex, newHex)); // unparsable by an earlier edit: the digest text at least
  } else {
    visit(json, (node) => {
      if (isObject(node) && node.digest === `sha256:${oldHex}`) {
        node.digest = `sha256:${newHex}`;
        node.size = size;
      }
    });
    updated = Buffer.from(JSON.stringify(json));
  }
  if (referrer === "index") {
    files.index = updated;
    return;
  }
  const manifestNew = sha256(updated);
  files.blobs.set(manifestNew, updated);
  repoint(files, tag, "index", manifestHex!, manifestNew, updated.length, undefined);
}

function visit(node: Json, fn: (node: Json) => void): void {
  fn(node);
  if (Array.isArray(node)) node.forEach((n) => visit(n, fn));
  else if (isObject(node)) Object.values(node).forEach((n) => visit(n, fn));
}

/** The changed bytes, or undefined for a removed file. */
function change(bytes: Buffer, c: Change): Buffer | undefined {
  switch (c.kind) {
    case "remove":
      return undefined;
    case "resize": {
      const out = Buffer.alloc(c.length);
      bytes.copy(out, 0, 0, Math.min(c.length, bytes.length));
      return out;
    }
    case "bytes": {
      const out = Buffer.from(bytes);
      c.bytes.forEach((b, i) => {
        if (c.at + i < out.length) out[c.at + i] = b;
      });
      return out;
    }
    case "json": {
      const json = parse(bytes);
      if (json === undefined) return bytes;
      return Buffer.from(editJson(json, c));
    }
  }
}

function editJson(root: Json, c: Extract<Change, { kind: "json" }>): string {
  if (c.path.length === 0) return c.action === "set" ? jsonText(c.value!) : JSON.stringify(root);
  let parent: Json = root;
  for (const key of c.path.slice(0, -1)) {
    const next: Json | undefined = Array.isArray(parent) ? parent[key as number] : isObject(parent) ? parent[key as string] : undefined;
    if (next === undefined) return JSON.stringify(root);
    parent = next;
  }
  const last = c.path[c.path.length - 1]!;
  if (typeof parent !== "object" || parent === null) return JSON.stringify(root);
  const holder = parent as Record<string | number, Json>;
  const marker = "\u0000FUZZ\u0000";
  if (c.action === "delete") {
    if (Array.isArray(parent) && typeof last === "number") parent.splice(last, 1);
    else delete holder[last];
    return JSON.stringify(root);
  }
  // The value goes in as text (it may be deep or not JSON-representable): a marker string is replaced by it.
  holder[c.action === "add" ? `x-fuzz-${String(last)}` : last] = marker;
  return JSON.stringify(root).replace(JSON.stringify(marker), jsonText(c.value!));
}

/** Text of a named JSON value. */
export function jsonText(v: JsonValue): string {
  const n = v.n ?? 0;
  switch (v.name) {
    case "deepArray": return "[".repeat(n) + "]".repeat(n);
    case "deepObject": return '{"a":'.repeat(n) + "0" + "}".repeat(n);
    case "hugeString": return JSON.stringify("s".repeat(n));
    case "number": return String(n);
    case "bigNumber": return "1" + "0".repeat(n);
    case "hexString": return JSON.stringify(`0x${n.toString(16)}`);
    case "hugeHex": return JSON.stringify(`0x${"f".repeat(Math.max(1, n))}`);
    case "digestLike": return JSON.stringify(`sha256:${"0".repeat(n)}`);
    case "pathLike": return JSON.stringify("../".repeat(n) + "etc/passwd");
    default: return v.name; // literal JSON text: null, true, [], {}, "", 1e308, -0, ...
  }
}

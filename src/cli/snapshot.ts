/** `vmlet snapshot create | ls | inspect | verify | squash | rm | gc`: a thin layer over Snapshot and SnapshotLayout. */
import path from "node:path";
import { formatSignature, type Signature } from "../abi/types.js";
import { SandboxBuilder } from "../sandbox/builder.js";
import { Sandbox } from "../sandbox/sandbox.js";
import { Snapshot } from "../snapshot/snapshot.js";
import { SnapshotMismatchError } from "../errors/errors.js";
import { SnapshotLayout } from "../snapshot/file/layout-tools.js";
import { SnapshotNotFoundError } from "../snapshot/file/errors.js";
import { readBlob, readEntry, readIndex } from "../snapshot/file/reader.js";
import { MAX_BYTES } from "../snapshot/file/format.js";
import { readFileSync, writeFileSync } from "node:fs";
import { checkRef, checkTag, expectPositionals, isDigestPrefix, parseArgs, parseMs, parseSize, stringFlag, UsageError, type ParsedArgs } from "./args.js";
import { formatBytes, formatDate, shortDigest, table } from "./format.js";
import type { Io } from "./io.js";
import { ProgressBar } from "./progress.js";
import { exportedFunctions } from "./guest-types.js";
import { findFunction, formatResult, jsonResult, parseCallArgs, type FunctionSignature } from "./values.js";

export const SNAPSHOT_USAGE: Readonly<Record<string, string>> = {
  create: `usage: vmlet snapshot create <guest.elf> <dir> <tag> [--call <fn> [arg…]]… [--heap-size N] [--base REF] [--timeout-ms N] [--json]
  Builds a sandbox from the guest ELF, runs the --call calls in order, takes a snapshot
  and saves it in the OCI layout <dir> (created if missing) under <tag>, replacing the
  tag if it exists. Prints the manifest digest.
  --call <fn> [arg…]  call a guest function first (repeatable); arguments follow its
                      signature: numbers, bigints, true/false, strings, bytes as hex or @file
  --heap-size N       guest heap, bytes or 64M / 1G (default 1M)
  --base REF          start from snapshot REF of <dir> (a tag or digest; made from the same
                      ELF) instead of a fresh build, and save only the pages the calls
                      changed: a diff layer over REF's layers
  --timeout-ms N      limit for each call`,
  ls: `usage: vmlet snapshot ls <dir> [--json]
  Lists the snapshots in the layout: tag, digest, memory layers, memory size, size, disk
  usage, guest, created.`,
  inspect: `usage: vmlet snapshot inspect <dir> <ref> [--json]
  Shows one snapshot's manifest and config: digests, sizes, its memory layer chain,
  versions, CPU, layout, guest functions, host functions it requires. <ref> is a tag or a manifest digest
  (sha256:<hex>, or a unique prefix of at least 4 hex digits).`,
  verify: `usage: vmlet snapshot verify <dir> [--json]
  Checks every blob's sha256 and every structural rule. Exit 1 if anything is wrong.`,
  "export-elf": `usage: vmlet snapshot export-elf <dir> <ref> -o <file> [--json]
  Writes the guest ELF a snapshot carries (it is a layer of the layout, its digest checked)
  to <file>, for gdb and other tools: a core dump of a sandbox made from the snapshot loads
  with it (docs/debugging.md).`,
  squash: `usage: vmlet snapshot squash <dir> <ref> <new-tag> [--json]
  Merges the memory layers of snapshot <ref> (a full layer and the diff layers over it)
  into one full layer and saves the result under <new-tag>; <ref> stays. Every layer is
  hashed as it is read. Prints the new manifest digest.`,
  rm: `usage: vmlet snapshot rm <dir> <tag> [--json]
  Removes a tag. Its blobs stay until \`vmlet snapshot gc\`.`,
  gc: `usage: vmlet snapshot gc <dir> [--json]
  Deletes blobs no tag reaches, and temp files of crashed writers. Only regular files
  are deleted; anything else in blobs/sha256 (a symlink, a directory) is left and named.`,
};

export const SNAPSHOT_SUMMARY = `usage: vmlet snapshot <command> …
  create <guest.elf> <dir> <tag> [--call <fn> [arg…]]… [--heap-size N] [--base REF]   build, call, save
  ls <dir>                  list snapshots
  inspect <dir> <ref>       show a snapshot's manifest and config
  verify <dir>              check every digest and structural rule
  squash <dir> <ref> <new-tag>   merge a chain of diff layers into one layer
  export-elf <dir> <ref> -o <file>   write the snapshot's guest ELF to a file
  rm <dir> <tag>            remove a tag (blobs stay until gc)
  gc <dir>                  delete unreferenced blobs
  Every command takes --json. \`vmlet help snapshot <command>\` for details.`;

const JSON_OPTION = { json: { type: "boolean" } } as const;
const EXPORT_SPEC = { options: { ...JSON_OPTION, output: { type: "string", short: "o" } } } as const;
const CREATE_SPEC = {
  options: { ...JSON_OPTION, "heap-size": { type: "string" }, "timeout-ms": { type: "string" }, base: { type: "string" } },
  calls: true,
  guestArguments: true,
} as const;

export async function snapshotCommand(argv: readonly string[], io: Io): Promise<number> {
  const sub = argv[0];
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    if (sub === undefined) throw new UsageError("missing snapshot command", SNAPSHOT_SUMMARY);
    io.out(argv[1] && SNAPSHOT_USAGE[argv[1]] ? SNAPSHOT_USAGE[argv[1]]! : SNAPSHOT_SUMMARY);
    return 0;
  }
  const usage = SNAPSHOT_USAGE[sub];
  if (usage === undefined) throw new UsageError(`unknown snapshot command "${sub}"`, SNAPSHOT_SUMMARY);
  const args = parseArgs(argv.slice(1), sub === "create" ? CREATE_SPEC : sub === "export-elf" ? EXPORT_SPEC : { options: JSON_OPTION }, usage);
  if (args.help) {
    io.out(usage);
    return 0;
  }
  switch (sub) {
    case "create":
      return create(args, usage, io);
    case "ls":
      return ls(args, usage, io);
    case "inspect":
      return inspect(args, usage, io);
    case "verify":
      return verify(args, usage, io);
    case "rm":
      return rm(args, usage, io);
    case "squash":
      return squash(args, usage, io);
    case "export-elf":
      return exportElf(args, usage, io);
    default:
      return gc(args, usage, io);
  }
}

async function exportElf(args: ParsedArgs, usage: string, io: Io): Promise<number> {
  const [dir, refText] = expectPositionals(args, ["dir", "ref"], usage) as [string, string];
  const output = stringFlag(args, "output");
  if (output === undefined) throw new UsageError("missing -o <file>", usage);
  const ref = resolveRef(dir, refText);
  const entry = readEntry(dir, readIndex(dir), ref);
  const elf = readBlob(dir, entry.guestElf, MAX_BYTES.guestElf); // its sha256 is checked as it is read
  writeFileSync(output, elf);
  if (io.json) io.printJson({ dir, ref: refText, file: path.resolve(output), bytes: elf.length, digest: entry.guestElf.digest });
  else io.out(path.resolve(output));
  return 0;
}

/** The guest file's bytes, or undefined if it cannot be read (the builder then says why, with its usual error). */
function readGuest(file: string): Uint8Array | undefined {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

/** Each --call's function and arguments, from the ELF's export table; undefined if the file is unreadable or no guest. */
function planCalls(guest: Uint8Array | undefined, calls: ParsedArgs["calls"]): FunctionSignature[] | undefined {
  if (!guest) return undefined;
  let signatures: string[];
  try {
    signatures = exportedFunctions(guest).map((f) => formatSignature(f.name, f));
  } catch {
    return undefined; // not a guest the export reader understands: building it says what is wrong
  }
  return calls.map((request) => {
    const fn = findFunction(signatures, request.fn);
    parseCallArgs(fn, request.args);
    return fn;
  });
}

async function create(args: ParsedArgs, usage: string, io: Io): Promise<number> {
  const [elf, dir, tag] = expectPositionals(args, ["guest.elf", "dir", "tag"], usage) as [string, string, string];
  checkTag(tag, usage);
  const heap = stringFlag(args, "heap-size");
  const baseText = stringFlag(args, "base");
  if (baseText !== undefined && heap !== undefined) throw new UsageError("--heap-size does not apply with --base (the base fixes the memory layout)", usage);
  const base = baseText === undefined ? undefined : resolveRef(dir, checkRef(baseText, usage));
  const timeout = stringFlag(args, "timeout-ms");
  const timeoutMs = timeout === undefined ? undefined : parseMs(timeout, "--timeout-ms", usage);
  const heapSize = heap === undefined ? undefined : parseSize(heap, "--heap-size", usage);
  const guest = readGuest(elf);
  // Every --call is checked against the ELF's export table before a sandbox is built.
  const planned = planCalls(guest, args.calls);
  let sb: Sandbox | undefined;
  try {
    sb = base === undefined ? await buildFresh(guest ?? elf, heapSize) : await Sandbox.fromSnapshot(await loadBase(elf, guest, dir, base));
    const calls: Array<{ function: string; signature: string; args: string[]; result: ReturnType<typeof jsonResult>; type: string }> = [];
    for (const [i, request] of args.calls.entries()) {
      const fn = planned?.[i] ?? findFunction(sb.functions, request.fn);
      const values = parseCallArgs(fn, request.args);
      const result = await sb.call(fn.name, ...values, ...(timeoutMs === undefined ? [] : [{ timeoutMs }])).catch((error: unknown) => {
        io.err(`vmlet: --call ${fn.name} failed; nothing was saved`);
        throw error;
      });
      calls.push({ function: fn.name, signature: fn.text, args: request.args, result: jsonResult(result, fn.returns), type: fn.returns });
      if (!io.json) io.err(`${fn.name}(${request.args.join(", ")}) = ${formatResult(result, fn.returns) ?? "(void)"}`);
    }
    const snap = sb.snapshot();
    const bar = new ProgressBar(`saving ${tag}`, io.stderr, { enabled: !io.json });
    let digest: string;
    try {
      digest = await snap.save(dir, tag, { guestName: path.basename(elf), onProgress: bar.update, ...(base === undefined ? {} : { base }) });
    } finally {
      bar.finish();
    }
    if (io.json) {
      io.printJson({ dir, tag, digest, guest: path.basename(elf), memorySize: snap.memorySize, generation: snap.generation, base: base ?? null, calls });
    } else {
      io.out(digest);
      io.err(`saved ${dir}:${tag} (${path.basename(elf)}, ${formatBytes(snap.memorySize)} memory${base === undefined ? "" : `, a diff over ${baseText}`})`);
    }
    return 0;
  } finally {
    sb?.close();
  }
}

function buildFresh(guest: string | Uint8Array, heapSize: number | undefined): Promise<Sandbox> {
  const builder = new SandboxBuilder().guest(guest);
  if (heapSize !== undefined) builder.heapSize(heapSize);
  return builder.build();
}

/** The base snapshot of `create --base`: it must carry the same guest ELF as the one named. */
async function loadBase(elf: string, guest: Uint8Array | undefined, dir: string, ref: string): Promise<Snapshot> {
  const base = await Snapshot.load(dir, ref);
  if (!Buffer.from(base.guestElf).equals(guest ?? readFileSync(elf))) throw new SnapshotMismatchError(`--base ${ref} was made from another guest ELF than ${elf}`);
  return base;
}

async function squash(args: ParsedArgs, usage: string, io: Io): Promise<number> {
  const [dir, refText, tag] = expectPositionals(args, ["dir", "ref", "new-tag"], usage) as [string, string, string];
  const ref = resolveRef(dir, checkRef(refText, usage));
  checkTag(tag, usage);
  const bar = new ProgressBar(`squashing ${refText}`, io.stderr, { enabled: !io.json });
  let digest: string;
  try {
    digest = await new SnapshotLayout(dir).squash(ref, tag, { onProgress: bar.update });
  } finally {
    bar.finish();
  }
  if (io.json) io.printJson({ dir, ref: refText, tag, digest });
  else {
    io.out(digest);
    io.err(`saved ${dir}:${tag}: ${refText} in one memory layer`);
  }
  return 0;
}

/** Lists what it can read; unreadable manifests go to stderr (or "problems") and make the exit status 1. */
function ls(args: ParsedArgs, usage: string, io: Io): number {
  const [dir] = expectPositionals(args, ["dir"], usage) as [string];
  const { snapshots, problems } = new SnapshotLayout(dir).scan();
  const status = problems.length ? 1 : 0;
  if (io.json) {
    io.printJson({
      dir,
      snapshots: snapshots.map((s) => ({
        tag: s.tag ?? null, digest: s.digest, created: s.created, guest: s.guest ?? null, memorySize: s.memorySize, size: s.size,
        memoryDiskBytes: s.memoryDiskBytes, memoryLayers: s.memoryLayers, generation: s.generation, vmletVersion: s.vmletVersion,
      })),
      problems: problems.map((p) => ({ ref: p.ref, code: p.error.code, message: p.error.message })),
    });
    return status;
  }
  const rows = snapshots.map((s) => [s.tag ?? "<none>", shortDigest(s.digest), String(s.memoryLayers), formatBytes(s.memorySize), formatBytes(s.size), formatBytes(s.memoryDiskBytes), s.guest ?? "-", formatDate(s.created)]);
  for (const line of table(["TAG", "DIGEST", "LAYERS", "MEMORY", "SIZE", "DISK", "GUEST", "CREATED"], rows)) io.out(line);
  for (const p of problems) io.err(`vmlet: ${p.ref}: ${p.error.code}: ${p.error.message}`);
  return status;
}

function inspect(args: ParsedArgs, usage: string, io: Io): number {
  const [dir, refText] = expectPositionals(args, ["dir", "ref"], usage) as [string, string];
  const ref = resolveRef(dir, checkRef(refText, usage));
  const i = new SnapshotLayout(dir).inspect(ref);
  const c = i.config;
  const { memoryDiskBytes, size } = i;
  const blob = (d: { mediaType: string; digest: string; size: number }): { mediaType: string; digest: string; size: number } => ({ mediaType: d.mediaType, digest: d.digest, size: d.size });
  const guest = i.annotations["dev.vmlet.snapshot.guest"];
  const signatures = (list: ReadonlyArray<{ name: string } & Signature>): string[] => list.map((f) => formatSignature(f.name, f));
  if (io.json) {
    io.printJson({
      dir,
      tag: i.tag ?? null,
      digest: i.descriptor.digest,
      created: c.created,
      guest: guest ?? null,
      vmletVersion: c.vmletVersion,
      formatVersion: c.formatVersion,
      abiVersion: c.abiVersion,
      arch: c.arch,
      takenBy: { name: c.takenBy.name, flavour: c.takenBy.flavour },
      guestCpu: { vendor: c.guestCpu.vendor, features: [...c.guestCpu.features] },
      lineage: c.lineage,
      generation: c.generation,
      maxGuestLogLevel: c.maxGuestLogLevel,
      memorySize: c.layout.memorySize,
      size,
      memoryDiskBytes,
      blobs: { manifest: blob(i.descriptor), config: blob(i.blobs.config), memory: blob(i.memoryLayers[0]!.descriptor), guestElf: blob(i.blobs.guestElf) },
      memoryLayers: i.memoryLayers.map((l) => ({ ...blob(l.descriptor), kind: l.kind, pages: l.pages ?? null, diskBytes: l.diskBytes })),
      functions: c.functions.map((f) => ({ name: f.name, index: f.index, params: [...f.params], returns: f.returns, signature: formatSignature(f.name, f) })),
      hostFunctions: c.hostFunctions.map((f) => ({ name: f.name, params: [...f.params], returns: f.returns, signature: formatSignature(f.name, f) })),
      layout: c.layout,
      layoutTable: i.layoutTable,
      annotations: i.annotations,
    });
    return 0;
  }
  const field = (name: string, value: string): void => io.out(`${name.padEnd(14)}${value}`);
  field("tag", i.tag ?? "<none>");
  field("digest", i.descriptor.digest);
  field("created", formatDate(c.created));
  field("guest", guest ?? "-");
  field("vmlet", `${c.vmletVersion} (snapshot format ${c.formatVersion}, ABI ${c.abiVersion}, ${c.arch})`);
  field("taken by", `${c.takenBy.name} (${c.takenBy.flavour})`);
  field("guest CPU", `${c.guestCpu.vendor || "-"}; ${c.guestCpu.features.length} features: ${c.guestCpu.features.join(" ")}`);
  field("lineage", c.lineage);
  field("generation", String(c.generation));
  field("log level", c.maxGuestLogLevel);
  field("memory", `${formatBytes(c.layout.memorySize)} (${formatBytes(memoryDiskBytes)} on disk)`);
  field("size", `${formatBytes(size)} (${size} bytes in ${3 + i.memoryLayers.length} blobs)`);
  io.out("");
  io.out("blobs");
  for (const line of table(
    ["  KIND", "DIGEST", "SIZE", "MEDIA TYPE"],
    [
      ["  manifest", i.descriptor.digest, String(i.descriptor.size), i.descriptor.mediaType],
      ["  config", i.blobs.config.digest, String(i.blobs.config.size), i.blobs.config.mediaType],
      ["  guest ELF", i.blobs.guestElf.digest, String(i.blobs.guestElf.size), i.blobs.guestElf.mediaType],
    ],
  )) io.out(line);
  io.out("");
  io.out(`memory layers (${i.memoryLayers.length}, bottom first)`);
  for (const line of table(
    ["  #", "KIND", "PAGES", "SIZE", "DISK", "DIGEST"],
    i.memoryLayers.map((l, n) => [`  ${n}`, l.kind, l.pages === undefined ? "-" : String(l.pages), formatBytes(l.descriptor.size), formatBytes(l.diskBytes), l.descriptor.digest]),
  )) io.out(line);
  io.out("");
  io.out(`guest functions (${c.functions.length})`);
  for (const s of signatures(c.functions)) io.out(`  ${s}`);
  io.out("");
  io.out(`host functions required (${c.hostFunctions.length})${c.hostFunctions.length === 0 ? ": none" : ""}`);
  for (const s of signatures(c.hostFunctions)) io.out(`  ${s}`);
  io.out("");
  io.out("memory layout");
  for (const line of i.layoutTable.split("\n")) io.out(`  ${line}`);
  return 0;
}

async function verify(args: ParsedArgs, usage: string, io: Io): Promise<number> {
  const [dir] = expectPositionals(args, ["dir"], usage) as [string];
  const bar = new ProgressBar("verifying", io.stderr, { enabled: !io.json });
  let report;
  try {
    report = await new SnapshotLayout(dir).verify({ onProgress: bar.update });
  } finally {
    bar.finish();
  }
  const only = report.problems[0];
  if (report.problems.length === 1 && only!.ref === "index" && only!.error.code === "SNAPSHOT_NOT_FOUND") throw only!.error; // no layout at all
  const problems = report.problems.map((p) => ({ ref: p.ref, code: p.error.code, message: p.error.message }));
  if (io.json) {
    io.printJson({ dir, ok: report.ok, snapshots: report.snapshots, blobsVerified: report.blobsVerified, problems });
  } else {
    for (const p of problems) io.out(`${p.ref}: ${p.code}: ${p.message}`);
    const counts = `${report.snapshots} snapshot${report.snapshots === 1 ? "" : "s"}, ${report.blobsVerified} blob${report.blobsVerified === 1 ? "" : "s"} verified`;
    io.out(report.ok ? `ok: ${counts}` : `FAILED: ${problems.length} problem${problems.length === 1 ? "" : "s"} (${counts})`);
  }
  return report.ok ? 0 : 1;
}

async function rm(args: ParsedArgs, usage: string, io: Io): Promise<number> {
  const [dir, tag] = expectPositionals(args, ["dir", "tag"], usage) as [string, string];
  if (/^sha256:/.test(tag)) throw new UsageError(`rm takes a tag, not a digest ("${tag}")`, usage);
  checkTag(tag, usage);
  if (!(await new SnapshotLayout(dir).remove(tag))) throw new SnapshotNotFoundError(dir, tag, `no tag "${tag}" in ${dir}`);
  if (io.json) io.printJson({ dir, tag, removed: true });
  else io.out(`removed ${dir}:${tag} (its blobs stay until \`vmlet snapshot gc ${dir}\`)`);
  return 0;
}

async function gc(args: ParsedArgs, usage: string, io: Io): Promise<number> {
  const [dir] = expectPositionals(args, ["dir"], usage) as [string];
  const report = await new SnapshotLayout(dir).gc();
  if (io.json) {
    io.printJson({
      dir, removedBlobs: report.removedBlobs, removedBlobCount: report.removedBlobs.length, freedBytes: report.freedBytes, removedTempFiles: report.removedTempFiles,
      skipped: report.skipped,
    });
  } else {
    for (const entry of report.skipped) io.err(`vmlet: left ${entry} in place: not a regular file`);
    const n = report.removedBlobs.length;
    const temps = report.removedTempFiles > 0 ? ` and ${report.removedTempFiles} temp file${report.removedTempFiles === 1 ? "" : "s"}` : "";
    io.out(`removed ${n} blob${n === 1 ? "" : "s"}${temps}, freed ${formatBytes(report.freedBytes)}`);
  }
  return 0;
}

/** A digest prefix ("sha256:ab12…") resolved to the one manifest digest it starts; tags and full digests pass through. */
export function resolveRef(dir: string, ref: string): string {
  if (!isDigestPrefix(ref)) return ref;
  const digests = [...new Set(readIndex(dir).manifests.map((d) => d.digest).filter((d) => d.startsWith(ref)))];
  if (digests.length === 0) throw new SnapshotNotFoundError(dir, ref, `no snapshot with a digest starting ${ref} in ${dir}`);
  if (digests.length > 1) throw new SnapshotNotFoundError(dir, ref, `${ref} is ambiguous in ${dir}: ${digests.map(shortDigest).join(", ")}`);
  return digests[0]!;
}


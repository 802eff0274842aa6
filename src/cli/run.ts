/** `vmlet run <dir>:<ref> <fn> [arg…]`: one call in a sandbox resumed from a saved snapshot. */
import { formatSignature, type GuestValue } from "../abi/types.js";
import { Sandbox } from "../sandbox/sandbox.js";
import { writeFileSync } from "node:fs";
import { HostFunctionRegistry } from "../sandbox/host-functions.js";
import { requireSuperset } from "../snapshot/host-function-rules.js";
import { SnapshotTooLargeError, StorageError } from "../snapshot/file/errors.js";
import { DEFAULT_MAX_MEMORY_SIZE } from "../snapshot/file/load.js";
import { readEntry, readIndex } from "../snapshot/file/reader.js";
import { Snapshot } from "../snapshot/snapshot.js";
import { parseArgs, parseMs, parseSize, splitDirRef, stringFlag, UsageError } from "./args.js";
import type { Io } from "./io.js";
import { ProgressBar } from "./progress.js";
import { resolveRef } from "./snapshot.js";
import { findFunction, formatResult, jsonResult, parseCallArgs, type FunctionSignature } from "./values.js";

export const RUN_USAGE = `usage: vmlet run <dir>:<ref> <fn> [arg…] [--json] [--timeout-ms N] [--cpu-time-ms N] [--verify] [--max-memory N] [--core-dump DIR] [--mem-profile FILE]
  Loads snapshot <ref> (a tag, or a manifest digest sha256:<hex> or a unique prefix of it)
  from the OCI layout <dir>, resumes a sandbox from it and calls <fn> with the arguments,
  converted by the function's signature: i32/u32/f32/f64 numbers, i64/u64 integers,
  true/false, strings as they are, bytes as hex or @file. Prints the result (bigints in
  decimal, bytes as hex). Put -- before arguments that start with - (negative numbers
  need not). No host functions can be registered from the command line: a snapshot that
  requires some fails with HOST_FUNCTIONS_INCOMPATIBLE.
  --timeout-ms N   limit for the call (wall clock; TIMEOUT)
  --cpu-time-ms N  limit on the guest's CPU time for the call (CPU_TIME_LIMIT)
  --verify         hash every blob (the memory image too) before resuming
  --max-memory N   refuse a snapshot with more guest memory than N (bytes, or 512M / 8G;
                   default 4G): the snapshot does not get to decide what the host maps
  --core-dump DIR  if the guest faults or aborts, write an ELF core dump there (with the
                   guest ELF from the layout next to it: gdb <core>.elf <core>)
  --mem-profile FILE  after the call (also a failed one), write the guest's heap profile
                   (gzipped pprof) to FILE; the guest must be built with VMLET_PROFILE=1`;

const RUN_SPEC = {
  options: { json: { type: "boolean" }, "timeout-ms": { type: "string" }, "cpu-time-ms": { type: "string" }, verify: { type: "boolean" }, "max-memory": { type: "string" }, "core-dump": { type: "string" }, "mem-profile": { type: "string" } },
  guestArguments: true,
} as const;

export async function runCommand(argv: readonly string[], io: Io): Promise<number> {
  const args = parseArgs(argv, RUN_SPEC, RUN_USAGE);
  if (args.help) {
    io.out(RUN_USAGE);
    return 0;
  }
  const [target, fnName, ...texts] = args.positionals;
  if (target === undefined) throw new UsageError("missing <dir>:<ref>", RUN_USAGE);
  if (fnName === undefined) throw new UsageError("missing <fn>", RUN_USAGE);
  const { dir, ref: refText } = splitDirRef(target, RUN_USAGE);
  const timeout = stringFlag(args, "timeout-ms");
  const timeoutMs = timeout === undefined ? undefined : parseMs(timeout, "--timeout-ms", RUN_USAGE);
  const cpu = stringFlag(args, "cpu-time-ms");
  const cpuTimeMs = cpu === undefined ? undefined : parseMs(cpu, "--cpu-time-ms", RUN_USAGE);
  const memory = stringFlag(args, "max-memory");
  const limit = memory === undefined ? {} : { maxMemorySize: parsePositiveSize(memory, "--max-memory") };
  const ref = resolveRef(dir, refText);
  const { fn, values, hostFunctions } = planCall(dir, ref, fnName, texts, limit.maxMemorySize ?? DEFAULT_MAX_MEMORY_SIZE);
  const snapshot = await loadSnapshot(dir, ref, args.flags.has("verify"), limit, io);
  // After the load's own checks: an invalid snapshot says so before it says what it needs.
  requireSuperset(hostFunctions, new HostFunctionRegistry(), "Sandbox.fromSnapshot()");
  const coreDumpDir = stringFlag(args, "core-dump");
  const sb = await Sandbox.fromSnapshot(snapshot, {
    ...(timeoutMs === undefined ? {} : { timeoutMs }), ...(cpuTimeMs === undefined ? {} : { cpuTimeMs }), ...(coreDumpDir === undefined ? {} : { coreDumpDir }),
  });
  const profileFile = stringFlag(args, "mem-profile");
  try {
    const result = await sb.call(fn.name, ...values).catch((error: unknown) => {
      if (profileFile !== undefined) writeProfileAfterFailure(sb, profileFile, io);
      throw error;
    });
    if (profileFile !== undefined) writeProfile(sb, profileFile);
    if (io.json) {
      io.printJson({ dir, ref: refText, function: fn.name, signature: fn.text, type: fn.returns, result: jsonResult(result, fn.returns) });
    } else {
      const text = formatResult(result, fn.returns);
      if (text !== undefined) io.out(text);
    }
    return 0;
  } finally {
    sb.close();
  }
}

/** After a failed call the call's error is what the user needs: a profile that cannot be written is only mentioned. */
function writeProfileAfterFailure(sb: Sandbox, file: string, io: Io): void {
  try {
    writeProfile(sb, file);
  } catch (error) {
    io.err(`vmlet: no memory profile written: ${(error as Error).message}`);
  }
}

function writeProfile(sb: Sandbox, file: string): void {
  const profile = sb.memoryProfile();
  try {
    writeFileSync(file, profile);
  } catch (error) {
    throw new StorageError(file, (error as NodeJS.ErrnoException).code, `cannot write the memory profile: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Everything that can be checked from the manifest and config alone, before a backend is
 * touched, in the order Snapshot.load would find it: the memory is within the limit, the
 * function exists and the arguments fit it. So a typo is UNKNOWN_FUNCTION on any machine.
 * Whether the snapshot needs host functions (the command line registers none) is checked
 * after the load, whose checks of the snapshot itself come first.
 */
function planCall(dir: string, ref: string, fnName: string, texts: readonly string[], maxMemorySize: number): { fn: FunctionSignature; values: GuestValue[]; hostFunctions: Parameters<typeof requireSuperset>[0] } {
  const { state } = readEntry(dir, readIndex(dir), ref);
  if (state.layout.memorySize > maxMemorySize) throw new SnapshotTooLargeError(ref, state.layout.memorySize, maxMemorySize);
  const fn = findFunction(state.functions.map((f) => formatSignature(f.name, f)), fnName);
  const values = parseCallArgs(fn, texts);
  return { fn, values, hostFunctions: state.hostFunctions };
}

async function loadSnapshot(dir: string, ref: string, verify: boolean, limit: { maxMemorySize?: number }, io: Io): Promise<Snapshot> {
  if (!verify) return Snapshot.load(dir, ref, limit);
  const bar = new ProgressBar("verifying", io.stderr, { enabled: !io.json });
  try {
    return await Snapshot.checkedLoad(dir, ref, { onProgress: bar.update, ...limit });
  } finally {
    bar.finish();
  }
}

function parsePositiveSize(text: string, option: string): number {
  const bytes = parseSize(text, option, RUN_USAGE);
  if (bytes === 0) throw new UsageError(`${option} must be more than 0`, RUN_USAGE);
  return bytes;
}

/** `vmlet run <dir>:<ref> <fn> [arg…]`: one call in a sandbox resumed from a saved snapshot. */
import { Sandbox } from "../sandbox/sandbox.js";
import { Snapshot } from "../snapshot/snapshot.js";
import { parseArgs, parseMs, parseSize, splitDirRef, UsageError } from "./args.js";
import type { Io } from "./io.js";
import { ProgressBar } from "./progress.js";
import { resolveRef } from "./snapshot.js";
import { findFunction, formatResult, jsonResult, parseCallArgs } from "./values.js";

export const RUN_USAGE = `usage: vmlet run <dir>:<ref> <fn> [arg…] [--json] [--timeout-ms N] [--verify] [--max-memory N]
  Loads snapshot <ref> (a tag, or a manifest digest sha256:<hex> or a unique prefix of it)
  from the OCI layout <dir>, resumes a sandbox from it and calls <fn> with the arguments,
  converted by the function's signature: i32/u32/f32/f64 numbers, i64/u64 integers,
  true/false, strings as they are, bytes as hex or @file. Prints the result (bigints in
  decimal, bytes as hex). Put -- before arguments that look like options.
  No host functions can be registered from the command line: a snapshot that requires
  some fails with HOST_FUNCTIONS_INCOMPATIBLE.
  --timeout-ms N   limit for the call
  --verify         hash every blob (the memory image too) before resuming
  --max-memory N   refuse a snapshot with more guest memory than N (bytes, or 512M / 8G;
                   default 4G): the snapshot does not get to decide what the host maps`;

export async function runCommand(argv: readonly string[], io: Io): Promise<number> {
  const args = parseArgs(argv, { flags: { json: "boolean", "timeout-ms": "value", verify: "boolean", "max-memory": "value" } }, RUN_USAGE);
  if (args.help) {
    io.out(RUN_USAGE);
    return 0;
  }
  const [target, fnName, ...texts] = args.positionals;
  if (target === undefined) throw new UsageError("missing <dir>:<ref>", RUN_USAGE);
  if (fnName === undefined) throw new UsageError("missing <fn>", RUN_USAGE);
  const { dir, ref: refText } = splitDirRef(target, RUN_USAGE);
  const timeout = args.flags.get("timeout-ms");
  const timeoutMs = typeof timeout === "string" ? parseMs(timeout, "--timeout-ms", RUN_USAGE) : undefined;
  const memory = args.flags.get("max-memory");
  const limit = typeof memory === "string" ? { maxMemorySize: parsePositiveSize(memory, "--max-memory") } : {};
  const ref = resolveRef(dir, refText);
  let snapshot: Snapshot;
  if (args.flags.has("verify")) {
    const bar = new ProgressBar("verifying", io.stderr, { enabled: !io.json });
    try {
      snapshot = await Snapshot.checkedLoad(dir, ref, { onProgress: bar.update, ...limit });
    } finally {
      bar.finish();
    }
  } else {
    snapshot = await Snapshot.load(dir, ref, limit);
  }
  const fn = findFunction(snapshot.functions, fnName);
  const values = parseCallArgs(fn, texts);
  const sb = await Sandbox.fromSnapshot(snapshot, timeoutMs === undefined ? {} : { timeoutMs });
  try {
    const result = await sb.call(fn.name, ...values);
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

function parsePositiveSize(text: string, option: string): number {
  const bytes = parseSize(text, option, RUN_USAGE);
  if (bytes === 0) throw new UsageError(`${option} must be more than 0`, RUN_USAGE);
  return bytes;
}

/**
 * The vmlet command line: a thin layer over the library. Exit codes: 0 success, 1 a
 * failure (a vmlet error, printed as `vmlet: <CODE>: <message>`; verify found problems),
 * 2 a usage mistake (printed with the command's usage). docs/cli.md describes it all.
 * main.ts runs it on the process's argv and streams; tests run it on an Io of their own.
 */
import { VmletError } from "../errors/errors.js";
import { CliFailure, UsageError } from "./args.js";
import { DEMO_USAGE, demoCommand } from "./demo.js";
import { DOCTOR_USAGE, doctorCommand } from "./doctor.js";
import { GUEST_SUMMARY, GUEST_USAGE, guestCommand } from "./guest.js";
import type { Io } from "./io.js";
import { RUN_USAGE, runCommand } from "./run.js";
import { SDK_PATH_USAGE, sdkPathCommand } from "./sdk-path.js";
import { SNAPSHOT_SUMMARY, SNAPSHOT_USAGE, snapshotCommand } from "./snapshot.js";
import { VMLET_VERSION } from "../version.js";

const USAGE = `usage: vmlet <command> [arguments] [--json]

commands:
  demo                            build the demo guest, call it, show a caught fault and latencies
  doctor                          check that this machine can run sandboxes (backends, KVM hints)
  guest new <dir>                 write a guest project to start from (C source, Makefile, call.mjs)
  guest build <source…> [-o guest.elf]
                                  compile and link a guest (C, C++) with the SDK that ships with vmlet
  guest types <guest.elf> [--name Guest]
                                  print a TypeScript interface of the guest's exports (for sb.typed<T>())
  sdk-path [--cflags|--ldflags|--libs]
                                  the guest SDK's folder, or its flags, for your own build system
  snapshot create <guest.elf> <dir> <tag> [--call <fn> [arg…]]… [--heap-size N]
                                  build a sandbox, run calls, save a snapshot; prints its digest
  snapshot ls <dir>               list the snapshots in an OCI layout directory
  snapshot inspect <dir> <ref>    a snapshot's digests, sizes, versions, CPU, layout, functions
  snapshot verify <dir>           check every digest and structural rule (exit 1 on a problem)
  snapshot rm <dir> <tag>         remove a tag (its blobs stay until gc)
  snapshot gc <dir>               delete blobs no tag reaches
  run <dir>:<ref> <fn> [arg…]     call a function in a sandbox resumed from a saved snapshot
  help [command]                  this text, or a command's details (also: <command> --help)
  --version                       print vmlet's version

--json (every command but demo; before or after the command): one JSON document on stdout
and nothing else.
<ref> is a tag or a manifest digest (sha256:<hex>, or a unique prefix of it).
Exit status: 0 ok, 1 failure, 2 usage mistake. Details: docs/cli.md`;

/** The usage text for `vmlet help <words…>`. */
function helpFor(words: readonly string[]): string | undefined {
  const [command, sub] = words;
  switch (command) {
    case undefined:
      return USAGE;
    case "run":
      return RUN_USAGE;
    case "demo":
      return DEMO_USAGE;
    case "doctor":
      return DOCTOR_USAGE;
    case "sdk-path":
      return SDK_PATH_USAGE;
    case "snapshot":
      return sub === undefined ? SNAPSHOT_SUMMARY : SNAPSHOT_USAGE[sub];
    case "guest":
      return sub === undefined ? GUEST_SUMMARY : GUEST_USAGE[sub];
    default:
      return undefined;
  }
}

async function main(argv: readonly string[], io: Io): Promise<number> {
  const rest = argv.slice(1);
  switch (argv[0]) {
    case "demo":
      return demoCommand(rest, io);
    case "doctor":
      return doctorCommand(rest, io);
    case "guest":
      return guestCommand(rest, io);
    case "sdk-path":
      return sdkPathCommand(rest, io);
    case "snapshot":
      return snapshotCommand(rest, io);
    case "run":
      return runCommand(rest, io);
    case "--version":
      if (io.json) io.printJson({ version: VMLET_VERSION });
      else io.out(VMLET_VERSION);
      return 0;
    case "help":
    case "--help":
    case "-h": {
      const text = helpFor(rest);
      if (text === undefined) throw new UsageError(`no command "${rest.join(" ")}"`, USAGE);
      io.out(text);
      return 0;
    }
    case undefined:
      throw new UsageError("missing command", USAGE);
    default:
      throw new UsageError(argv[0].startsWith("-") ? `unknown option ${argv[0]} (options follow the command)` : `unknown command "${argv[0]}"`, USAGE);
  }
}

/** Prints an error the way the CLI promises and returns the exit code. */
function report(error: unknown, io: Io): number {
  if (error instanceof UsageError) {
    io.err(`vmlet: ${error.message}`);
    if (error.usage) io.err(`\n${error.usage}`);
    if (io.json) io.printJson({ error: { code: "USAGE", message: error.message } });
    return 2;
  }
  if (error instanceof VmletError || error instanceof CliFailure) {
    io.err(`vmlet: ${error.code}: ${error.message}`);
    if (io.json) io.printJson({ error: { code: error.code, message: error.message } });
    return 1;
  }
  // Not an expected failure: a bug, so the stack helps.
  io.err(`vmlet: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  if (io.json) io.printJson({ error: { code: "INTERNAL", message: error instanceof Error ? error.message : String(error) } });
  return 1;
}

/** --json anywhere before a `--` selects JSON output (also for errors). */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf("--");
  return (end < 0 ? argv : argv.slice(0, end)).includes("--json");
}

/**
 * `vmlet --json <command> …` means `vmlet <command> … --json`: the global flag moves behind
 * the command's own arguments (before a `--`, after which everything is a guest argument).
 */
export function withGlobalJsonLast(argv: readonly string[]): readonly string[] {
  let leading = 0;
  while (argv[leading] === "--json") leading++;
  if (leading === 0 || leading === argv.length) return argv;
  const rest = argv.slice(leading);
  const end = rest.indexOf("--");
  return end < 0 ? [...rest, "--json"] : [...rest.slice(0, end), "--json", ...rest.slice(end)];
}

/** Runs one command line and returns its exit status; errors are printed, never thrown. */
export async function runCli(argv: readonly string[], io: Io): Promise<number> {
  try {
    return await main(withGlobalJsonLast(argv), io);
  } catch (error) {
    return report(error, io);
  }
}

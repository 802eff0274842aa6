/**
 * `vmlet guest build <source…> [-o guest.elf]`: compiles C and C++ sources with the SDK's
 * flags and links them with its prebuilt start-up object and library. Objects go to a
 * temporary folder; nothing is written into the package.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { CliFailure, UsageError } from "./args.js";
import { cFlags, compilerIncludeDir, compilerMissing, cxxFlags, installedGuestSdk, ldFlags, libs, type Compilers } from "./guest-flags.js";

export interface GuestBuild {
  readonly sources: readonly string[];
  readonly output: string;
  readonly includeDirs: readonly string[];
  readonly defines: readonly string[];
  readonly compilers: Compilers;
  /** Called with each compiler command before it runs (-v). */
  readonly onCommand?: (command: readonly string[]) => void;
}

type SourceKind = "c" | "c++" | "asm" | "object";

const KINDS: ReadonlyArray<readonly [RegExp, SourceKind]> = [
  [/\.c$/, "c"],
  [/\.(cc|cpp|cxx|C)$/, "c++"],
  [/\.S$/, "asm"],
  [/\.(o|a)$/, "object"],
];

/** What a file is, by its name; anything else is a usage mistake. */
export function sourceKind(file: string, usage: string): SourceKind {
  const kind = KINDS.find(([pattern]) => pattern.test(file))?.[1];
  if (kind === undefined) throw new UsageError(`${file}: not a source vmlet can build (.c; .cc, .cpp, .cxx for C++; .S; .o and .a are linked as they are)`, usage);
  return kind;
}

/** Compiles every source, links the guest, and returns the commands it ran. */
export function buildGuest(build: GuestBuild, usage: string): string[][] {
  const kinds = build.sources.map((s) => sourceKind(s, usage));
  const sdk = installedGuestSdk();
  const { cc, cxx } = build.compilers;
  const include = compilerIncludeDir(cc);
  const extra = [...build.includeDirs.map((d) => `-I${d}`), ...build.defines.map((d) => `-D${d}`)];
  const work = mkdtempSync(path.join(tmpdir(), "vmlet-guest-build-"));
  const commands: string[][] = [];
  const run = (command: string[], what: string): void => {
    commands.push(command);
    runCompiler(command, what, build.onCommand);
  };
  try {
    const objects = build.sources.map((source, i) => {
      const kind = kinds[i]!;
      if (kind === "object") return source;
      const object = path.join(work, `${i}-${path.basename(source)}.o`);
      const flags = kind === "c++" ? [cxx, ...cxxFlags(sdk, include)] : [cc, ...cFlags(sdk, include)];
      run([...flags, ...extra, "-c", source, "-o", object], `compiling ${source}`);
      return object;
    });
    mkdirSync(path.dirname(path.resolve(build.output)), { recursive: true });
    run([cc, ...ldFlags(sdk), "-o", build.output, ...objects, ...libs(sdk)], `linking ${build.output}`);
    return commands;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Runs one compiler command; its messages go to stderr as they are (stdout may carry --json). */
function runCompiler(command: readonly string[], what: string, onCommand?: (command: readonly string[]) => void): void {
  onCommand?.(command);
  const [program, ...args] = command as [string, ...string[]];
  const r = spawnSync(program, args, { stdio: ["ignore", 2, 2] });
  if (r.error) throw compilerMissing(program, r.error);
  if (r.status !== 0) throw new CliFailure(`${what} failed (${program} ${r.status === null ? `was killed by ${r.signal}` : `exited with status ${r.status}`})`, "BUILD_FAILED");
}

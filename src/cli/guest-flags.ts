/**
 * Where the guest SDK is inside the installed package, and the compiler and linker flags
 * a guest is built with. guest/sdk.mk holds the same flags for Make users; a test keeps
 * the two equal. Nothing here writes into the package: the SDK library ships prebuilt.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { CliFailure } from "./args.js";
import { packageRoot } from "./paths.js";

export interface GuestSdk {
  /** The SDK folder: include/, sdk.mk, link.ld, build/libvmlet.a, build/start.S.o. */
  readonly root: string;
  readonly include: string;
  readonly linkScript: string;
  readonly library: string;
  /** The entry point (_start) and the dispatch loop, linked first. */
  readonly startObject: string;
}

export interface Compilers {
  readonly cc: string;
  readonly cxx: string;
}

/** The compilers sdk.mk would use: GUEST_CC and GUEST_CXX from the environment, else gcc and g++. */
export function defaultCompilers(): Compilers {
  return { cc: process.env.GUEST_CC || "gcc", cxx: process.env.GUEST_CXX || "g++" };
}

export function guestSdk(): GuestSdk {
  const root = path.join(packageRoot, "guest");
  return {
    root,
    include: path.join(root, "include"),
    linkScript: path.join(root, "link.ld"),
    library: path.join(root, "build/libvmlet.a"),
    startObject: path.join(root, "build/start.S.o"),
  };
}

/** The SDK, after checking its prebuilt parts exist (they do not in a checkout before `npm run build`). */
export function installedGuestSdk(): GuestSdk {
  const sdk = guestSdk();
  for (const file of [sdk.library, sdk.startObject, sdk.linkScript, path.join(sdk.include, "vmlet.h")]) {
    if (!existsSync(file)) throw new CliFailure(`the guest SDK is incomplete: ${file} is missing (in a vmlet checkout, \`npm run build\` makes it)`, "SDK_MISSING");
  }
  return sdk;
}

const WARNINGS = ["-Wall", "-Wextra"];

/** Flags for C and C++ alike: freestanding, fixed-address, no system headers but the compiler's own. */
function commonFlags(sdk: GuestSdk, compilerInclude: string): string[] {
  return [
    "-O2", "-g", "-ffreestanding", "-fno-stack-protector", "-fno-pic", "-fno-pie", "-mno-red-zone",
    "-fno-asynchronous-unwind-tables", "-fno-builtin", "-nostdlib", "-nostdinc", "-isystem", compilerInclude,
    `-I${sdk.include}`, ...WARNINGS,
  ];
}

export const cFlags = (sdk: GuestSdk, compilerInclude: string): string[] => ["-std=gnu11", ...commonFlags(sdk, compilerInclude)];

/** C++ without exceptions, RTTI or thread-safe statics: nothing in a guest could support them. */
export const cxxFlags = (sdk: GuestSdk, compilerInclude: string): string[] =>
  ["-std=gnu++17", ...commonFlags(sdk, compilerInclude), "-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics"];

export const ldFlags = (sdk: GuestSdk): string[] => [
  "-nostdlib", "-static", "-no-pie", "-Wl,--build-id=none", `-Wl,-T,${sdk.linkScript}`, "-Wl,-z,noexecstack", "-Wl,-z,max-page-size=4096",
];

/** After the guest's own objects, in this order: the start-up object, the SDK library, libgcc. */
export const libs = (sdk: GuestSdk): string[] => [sdk.startObject, sdk.library, "-lgcc"];

/** The compiler's own header folder (stddef.h, stdint.h, …): `<cc> -print-file-name=include`. */
export function compilerIncludeDir(compiler: string): string {
  const r = spawnSync(compiler, ["-print-file-name=include"], { encoding: "utf8" });
  if (r.error || r.status !== 0) throw compilerMissing(compiler, r.error);
  return r.stdout.trim();
}

export function compilerMissing(compiler: string, error?: Error): CliFailure {
  const why = (error as NodeJS.ErrnoException | undefined)?.code === "ENOENT" ? "is not installed" : "does not run";
  return new CliFailure(`${compiler} ${why}: guests are built with gcc (C) and g++ (C++), e.g. \`apt install gcc g++\`; GUEST_CC/GUEST_CXX or --cc/--cxx choose others`, "COMPILER_NOT_FOUND");
}

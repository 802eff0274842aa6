/** `vmlet sdk-path`: where the guest SDK is, and its flags, for CMake, Meson, Make and other build systems. */
import { expectPositionals, parseArgs } from "./args.js";
import { cFlags, compilerIncludeDir, cxxFlags, defaultCompilers, installedGuestSdk, ldFlags, libs } from "./guest-flags.js";
import type { Io } from "./io.js";

export const SDK_PATH_USAGE = `usage: vmlet sdk-path [--cflags] [--cxxflags] [--ldflags] [--libs] [--json]
  Prints the guest SDK's folder inside the installed package (include/, sdk.mk, link.ld,
  build/libvmlet.a, build/start.S.o). With flags, prints those instead, on one line:
  --cflags     compiler flags for C sources (they name the compiler's include folder:
               GUEST_CC, else gcc)
  --cxxflags   compiler flags for C++ sources
  --ldflags    linker flags (before the objects)
  --libs       start-up object, SDK library and libgcc (after the objects)
  --json       all of it as one JSON document
  Make: VMLET_SDK := $(shell npx vmlet sdk-path), then include $(VMLET_SDK)/sdk.mk.`;

const SPEC = {
  options: { cflags: { type: "boolean" }, cxxflags: { type: "boolean" }, ldflags: { type: "boolean" }, libs: { type: "boolean" }, json: { type: "boolean" } },
} as const;

/** A word as a POSIX shell reads it back: quoted only when it must be. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function sdkPathCommand(argv: readonly string[], io: Io): number {
  const args = parseArgs(argv, SPEC, SDK_PATH_USAGE);
  if (args.help) {
    io.out(SDK_PATH_USAGE);
    return 0;
  }
  expectPositionals(args, [], SDK_PATH_USAGE);
  const sdk = installedGuestSdk();
  const compilers = defaultCompilers();
  const wanted = (["cflags", "cxxflags", "ldflags", "libs"] as const).filter((name) => args.flags.has(name));
  if (!io.json && wanted.length === 0) {
    io.out(sdk.root);
    return 0;
  }
  const include = io.json || args.flags.has("cflags") || args.flags.has("cxxflags") ? compilerIncludeDir(compilers.cc) : "";
  const flags = { cflags: () => cFlags(sdk, include), cxxflags: () => cxxFlags(sdk, include), ldflags: () => ldFlags(sdk), libs: () => libs(sdk) };
  if (io.json) {
    io.printJson({
      sdk: sdk.root, include: sdk.include, linkScript: sdk.linkScript, library: sdk.library, startObject: sdk.startObject, ...compilers,
      cflags: flags.cflags(), cxxflags: flags.cxxflags(), ldflags: flags.ldflags(), libs: flags.libs(),
    });
  } else {
    io.out(wanted.flatMap((name) => flags[name]()).map(shellWord).join(" "));
  }
  return 0;
}

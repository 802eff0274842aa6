/** `vmlet guest new | build`: start a guest project, and build guests with the SDK that ships with vmlet. */
import path from "node:path";
import { CliFailure, expectPositionals, parseArgs, stringFlag, UsageError, type CommandSpec } from "./args.js";
import { buildGuest } from "./guest-build.js";
import { defaultCompilers } from "./guest-flags.js";
import { scaffoldGuest } from "./guest-new.js";
import { exportedFunctions, guestDeclaration } from "./guest-types.js";
import { readFileSync } from "node:fs";
import type { Io } from "./io.js";

export const GUEST_USAGE: Readonly<Record<string, string>> = {
  new: `usage: vmlet guest new <dir> [--json]
  Writes a guest project into <dir> (created if missing): guest.c exporting add() and
  greet(), a Makefile that builds guest.elf with \`vmlet guest build\`, and call.mjs, which
  calls it from Node. Refuses to overwrite any of those files. Then: cd <dir> && make && node call.mjs`,
  build: `usage: vmlet guest build <source…> [-o guest.elf] [-I dir]… [-D name[=value]]… [--cc gcc] [--cxx g++] [-v] [--json]
  Compiles C (.c), C++ (.cc .cpp .cxx) and assembly (.S) sources with the guest SDK's
  flags, links them with its start-up code and libvmlet.a (prebuilt in the package, which
  stays untouched) and writes a guest ELF. Compiler messages go to stderr.
  -o, --output FILE   the guest ELF (default: the first source's name with .elf)
  -I DIR, -D NAME[=V] include folder, macro (repeatable)
  --cc, --cxx         the compilers (default GUEST_CC / GUEST_CXX, else gcc / g++)
  -v, --verbose       print each compiler command on stderr
  Warnings are not errors (add -Werror in your own build if you want that); a function
  whose C type differs from its VMLET_EXPORT signature is a compile error.`,
  types: `usage: vmlet guest types <guest.elf> [--name Guest] [--json]
  Prints a TypeScript declaration of the guest's exported functions, read from the ELF
  without running it: \`vmlet guest types guest.elf > guest.d.ts\`, then
  \`sb.typed<Guest>().call("add", 1, 2)\` is checked by tsc. i64/u64 results are bigints.
  --name NAME   the interface's name (default Guest)
  --json        print the functions and their ABI types as JSON instead`,
};

export const GUEST_SUMMARY = `usage: vmlet guest <command> …
  new <dir>                         write a guest project to start from
  build <source…> [-o guest.elf]    compile and link a guest with the shipped SDK
  types <guest.elf> [--name Guest]  print a TypeScript interface of the guest's exports
  \`vmlet help guest <command>\` for details; \`vmlet sdk-path\` for other build systems.`;

const TYPES_SPEC = { options: { json: { type: "boolean" }, name: { type: "string", valueName: "an interface name" } } } as const;

const BUILD_SPEC = {
  options: {
    json: { type: "boolean" },
    output: { type: "string", short: "o" },
    include: { type: "string", short: "I", multiple: true },
    define: { type: "string", short: "D", multiple: true },
    cc: { type: "string" },
    cxx: { type: "string" },
    verbose: { type: "boolean", short: "v" },
  },
} as const;

const SPECS: Readonly<Record<string, CommandSpec>> = { build: BUILD_SPEC, types: TYPES_SPEC };

export async function guestCommand(argv: readonly string[], io: Io): Promise<number> {
  const sub = argv[0];
  if (sub === undefined) throw new UsageError("missing guest command", GUEST_SUMMARY);
  if (sub === "--help" || sub === "-h" || sub === "help") {
    io.out((argv[1] && GUEST_USAGE[argv[1]]) || GUEST_SUMMARY);
    return 0;
  }
  const usage = GUEST_USAGE[sub];
  if (usage === undefined) throw new UsageError(`unknown guest command "${sub}"`, GUEST_SUMMARY);
  const args = parseArgs(argv.slice(1), SPECS[sub] ?? { options: { json: { type: "boolean" } } }, usage);
  if (args.help) {
    io.out(usage);
    return 0;
  }
  if (sub === "new") {
    const [dir] = expectPositionals(args, ["dir"], usage) as [string];
    const files = scaffoldGuest(dir);
    if (io.json) io.printJson({ dir, files });
    else {
      io.out(`wrote ${files.map((f) => path.join(dir, f)).join(", ")}`);
      io.out(`next: cd ${dir} && make && node call.mjs`);
    }
    return 0;
  }
  if (sub === "types") {
    const [elf] = expectPositionals(args, ["guest.elf"], usage) as [string];
    printGuestTypes(elf, stringFlag(args, "name") ?? "Guest", io, usage);
    return 0;
  }
  const sources = args.positionals;
  if (sources.length === 0) throw new UsageError("missing <source>", usage);
  const defaults = defaultCompilers();
  const output = stringFlag(args, "output") ?? `${path.basename(sources[0]!).replace(/\.[^.]*$/, "")}.elf`;
  const verbose = args.flags.has("verbose");
  const commands = buildGuest(
    {
      sources, output,
      includeDirs: args.lists.get("include") ?? [],
      defines: args.lists.get("define") ?? [],
      compilers: { cc: stringFlag(args, "cc") ?? defaults.cc, cxx: stringFlag(args, "cxx") ?? defaults.cxx },
      onCommand: (command) => verbose && io.err(command.join(" ")),
    },
    usage,
  );
  if (io.json) io.printJson({ output, sources, commands });
  return 0;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function printGuestTypes(elf: string, name: string, io: Io, usage: string): void {
  if (!IDENTIFIER.test(name)) throw new UsageError(`--name must be a TypeScript identifier (got "${name}")`, usage);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(elf);
  } catch (error) {
    throw new CliFailure(`cannot read ${elf}: ${(error as Error).message}`);
  }
  const functions = exportedFunctions(bytes);
  if (io.json) io.printJson({ functions: functions.map(({ name: fn, params, returns }) => ({ name: fn, params, returns })) });
  else io.out(guestDeclaration(functions, name, path.basename(elf)).trimEnd());
}

/** `vmlet guest new <dir>`: a guest project to start from: a C file with two exports, a Makefile, a script calling it. */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { CliFailure } from "./args.js";

const GUEST_C = `/* A vmlet guest: functions the host calls by name. Everything <vmlet.h> offers is in
 * docs/guest-sdk.md of the vmlet package. */
#include <vmlet.h>

/* add(i32, i32) -> i32 */
static int32_t add(int32_t a, int32_t b) { return a + b; }
VMLET_EXPORT(add, I32, I32, I32); /* name, return type, parameter types */

/* greet(string) -> string: the result lives in scratch memory, freed once the host has copied it. */
static const char *greet(const char *name) {
  size_t size = strlen(name) + 8;
  char *text = vmlet_scratch(size);
  if (!text) vmlet_out_of_memory();
  snprintf(text, size, "hello, %s", name);
  return text;
}
VMLET_EXPORT(greet, STRING, STRING);
`;

const MAKEFILE = `# Builds guest.elf with the guest SDK that ships with vmlet (\`npx vmlet guest build --help\`).
guest.elf: guest.c
\tnpx vmlet guest build guest.c -o guest.elf

clean:
\trm -f guest.elf

.PHONY: clean
`;

const CALL_MJS = `// Calls the guest: \`make && node call.mjs\`.
import { fileURLToPath } from "node:url";
import { createSandbox } from "vmlet";

const sandbox = await createSandbox({ guest: fileURLToPath(new URL("guest.elf", import.meta.url)) });
try {
  console.log(await sandbox.call("add", 2, 40)); // 42
  console.log(await sandbox.call("greet", "world")); // hello, world
} finally {
  sandbox.close();
}
`;

export const SCAFFOLD: Readonly<Record<string, string>> = {
  "guest.c": GUEST_C,
  Makefile: MAKEFILE,
  "call.mjs": CALL_MJS,
  ".gitignore": "guest.elf\n",
};

/** Writes the files into `dir` (created if missing); refuses to overwrite any of them. Returns their names. */
export function scaffoldGuest(dir: string): string[] {
  const names = Object.keys(SCAFFOLD);
  const taken = names.filter((name) => existsSync(path.join(dir, name)));
  if (taken.length > 0) throw new CliFailure(`${dir} already has ${taken.join(", ")}: nothing was written`, "FILE_EXISTS");
  mkdirSync(dir, { recursive: true });
  for (const name of names) writeFileSync(path.join(dir, name), SCAFFOLD[name]!, { flag: "wx" });
  return names;
}

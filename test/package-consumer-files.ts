/**
 * The files of the empty consumer project that test/package-install.test.ts installs the
 * packed vmlet into: what a user would write to call the shipped demo guest from an ES
 * module, from CommonJS, and from TypeScript of each kind.
 */
import path from "node:path";

/** Calls add(2, 40); without a backend here it says BACKEND_UNAVAILABLE and exits 1, as the CLI does. */
const callDemo = `
try {
  const sb = await createSandbox({ guest: demoGuestPath() });
  console.log(\`add(2, 40) = \${String(await sb.call("add", 2, 40))}\`);
  sb.close();
} catch (error) {
  if (!(error instanceof BackendUnavailableError)) throw error;
  console.error(\`\${error.code}: \${error.message}\`);
  process.exitCode = 1;
}`;

const esm = `import { createSandbox, demoGuestPath, BackendUnavailableError } from "vmlet";
import { fileURLToPath } from "node:url";

console.log(\`entry: \${fileURLToPath(import.meta.resolve("vmlet"))}\`);
${callDemo}
`;

const cjs = `const { createSandbox, demoGuestPath, BackendUnavailableError } = require("vmlet");

console.log(\`entry: \${require.resolve("vmlet")}\`);
(async () => {${callDemo.replace(/\n/g, "\n  ")}
})();
`;

/** Type errors a user would make must be errors: proves the types are real, not `any`. */
const typeChecks = `const config: SandboxConfig = { guest: demoGuestPath(), heapSize: 2 << 20 };
// @ts-expect-error heapSize is a number
const wrong: SandboxConfig = { guest: demoGuestPath(), heapSize: "2 MiB" };
// @ts-expect-error demoGuestPath takes no arguments
demoGuestPath("demo");
export async function addOnce(): Promise<number> {
  const sb: Sandbox = await createSandbox(config);
  try {
    const sum = await sb.call("add", 2, 40);
    return typeof sum === "number" ? sum : Number.NaN;
  } catch (error) {
    if (error instanceof VmletError) console.error(error.code, wrong.guest);
    throw error;
  } finally {
    sb.close();
  }
}
`;

const mts = `import { createSandbox, demoGuestPath, VmletError, type Sandbox, type SandboxConfig } from "vmlet";

${typeChecks}`;

const cts = `import vmlet = require("vmlet");
import { createSandbox, demoGuestPath, VmletError } from "vmlet";
type Sandbox = vmlet.Sandbox;
type SandboxConfig = vmlet.SandboxConfig;

${typeChecks}`;

/** File name → contents. `repoRoot` lends its @types/node; skipLibCheck as `tsc --init` sets it. */
export function files(repoRoot: string): Record<string, string> {
  const tsconfig = {
    compilerOptions: {
      module: "nodenext", moduleResolution: "nodenext", target: "es2022", strict: true, noEmit: true,
      skipLibCheck: true, types: ["node"], typeRoots: [path.join(repoRoot, "node_modules/@types")],
    },
    files: ["consumer.mts", "consumer.cts"],
  };
  return {
    "package.json": `${JSON.stringify({ name: "vmlet-consumer", version: "1.0.0", private: true }, null, 2)}\n`,
    "esm.mjs": esm,
    "cjs.cjs": cjs,
    "consumer.mts": mts,
    "consumer.cts": cts,
    // Not tsconfig.json: docs/getting-started.md writes that one into the same project.
    "tsconfig.types.json": `${JSON.stringify(tsconfig, null, 2)}\n`,
  };
}

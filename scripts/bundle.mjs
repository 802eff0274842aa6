/**
 * Bundles what the package runs into dist/pkg with esbuild, after tsc has built dist/src
 * (ES modules) and dist/cjs (CommonJS): `import "vmlet"` costs mostly the ES loader's work
 * per module file (resolve, stat, open, read, compile), and the library has about a hundred
 * small ones, so one file each for `import`, `require` and the `vmlet` bin loads several
 * times faster (docs/benchmarks.md § Cold start). What is loaded only on demand (import()
 * of the gdb stub, require() of pprof-format) stays lazy: a chunk of its own in the ES
 * build, a function run on first use in the CommonJS one.
 *
 *   dist/pkg/index.js   import "vmlet"  (+ dist/pkg/chunk-*.js, shared with the bin)
 *   dist/pkg/cli.js     the vmlet bin
 *   dist/pkg/index.cjs  require("vmlet")
 *
 * Everything stays in dist/pkg itself, so that src/package-root.cts finds the package root
 * two levels above every file. Types stay with tsc's output (dist/src, dist/cjs).
 */
import path from "node:path";

/** node-gyp-build and pprof-format are dependencies of their own; node: modules are Node's. */
const shared = {
  bundle: true,
  platform: "node",
  target: "node20",
  external: ["node-gyp-build", "pprof-format"],
  // Error classes name themselves after their class (errors.ts: new.target.name).
  keepNames: true,
  legalComments: "none",
  logLevel: "warning",
};

/**
 * An ES module has no `__dirname` (src/package-root.cts, bundled here, reads it) and no
 * `require` (esbuild's require() of a CommonJS module's external needs it): both are made
 * from the file's own URL.
 */
const esmBanner = [
  'import { createRequire as __vmletCreateRequire } from "node:module";',
  'import { dirname as __vmletDirname } from "node:path";',
  'import { fileURLToPath as __vmletFileURLToPath } from "node:url";',
  "const require = __vmletCreateRequire(import.meta.url);",
  "const __dirname = __vmletDirname(__vmletFileURLToPath(import.meta.url));",
].join("\n");

export async function bundlePackage(root, esbuild) {
  const out = path.join(root, "dist/pkg");
  await esbuild.build({
    ...shared,
    entryPoints: { index: path.join(root, "dist/src/index.js"), cli: path.join(root, "dist/src/cli/main.js") },
    format: "esm",
    splitting: true,
    outdir: out,
    banner: { js: esmBanner },
  });
  await esbuild.build({
    ...shared,
    entryPoints: [path.join(root, "dist/cjs/index.js")],
    format: "cjs",
    outfile: path.join(out, "index.cjs"),
  });
}

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
import { readdirSync, readFileSync } from "node:fs";
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

/**
 * Node's own modules through `require` in the ES build. An `import` of one makes Node build an
 * ES facade of it, which reads every export: for node:fs that runs its lazy ReadStream getter
 * and loads the whole of node:stream, ~5 ms of `import "vmlet"` for nothing
 * (docs/benchmarks.md § Cold start). Each builtin becomes a small ES module that requires it once
 * and re-exports what the sources import of it by name (`used`, from builtinImports).
 */
function builtinsByRequire(used) {
  return {
    name: "builtins-by-require",
    setup(build) {
      // A require() (ours, or a CommonJS file's) stays one; an import becomes the small module.
      build.onResolve({ filter: /^node:/ }, (args) =>
        args.kind === "import-statement" && args.namespace !== "builtin-by-require"
          ? { path: args.path, namespace: "builtin-by-require" }
          : { path: args.path, external: true });
      build.onLoad({ filter: /.*/, namespace: "builtin-by-require" }, (args) => ({
        contents: [
          `const m = require(${JSON.stringify(args.path)});`,
          "export default m;",
          ...[...(used.get(args.path) ?? [])].map((name) => `export const ${name} = m.${name};`),
        ].join("\n"),
        loader: "js",
      }));
    },
  };
}

/** The names each `node:` module is imported by in tsc's ES output: builtin → names. */
function builtinImports(dir) {
  const used = new Map();
  for (const entry of readdirSync(dir, { recursive: true })) {
    if (!entry.endsWith(".js")) continue;
    const source = readFileSync(path.join(dir, entry), "utf8");
    for (const [, names, builtin] of source.matchAll(/^import\s*(?:[\w$]+\s*,\s*)?\{([^}]*)\}\s*from\s*"(node:[^"]+)"/gm)) {
      const set = used.get(builtin) ?? new Set();
      for (const name of names.split(",").map((n) => n.trim().split(/\s+as\s+/)[0]).filter(Boolean)) set.add(name);
      used.set(builtin, set);
    }
  }
  return used;
}

export async function bundlePackage(root, esbuild) {
  const out = path.join(root, "dist/pkg");
  await esbuild.build({
    ...shared,
    entryPoints: { index: path.join(root, "dist/src/index.js"), cli: path.join(root, "dist/src/cli/main.js") },
    format: "esm",
    splitting: true,
    outdir: out,
    banner: { js: esmBanner },
    plugins: [builtinsByRequire(builtinImports(path.join(root, "dist/src")))],
  });
  await esbuild.build({
    ...shared,
    entryPoints: [path.join(root, "dist/cjs/index.js")],
    format: "cjs",
    outfile: path.join(out, "index.cjs"),
  });
}

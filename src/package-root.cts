/**
 * The package's root directory: ../.. from dist/src, from dist/cjs in the CommonJS build,
 * and from dist/pkg, where scripts/bundle.mjs bundles both (and gives the ES bundle a
 * `__dirname`). A .cts file so that one source serves both builds: `import.meta.url` would
 * not compile to CommonJS, and `__dirname` does not exist in an ES module.
 */
import path = require("node:path");

const packageRoot: string = path.resolve(__dirname, "../..");
export = packageRoot;

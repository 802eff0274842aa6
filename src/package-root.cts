/**
 * The package's root directory (dist/src → ../.., and dist/cjs → ../.. in the CommonJS
 * build). A .cts file so that one source serves both builds: `import.meta.url` would
 * not compile to CommonJS, and `__dirname` does not exist in an ES module.
 */
import path = require("node:path");

const packageRoot: string = path.resolve(__dirname, "../..");
export = packageRoot;

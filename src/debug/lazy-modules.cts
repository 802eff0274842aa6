/**
 * Modules only a memory profile needs, loaded when memoryProfile() first runs instead of at
 * `import "vmlet"` (issue 17; docs/benchmarks.md § Cold start). A .cts file because
 * memoryProfile() is synchronous: `require` loads them synchronously in both builds, where
 * an ES module has only the asynchronous import().
 */
import type * as PprofFormat from "pprof-format";
import type * as Zlib from "node:zlib";

const lazyModules = {
  /** pprof-format's CommonJS build (its objects never leave memory-profile.ts, so one copy is enough). */
  pprofFormat: (): typeof PprofFormat => require("pprof-format") as typeof PprofFormat,
  zlib: (): typeof Zlib => require("node:zlib") as typeof Zlib,
};
export = lazyModules;

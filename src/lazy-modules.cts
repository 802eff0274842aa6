/**
 * Modules loaded when first used instead of at `import "vmlet"` (issue 17; docs/benchmarks.md
 * § Cold start): what only a memory profile needs, and node:crypto (5–10 ms to load), which
 * only snapshot files need (hashes, temp names). A .cts file because their callers are
 * synchronous: `require` loads them synchronously in both builds, where an ES module has
 * only the asynchronous import().
 */
import type * as Crypto from "node:crypto";
import type * as PprofFormat from "pprof-format";
import type * as Zlib from "node:zlib";

const lazyModules = {
  /** pprof-format's CommonJS build (its objects never leave memory-profile.ts, so one copy is enough). */
  pprofFormat: (): typeof PprofFormat => require("pprof-format") as typeof PprofFormat,
  zlib: (): typeof Zlib => require("node:zlib") as typeof Zlib,
  crypto: (): typeof Crypto => require("node:crypto") as typeof Crypto,
};
export = lazyModules;

/**
 * node:crypto, loaded when a snapshot file is first hashed or named: loading it costs 5–10 ms,
 * and `import "vmlet"` need not pay that (docs/benchmarks.md § Cold start). A .cts file because
 * the callers are synchronous, and `require` loads synchronously in both builds.
 */
import type * as Crypto from "node:crypto";

let loaded: typeof Crypto | undefined;
const lazyCrypto = (): typeof Crypto => (loaded ??= require("node:crypto") as typeof Crypto);
export = lazyCrypto;

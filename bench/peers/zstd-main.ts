/**
 * The zstd row of `npm run bench:peers` alone (it is also part of the full run):
 *   node dist/bench/peers/zstd-main.js [--quick]
 */
import { measureZstd } from "./zstd.js";

const result = await measureZstd(process.argv.includes("--quick"));
console.log(`zstd ${result.version}: vmlet guest against the same C on the host\n\n${result.text}`);

/**
 * Runs measureRss in a process of its own and prints the result as JSON: in the bench
 * process, memory freed late by earlier sections (V8 giving pages back, collected
 * images) landed inside the before/after window and made the per-sandbox figure noise.
 * Usage: node dist/bench/rss-child.js COUNT FILL_MIB TOUCH_PAGES READERS
 */
import { measureRss } from "./snapshot-measure.js";

const [count, fill, touch, readers] = process.argv.slice(2).map(Number);
const result = await measureRss(count!, fill, touch, readers);
process.stdout.write(JSON.stringify(result));

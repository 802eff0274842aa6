/**
 * The child of bench/cold-start-measure.ts's import rows: a fresh Node process that imports
 * one module and prints one JSON line: the import's wall time and the process's CPU time
 * during it (all threads; a busy machine stretches the first, less the second), in ms.
 *
 *   node dist/bench/import-child.js URL
 */
const url = process.argv[2];
if (url === undefined) throw new Error("usage: import-child.js URL");
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await import(url);
const importMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
process.stdout.write(JSON.stringify({ importMs, importCpuMs: (cpu.user + cpu.system) / 1000, startedAt: t0 }) + "\n");

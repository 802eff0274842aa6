/**
 * Calls the C++ guest examples/cpp-guest/stats.cpp: pushes the numbers given on the
 * command line, then prints the guest's summary and a sorted copy of some bytes.
 *   npx vmlet guest build examples/cpp-guest/stats.cpp -o stats.elf
 *   node dist/examples/cpp-guest/main.js stats.elf 3 1 4 1 5
 */
import { createSandbox } from "../../src/index.js";

const [elf, ...numbers] = process.argv.slice(2);
if (elf === undefined) {
  console.error("usage: node dist/examples/cpp-guest/main.js <stats.elf> [number…]");
  process.exit(2);
}
const sandbox = await createSandbox({ guest: elf, guestLogger: () => undefined });
try {
  for (const n of numbers) await sandbox.call("push", Number(n));
  console.log(await sandbox.call("summary"));
  const sorted = await sandbox.call("sorted_descending", new Uint8Array([3, 9, 1, 7]));
  console.log(`sorted_descending([3, 9, 1, 7]) = [${Array.from(sorted as Uint8Array).join(", ")}]`);
} finally {
  sandbox.close();
}

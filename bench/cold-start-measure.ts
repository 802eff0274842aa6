/**
 * Cold start in a new process (issue 17): what `import "vmlet"` costs a process that has
 * loaded nothing yet, against Node's own start and the import of a one-line module, and the
 * time to a first result. Four kinds of child, interleaved round by round so that a busy
 * spell of the machine falls on all of them:
 *
 *   bare      node -e 0                                   → exit
 *   one-line  import of bench/one-line-module.js          (import-child.js)
 *   vmlet     import of the package entry, dist/pkg/index.js, as `import "vmlet"` resolves it
 *   first     import, build snapshot.elf (16 MiB), callSync("get_counter"), print (cold-start-child.js)
 *
 * The import figures are measured inside the child (performance.now() and process.cpuUsage()
 * around the import()); exit and first-result figures by the parent, from spawn.
 */
import { fileURLToPath } from "node:url";
import { median } from "../src/cli/stats.js";
import { HEAP, snapshotElf } from "./snapshot-measure.js";
import { spawnTimed } from "./spawn-timed.js";

export interface ColdStartResult {
  rounds: number;
  /** Medians, ms. */
  bareExitMs: number;
  oneLine: { importMs: number; importCpuMs: number; exitMs: number };
  vmlet: { importMs: number; importCpuMs: number; exitMs: number };
  first: { firstMs: number; exitMs: number; inChildImportMs: number; inChildBuildMs: number; inChildCallMs: number };
  samples: Record<Kind, number[]>;
}

type Kind = "bare" | "oneLine" | "vmlet" | "first";

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));
const importChild = here("./import-child.js");
const KINDS: Record<Kind, string[]> = {
  bare: ["-e", "0"],
  oneLine: [importChild, new URL("./one-line-module.js", import.meta.url).href],
  vmlet: [importChild, new URL("../pkg/index.js", import.meta.url).href],
  first: [here("./cold-start-child.js"), "elf", snapshotElf, String(HEAP["16MiB"])],
};

interface ImportLine { importMs: number; importCpuMs: number }
interface FirstLine { result: unknown; t: { importStart: number; import: number; ready: number; call: number } }

/** `rounds` measured rounds (after one unrecorded warm-up round) of every kind, in a rotating order. */
export async function measureColdStart(rounds: number, progress: (msg: string) => void): Promise<ColdStartResult> {
  progress(`cold start: ${rounds} new processes of each kind`);
  const exit: Record<Kind, number[]> = { bare: [], oneLine: [], vmlet: [], first: [] };
  const firstMs: number[] = [];
  const imports: Record<"oneLine" | "vmlet", ImportLine[]> = { oneLine: [], vmlet: [] };
  const inChild: Array<FirstLine["t"]> = [];
  const order = Object.keys(KINDS) as Kind[];
  for (let round = -1; round < rounds; round++) {
    for (let j = 0; j < order.length; j++) {
      const kind = order[(round + 1 + j) % order.length]!;
      const r = await spawnTimed(KINDS[kind]);
      if (round < 0) continue;
      exit[kind].push(r.exitMs);
      if (kind === "oneLine" || kind === "vmlet") imports[kind].push(JSON.parse(r.line) as ImportLine);
      if (kind === "first") {
        const line = JSON.parse(r.line) as FirstLine;
        if (line.result !== 0) throw new Error(`cold start: get_counter() = ${String(line.result)}`);
        firstMs.push(r.firstMs);
        inChild.push(line.t);
      }
    }
  }
  const importFigures = (k: "oneLine" | "vmlet"): ColdStartResult["vmlet"] => ({
    importMs: median(imports[k].map((l) => l.importMs)),
    importCpuMs: median(imports[k].map((l) => l.importCpuMs)),
    exitMs: median(exit[k]),
  });
  return {
    rounds,
    bareExitMs: median(exit.bare),
    oneLine: importFigures("oneLine"),
    vmlet: importFigures("vmlet"),
    first: {
      firstMs: median(firstMs),
      exitMs: median(exit.first),
      inChildImportMs: median(inChild.map((t) => t.import - t.importStart)),
      inChildBuildMs: median(inChild.map((t) => t.ready - t.import)),
      inChildCallMs: median(inChild.map((t) => t.call - t.ready)),
    },
    samples: { bare: exit.bare, oneLine: imports.oneLine.map((l) => l.importMs), vmlet: imports.vmlet.map((l) => l.importMs), first: firstMs },
  };
}

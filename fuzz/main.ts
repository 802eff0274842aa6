/**
 * `npm run fuzz`: runs each boundary's fuzzer and prints its rate, outcomes and failures;
 * exits 1 if any input failed. Options:
 *   --inputs N    inputs per boundary (default 10000; a long run: 1000000)
 *   --seed S      run seed (default: random, printed); input i uses inputSeed(S, i)
 *   --from I      first input index (with --seed and --inputs 1: rerun one failure)
 *   --only NAME   one boundary: exit-records, host-results or snapshot-layouts
 *   --seconds T   stop each boundary after T seconds
 */
import { fuzzers, type FuzzerName } from "./fuzzers.js";
import { formatReport, type FuzzReport } from "./harness.js";

interface Args {
  inputs: number;
  seed: number;
  from: number;
  only: FuzzerName | undefined;
  seconds: number | undefined;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { inputs: 10_000, seed: Math.floor(Math.random() * 0x100000000), from: 0, only: undefined, seconds: undefined };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    const number = Number(value);
    if (flag === "--only") {
      if (!(value in fuzzers)) throw new Error(`--only takes one of ${Object.keys(fuzzers).join(", ")}`);
      args.only = value as FuzzerName;
      continue;
    }
    if (!Number.isSafeInteger(number) || number < 0) throw new Error(`${flag} takes a whole number, got ${value}`);
    if (flag === "--inputs") args.inputs = number;
    else if (flag === "--seed") args.seed = number >>> 0;
    else if (flag === "--from") args.from = number;
    else if (flag === "--seconds") args.seconds = number;
    else throw new Error(`unknown option ${flag}`);
  }
  return args;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const names = args.only ? [args.only] : (Object.keys(fuzzers) as FuzzerName[]);
  let failed = false;
  for (const name of names) {
    const fuzzer = await fuzzers[name]();
    try {
      const report = await fuzzer.run({
        seed: args.seed,
        inputs: args.inputs,
        from: args.from,
        ...(args.seconds === undefined ? {} : { seconds: args.seconds }),
        onProgress: progressPrinter(),
      });
      console.log(formatReport(report));
      if (report.failures.length > 0) failed = true;
    } finally {
      await fuzzer.close();
    }
  }
  return failed ? 1 : 0;
}

/** A progress line every 30 s: enough to see a long run move, and where it was if it dies. */
function progressPrinter(): (r: FuzzReport) => void {
  let last = 0;
  return (r) => {
    if (r.ms - last < 30_000) return;
    last = r.ms;
    console.log(`  ${r.name}: ${r.inputs} inputs (seed ${r.seed}), ${(r.inputs / (r.ms / 1000)).toFixed(0)}/s, ${r.failures.length} failures`);
  };
}

process.exitCode = await main();

/**
 * The fuzz loop shared by every boundary: input i of a run with seed S is generated from
 * inputSeed(S, i) alone, run, and its outcome classified. A normal result or a VmletError
 * is fine; anything else (a raw TypeError, a hang past the watchdog, an unhandled
 * rejection) is a failure, which is shrunk and printed with the seed that reproduces it.
 */
import { VmletError } from "../src/errors/errors.js";
import { inputSeed, Prng } from "./prng.js";

/** One boundary under test. */
export interface FuzzTarget<I> {
  readonly name: string;
  generate(rng: Prng): I;
  /** Runs one input; resolves to an outcome label ("ok" or an error code) or throws what the host threw. */
  run(input: I): Promise<string>;
  /** Smaller inputs to try when `input` fails, simplest first. */
  shrink(input: I): Iterable<I>;
  describe(input: I): string;
  /** After a failure: put the target back in a usable state (a failed input may leave a call pending forever). */
  recover(): Promise<void>;
  close(): Promise<void> | void;
}

export interface RunOptions {
  readonly seed: number;
  /** Inputs to run (stops earlier at `seconds`). */
  readonly inputs: number;
  /** First input index: rerun from a failure's index with the same seed. */
  readonly from?: number;
  readonly seconds?: number;
  /** A run that does not settle within this is a hang. */
  readonly watchdogMs?: number;
  /** Called about once a second with progress. */
  readonly onProgress?: (report: FuzzReport) => void;
  /** Outcomes a target counts as failures though typed (e.g. TIMEOUT where nothing can spin). */
  readonly failOn?: readonly string[];
}

export interface Failure {
  readonly index: number;
  readonly inputSeed: number;
  readonly error: string;
  readonly minimal: string;
}

export interface FuzzReport {
  readonly name: string;
  readonly seed: number;
  inputs: number;
  ms: number;
  readonly outcomes: Map<string, number>;
  readonly failures: Failure[];
}

const DEFAULT_WATCHDOG_MS = 20_000;

/** What an input's run ended with: an outcome label, or a failure text. */
type Verdict = { readonly ok: true; readonly outcome: string } | { readonly ok: false; readonly error: string };

export async function runFuzzer<I>(target: FuzzTarget<I>, options: RunOptions): Promise<FuzzReport> {
  const report: FuzzReport = { name: target.name, seed: options.seed, inputs: 0, ms: 0, outcomes: new Map(), failures: [] };
  const stray = watchUnhandled();
  const start = performance.now();
  let lastProgress = start;
  try {
    const from = options.from ?? 0;
    for (let i = from; i < from + options.inputs; i++) {
      const seed = inputSeed(options.seed, i);
      const input = target.generate(new Prng(seed));
      const verdict = await judge(target, input, options, stray);
      report.inputs++;
      if (verdict.ok) {
        report.outcomes.set(verdict.outcome, (report.outcomes.get(verdict.outcome) ?? 0) + 1);
      } else {
        const minimal = await shrink(target, input, options, stray);
        report.failures.push({ index: i, inputSeed: seed, error: verdict.error, minimal: target.describe(minimal) });
        if (report.failures.length >= 3) break; // enough to act on
      }
      const now = performance.now();
      if (options.seconds !== undefined && now - start >= options.seconds * 1000) break;
      if (options.onProgress && now - lastProgress >= 1000) {
        lastProgress = now;
        report.ms = now - start;
        options.onProgress(report);
      }
    }
  } finally {
    report.ms = performance.now() - start;
    stray.stop();
  }
  return report;
}

/** Runs one input under the watchdog and classifies what came out. */
async function judge<I>(target: FuzzTarget<I>, input: I, options: RunOptions, stray: Unhandled): Promise<Verdict> {
  let timer: NodeJS.Timeout | undefined;
  const watchdogMs = options.watchdogMs ?? DEFAULT_WATCHDOG_MS;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Hang(`no result within ${watchdogMs} ms`)), watchdogMs);
  });
  let verdict: Verdict;
  try {
    const outcome = await Promise.race([target.run(input), hang]);
    verdict = options.failOn?.includes(outcome) ? { ok: false, error: `typed but wrong outcome: ${outcome}` } : { ok: true, outcome };
  } catch (error) {
    verdict = classify(error, options);
  } finally {
    clearTimeout(timer);
  }
  await new Promise((resolve) => setImmediate(resolve)); // lets a stray rejection of this input surface here
  const leaked = stray.take();
  if (leaked !== undefined) verdict = { ok: false, error: `unhandled rejection: ${leaked}` };
  if (!verdict.ok) await target.recover();
  return verdict;
}

function classify(error: unknown, options: RunOptions): Verdict {
  if (error instanceof Hang) return { ok: false, error: `hang: ${error.message}` };
  if (!(error instanceof VmletError)) return { ok: false, error: `untyped ${describeError(error)}` };
  if (options.failOn?.includes(error.code)) return { ok: false, error: `typed but wrong outcome: ${error.code}: ${error.message}` };
  return { ok: true, outcome: error.code };
}

class Hang extends Error {}

/** Tries the target's smaller inputs while they still fail; a bounded number of runs. */
async function shrink<I>(target: FuzzTarget<I>, input: I, options: RunOptions, stray: Unhandled): Promise<I> {
  let best = input;
  let budget = 500;
  for (let improved = true; improved && budget > 0; ) {
    improved = false;
    for (const candidate of target.shrink(best)) {
      if (--budget <= 0) break;
      if (!(await judge(target, candidate, options, stray)).ok) {
        best = candidate;
        improved = true;
        break;
      }
    }
  }
  return best;
}

/** Unhandled rejections while fuzzing are failures of the input that caused them, not a crash of the run. */
interface Unhandled {
  take(): string | undefined;
  stop(): void;
}

function watchUnhandled(): Unhandled {
  let seen: string | undefined;
  const onRejection = (reason: unknown): void => void (seen ??= describeError(reason));
  process.on("unhandledRejection", onRejection);
  return {
    take: () => {
      const s = seen;
      seen = undefined;
      return s;
    },
    stop: () => void process.off("unhandledRejection", onRejection),
  };
}

/** Describes anything thrown without trusting it (its getters and toString may throw too). */
export function describeError(error: unknown): string {
  try {
    if (error instanceof Error) return `${error.constructor.name}: ${error.message}\n${error.stack ?? ""}`;
    return `${typeof error}: ${String(error)}`;
  } catch {
    return `${typeof error} (cannot be printed)`;
  }
}

/** One line per report: rate, outcomes, failures. */
export function formatReport(r: FuzzReport): string {
  const rate = r.inputs / Math.max(r.ms / 1000, 1e-3);
  const outcomes = [...r.outcomes.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(", ");
  const lines = [`${r.name}: ${r.inputs} inputs in ${(r.ms / 1000).toFixed(1)} s (${rate.toFixed(0)}/s), seed ${r.seed}, ${r.failures.length} failures; outcomes: ${outcomes}`];
  for (const f of r.failures) {
    lines.push(`  FAILURE at input ${f.index} (seed ${r.seed}, input seed ${f.inputSeed}; rerun: npm run fuzz -- --only ${r.name} --seed ${r.seed} --from ${f.index} --inputs 1)`);
    lines.push(`    ${f.error.split("\n").slice(0, 6).join("\n    ")}`);
    lines.push(`    minimal input: ${f.minimal}`);
  }
  return lines.join("\n");
}

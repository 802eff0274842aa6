/** Where a command's output goes: stdout lines or one JSON document, stderr notes, the progress stream. */
import type { ProgressStream } from "./progress.js";

export interface Io {
  /** --json: stdout carries exactly one JSON document, nothing else. */
  readonly json: boolean;
  /** A line of human output on stdout (never used in --json mode). */
  out(line: string): void;
  /** A line on stderr: notes, guest call results during create, errors. */
  err(line: string): void;
  /** The one JSON document of a --json run: bigints become decimal strings. */
  printJson(document: unknown): void;
  readonly stderr: ProgressStream;
}

export function toJson(document: unknown): string {
  return JSON.stringify(document, (_key, value: unknown) => (typeof value === "bigint" ? value.toString() : value), 2);
}

export function processIo(json: boolean): Io {
  return {
    json,
    out: (line) => void process.stdout.write(`${line}\n`),
    err: (line) => void process.stderr.write(`${line}\n`),
    printJson: (document) => void process.stdout.write(`${toJson(document)}\n`),
    stderr: process.stderr,
  };
}

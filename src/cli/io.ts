/** Where a command's output goes: stdout lines or one JSON document, stderr notes, the progress stream. */
import { escapeControlCharsInJson, escapeControlCharsKeepingLines } from "../sandbox/terminal-text.js";
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

/** The JSON document as printed: C1 controls, line separators and bidi overrides as \u escapes too (JSON.stringify escapes only C0). */
export function toJson(document: unknown): string {
  return escapeControlCharsInJson(JSON.stringify(document, (_key, value: unknown) => (typeof value === "bigint" ? value.toString() : value), 2));
}

/**
 * A line as printed. Lines carry guest text (results, abort messages, log records) and
 * snapshot-file text (annotations): every control character but newline and tab is
 * escaped, so none of it can move the cursor, retitle the window or overwrite a line.
 */
export function terminalLine(line: string): string {
  return `${escapeControlCharsKeepingLines(line)}\n`;
}

export function processIo(json: boolean): Io {
  return {
    json,
    out: (line) => void process.stdout.write(terminalLine(line)),
    err: (line) => void process.stderr.write(terminalLine(line)),
    printJson: (document) => void process.stdout.write(`${toJson(document)}\n`),
    stderr: process.stderr,
  };
}

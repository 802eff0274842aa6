/** Guest log records, levels and the default logger. */
import { InvalidConfigError } from "../errors/errors.js";
import { LOG_LEVELS } from "../abi/constants.js";
import { describe } from "./option-checks.js";
import { escapeControlChars } from "./terminal-text.js";

export type LogLevel = (typeof LOG_LEVELS)[number];

export interface GuestLogRecord {
  readonly level: Exclude<LogLevel, "off">;
  readonly message: string;
  readonly file: string;
  readonly line: number;
}

export type GuestLogger = (record: GuestLogRecord) => void;

/** Numeric level as the guest compares it: records with level ≤ max are sent. */
export function levelNumber(level: LogLevel): number {
  return LOG_LEVELS.indexOf(level);
}

export function parseLogLevel(value: unknown, option: string): LogLevel {
  if (typeof value === "string" && (LOG_LEVELS as readonly string[]).includes(value)) return value as LogLevel;
  throw new InvalidConfigError(`${option} must be one of ${LOG_LEVELS.join(", ")} (got ${describe(value)})`);
}

export function levelName(n: number): Exclude<LogLevel, "off"> | undefined {
  const level = LOG_LEVELS[n];
  return level === undefined || level === "off" ? undefined : level;
}

/** The default logger's line, `[guest warn] message (file:line)`: guest text is escaped (terminal-text.ts), so it stays one line and cannot drive the terminal. */
export function formatGuestLogRecord(r: GuestLogRecord): string {
  return `[guest ${r.level}] ${escapeControlChars(r.message)}${r.file ? ` (${escapeControlChars(r.file)}:${r.line})` : ""}`;
}

/** Writes formatGuestLogRecord() lines to stderr. */
export const defaultGuestLogger: GuestLogger = (r) => {
  process.stderr.write(`${formatGuestLogRecord(r)}\n`);
};

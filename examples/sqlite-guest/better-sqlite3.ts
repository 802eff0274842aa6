/**
 * better-sqlite3 (a devDependency), the native reference for the SQLite guest's tests and
 * benchmark, loaded with just the part of its API they use (no @types package needed).
 */
import { createRequire } from "node:module";

export interface NativeStatement {
  readonly reader: boolean;
  columns(): { name: string }[];
  raw(on: boolean): NativeStatement;
  all(...params: unknown[]): unknown[][];
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
}

export interface NativeDatabase {
  prepare(sql: string): NativeStatement;
  exec(sql: string): void;
  close(): void;
}

/** Opens an in-memory better-sqlite3 database. */
export function openNative(): NativeDatabase {
  const Database = createRequire(import.meta.url)("better-sqlite3") as new (path: string) => NativeDatabase;
  return new Database(":memory:");
}

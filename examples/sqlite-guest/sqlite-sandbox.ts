/**
 * SQLite in a vmlet sandbox (examples/sqlite-guest/): a thin typed wrapper around the
 * guest's `exec(sql) -> string` and `query(sql, paramsJson) -> json` exports. The
 * database lives in guest memory, so `sandbox.snapshot()` / `restore()` /
 * `Sandbox.fromSnapshot()` capture and roll back the whole database.
 *
 *   const db = await SqliteSandbox.open();
 *   db.exec("CREATE TABLE t(x)");
 *   db.query("INSERT INTO t VALUES (?)", [42]);     // { changes: 1, lastInsertRowid: 1 }
 *   db.query("SELECT x FROM t");                    // { columns: ["x"], rows: [[42]] }
 *
 * In your own code, import from "vmlet" instead of ../../src.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Sandbox, SandboxBuilder, type HostFunctionDefinition } from "../../src/index.js";

/** The repository root: this file runs from dist/examples/sqlite-guest/. */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const sqliteGuest = path.join(root, "examples/sqlite-guest/build/sqlite.elf");

/**
 * The guest SDK's clock (docs/guest-sdk.md, "Time"): clock 0 is the real time in
 * nanoseconds since the Unix epoch, clock 1 a monotonic clock. SQLite needs it for
 * 'now' in its date functions; without it they fail.
 */
export const guestClock: HostFunctionDefinition = {
  name: "vmlet_clock_gettime",
  params: ["i32"],
  returns: "i64",
  impl: (clock: unknown): bigint => (clock === 0 ? BigInt(Date.now()) * 1_000_000n : process.hrtime.bigint()),
};

/** A SQL value as the guest returns it; BLOBs are Uint8Arrays. */
export type SqlValue = number | string | null | Uint8Array;
export type QueryResult = { columns: string[]; rows: SqlValue[][] } | { changes: number; lastInsertRowid: number };

export class SqliteError extends Error {
  constructor(
    message: string,
    readonly sqliteCode: number,
  ) {
    super(message);
    this.name = "SqliteError";
  }
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");

/** Parameters as the guest reads them: BLOBs become {"$blob": hex}. */
function encodeParams(params: readonly SqlValue[] | Readonly<Record<string, SqlValue>>): string {
  return JSON.stringify(params, (_key, value: unknown) => (value instanceof Uint8Array ? { $blob: hex(value) } : value));
}

function decodeValue(value: unknown): SqlValue {
  if (value !== null && typeof value === "object" && "$blob" in value) return Uint8Array.from(Buffer.from(String(value.$blob), "hex"));
  return value as SqlValue;
}

export class SqliteSandbox {
  private constructor(readonly sandbox: Sandbox) {}

  /** A sandbox with an empty in-memory database. */
  static async open(heapSize = 64 << 20): Promise<SqliteSandbox> {
    const sandbox = await new SandboxBuilder()
      .guest(sqliteGuest)
      .heapSize(heapSize)
      .inputSize(1 << 20)
      .outputSize(16 << 20)
      .hostFunction(guestClock.name, guestClock.params, guestClock.returns, guestClock.impl)
      .build();
    return new SqliteSandbox(sandbox);
  }

  /** Wraps a sandbox made from a snapshot of an SqliteSandbox. */
  static wrap(sandbox: Sandbox): SqliteSandbox {
    return new SqliteSandbox(sandbox);
  }

  /** Runs one or more statements; throws SqliteError on failure. */
  exec(sql: string): void {
    const error = this.sandbox.callSync("exec", sql) as string;
    if (error !== "") throw new SqliteError(error, 1);
  }

  /** Runs one statement with positional (array) or named (object) parameters. */
  query(sql: string, params: readonly SqlValue[] | Readonly<Record<string, SqlValue>> = []): QueryResult {
    const json = this.sandbox.callSync("query", sql, encodeParams(params)) as string;
    const result = JSON.parse(json) as { error?: string; code?: number; columns?: string[]; rows?: unknown[][]; changes?: number; lastInsertRowid?: number };
    if (result.error !== undefined) throw new SqliteError(result.error, result.code ?? 1);
    if (result.columns && result.rows) return { columns: result.columns, rows: result.rows.map((row) => row.map(decodeValue)) };
    return { changes: result.changes ?? 0, lastInsertRowid: result.lastInsertRowid ?? 0 };
  }

  close(): void {
    this.sandbox.close();
  }
}

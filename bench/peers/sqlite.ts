/**
 * The SQLite row of `npm run bench:peers`: SQLite as a vmlet guest
 * (examples/sqlite-guest/) against better-sqlite3 natively (same SQLite version, same
 * feature set), on the same SQL text: `SELECT 1`, 10,000 INSERTs in one transaction, a
 * scan, and the snapshot operations of a database sandbox. better-sqlite3 has no
 * snapshots; its nearest equivalents, serialize() and new Database(buffer), are shown
 * beside them. isolated-vm and quickjs are not measured: they would need SQLite compiled
 * to WebAssembly (sql.js), a different build of a different engine.
 */
import { openNative, type NativeDatabase } from "../../examples/sqlite-guest/better-sqlite3.js";
import { guestClock, SqliteSandbox } from "../../examples/sqlite-guest/sqlite-sandbox.js";
import { Sandbox } from "../../src/index.js";
import { batched, each, type Summary } from "./common.js";

export interface SqliteRow {
  operation: string;
  vmlet: Summary;
  native?: Summary;
  nativeLabel?: string;
}

export interface SqliteResult {
  rows: SqliteRow[];
  text: string;
  markdown: string;
}

const ROWS = 10_000;
const INSERTS = `BEGIN;\n${Array.from({ length: ROWS }, (_, i) => `INSERT INTO t(k, v) VALUES (${i}, 'row number ${i * 7919}');`).join("\n")}\nCOMMIT;`;
const SCAN = "SELECT count(*), sum(length(v)), max(k) FROM t WHERE v LIKE '%77%'";
const RESET = "DROP TABLE IF EXISTS t; CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT);";

function nativeSelect1(db: NativeDatabase): unknown {
  return db.prepare("SELECT 1").raw(true).all();
}

export async function measureSqlite(quick: boolean): Promise<SqliteResult> {
  const n = quick ? 10 : 30;
  const guest = await SqliteSandbox.open();
  const native = openNative();
  const rows: SqliteRow[] = [];
  try {
    rows.push({ operation: "SELECT 1 (prepare, step, result as JSON)", vmlet: batched(() => guest.query("SELECT 1"), n, 200), native: batched(() => nativeSelect1(native), n, 200) });
    rows.push({
      operation: `${ROWS.toLocaleString("en")} INSERTs in one transaction (one SQL script)`,
      vmlet: await each(() => guest.exec(RESET + INSERTS), n, 2),
      native: await each(() => native.exec(RESET + INSERTS), n, 2),
    });
    rows.push({ operation: `scan: ${SCAN}`, vmlet: batched(() => guest.query(SCAN), n, 10), native: batched(() => native.prepare(SCAN).raw(true).all(), n, 10) });

    const snapshot = guest.sandbox.snapshot();
    const serialized = (native as unknown as { serialize(): Buffer }).serialize();
    rows.push({
      operation: `snapshot of the database sandbox (${ROWS.toLocaleString("en")} rows)`,
      vmlet: await each(() => guest.sandbox.snapshot(), n),
      native: await each(() => (native as unknown as { serialize(): Buffer }).serialize(), n),
      nativeLabel: "serialize()",
    });
    rows.push({
      operation: "restore after a one-row UPDATE",
      vmlet: await each(() => {
        guest.query("UPDATE t SET v = 'changed' WHERE k = 5");
        guest.sandbox.restore(snapshot);
      }, n),
    });
    const Database = native.constructor as new (data: Buffer) => NativeDatabase;
    rows.push({
      operation: "new sandbox from the snapshot, first query",
      vmlet: await each(async () => {
        const copy = SqliteSandbox.wrap(await Sandbox.fromSnapshot(snapshot, { hostFunctions: [guestClock] }));
        copy.query("SELECT 1");
        copy.close();
      }, n),
      native: await each(() => {
        const copy = new Database(serialized);
        nativeSelect1(copy);
        copy.close();
      }, n),
      nativeLabel: "new Database(buffer)",
    });
  } finally {
    guest.close();
    native.close();
  }
  return { rows, text: textTable(rows), markdown: markdown(rows) };
}

const fmt = (s: Summary | undefined): string => (s === undefined ? "–" : s.median >= 100 ? s.median.toFixed(0) : s.median >= 10 ? s.median.toFixed(1) : s.median.toFixed(2));
const ratio = (row: SqliteRow): string => (row.native ? `${(row.vmlet.median / row.native.median).toFixed(2)}×` : "");

function cells(row: SqliteRow): string[] {
  return [row.operation, fmt(row.vmlet), row.native ? `${fmt(row.native)}${row.nativeLabel ? ` (${row.nativeLabel})` : ""}` : "–", ratio(row)];
}

const HEAD = ["SQLite operation", "vmlet guest µs", "better-sqlite3 µs", "vmlet / native"];

function textTable(rows: SqliteRow[]): string {
  const all = [HEAD, ...rows.map(cells)];
  const widths = HEAD.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ")).join("\n");
}

function markdown(rows: SqliteRow[]): string {
  const lines = [`| ${HEAD.join(" | ")} |`, `|${HEAD.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${cells(r).join(" | ")} |`)];
  return `
## SQLite in a sandbox

SQLite ${"3.53"} as a vmlet guest (\`examples/sqlite-guest/\`, the amalgamation of the pinned better-sqlite3
tarball, \`-O2\`) against better-sqlite3 natively, same SQL text, medians. The guest answers through
its \`query\`/\`exec\` exports (results as JSON); better-sqlite3 prepares each statement too. better-sqlite3
has no snapshots: serialize() and new Database(buffer) are its nearest equivalents.

${lines.join("\n")}
`;
}

/**
 * The SQLite example guest (examples/sqlite-guest/) against better-sqlite3 natively:
 * the same statements in both, every result compared (rows, column names, changes,
 * errors), then snapshots of a database sandbox: restore and fromSnapshot.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { openNative, type NativeDatabase } from "../examples/sqlite-guest/better-sqlite3.js";
import { guestClock, SqliteSandbox, type QueryResult, type SqlValue } from "../examples/sqlite-guest/sqlite-sandbox.js";
import { Sandbox } from "../src/index.js";

type Params = readonly SqlValue[] | Readonly<Record<string, SqlValue>>;

/** What better-sqlite3 answers, in the guest's result shape (BLOBs as Uint8Array). */
function nativeQuery(db: NativeDatabase, sql: string, params: Params): QueryResult | { error: string } {
  try {
    const stmt = db.prepare(sql);
    const args = Array.isArray(params) ? params.map(toNative) : [Object.fromEntries(Object.entries(params).map(([k, v]) => [k, toNative(v)]))];
    if (stmt.reader) {
      const columns = stmt.columns().map((c) => c.name);
      const rows = stmt.raw(true).all(...args).map((row) => row.map(fromNative));
      return { columns, rows };
    }
    const info = stmt.run(...args);
    return { changes: info.changes, lastInsertRowid: Number(info.lastInsertRowid) };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

const toNative = (v: SqlValue): unknown => (v instanceof Uint8Array ? Buffer.from(v) : v);
const fromNative = (v: unknown): SqlValue => (Buffer.isBuffer(v) ? new Uint8Array(v) : (v as SqlValue));

function guestQuery(db: SqliteSandbox, sql: string, params: Params): QueryResult | { error: string } {
  try {
    return db.query(sql, params);
  } catch (error) {
    return { error: (error as Error).message };
  }
}

const blob = Uint8Array.from([0, 1, 2, 254, 255]);

/** Distance in representable doubles. */
function ulps(a: number, b: number): number {
  const view = new DataView(new ArrayBuffer(16));
  view.setFloat64(0, a);
  view.setFloat64(8, b);
  const key = (at: number): bigint => {
    const bits = view.getBigInt64(at);
    return bits < 0n ? -(bits & 0x7fffffffffffffffn) : bits;
  };
  const d = key(0) - key(8);
  return Number(d < 0n ? -d : d);
}

/**
 * Results compared exactly, except that a REAL may differ by 1 ulp: SQLite's math
 * functions call the C library's, and the guest's libm and glibc each return a result
 * within 1 ulp of the true value, not always the same one (for acosh(2) and atanh(0.5)
 * the guest's is the correctly rounded one).
 */
function assertSameResult(actual: unknown, expected: unknown, sql: string): void {
  if (typeof actual === "number" && typeof expected === "number" && !Number.isInteger(expected) && ulps(actual, expected) <= 1) return;
  if (Array.isArray(actual) && Array.isArray(expected) && actual.length === expected.length) {
    actual.forEach((value, i) => assertSameResult(value, expected[i], sql));
    return;
  }
  if (actual !== null && expected !== null && typeof actual === "object" && typeof expected === "object" && !(actual instanceof Uint8Array)) {
    assert.deepEqual(Object.keys(actual), Object.keys(expected), sql);
    for (const key of Object.keys(actual)) assertSameResult((actual as Record<string, unknown>)[key], (expected as Record<string, unknown>)[key], sql);
    return;
  }
  assert.deepEqual(actual, expected, sql);
}

/** Statements covering types, functions (math, JSON, dates, printf), joins, windows, FTS5, R-tree, errors. */
const STATEMENTS: [string, Params?][] = [
  ["CREATE TABLE people(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, age INTEGER, score REAL, photo BLOB)"],
  ["INSERT INTO people(name, age, score, photo) VALUES (?, ?, ?, ?)", ["ada", 36, 97.5, blob]],
  ["INSERT INTO people(name, age, score, photo) VALUES (:name, :age, :score, NULL)", { name: "grace", age: 85, score: 1 / 3 }],
  ["INSERT INTO people(name, age, score) VALUES (?, ?, ?)", ["linus", 2 ** 40, -0.1]],
  ["INSERT INTO people(name, age, score) VALUES (?, ?, ?)", ["émile ✓", null, 1e300]],
  ["INSERT INTO people(name) VALUES ('ada')"],
  ["INSERT INTO people(name, age) VALUES ('x', 'not a number')"],
  ["SELECT * FROM people ORDER BY id"],
  ["SELECT name, typeof(age), typeof(score), length(photo), hex(photo) FROM people ORDER BY name"],
  ["SELECT count(*), sum(age), avg(score), min(score), max(score), total(age), group_concat(name, '|') FROM people"],
  ["SELECT upper(name), lower('ÀB'), substr(name, 2, 2), instr(name, 'a'), replace(name, 'a', 'A'), trim('  x  ') FROM people"],
  ["SELECT name LIKE 'A%', name GLOB 'a*', coalesce(age, -1), ifnull(photo, x'ff'), nullif(age, 36) FROM people ORDER BY id"],
  ["SELECT printf('%.3f|%e|%g|%10.4f|%-8s|%05d|%x|%q', score, score, score, score, name, id, id * 255, name) FROM people ORDER BY id"],
  ["SELECT sqrt(2), exp(1), ln(10), log10(1000), log2(8), log(2, 1024), pow(2, 0.5), sin(1), cos(1), tan(1)"],
  ["SELECT asin(0.5), acos(0.5), atan(1), atan2(1, 2), sinh(1), cosh(1), tanh(0.5), asinh(1), acosh(2), atanh(0.5)"],
  ["SELECT ceil(-1.5), floor(-1.5), trunc(2.7), round(2.5), round(-2.567, 2), mod(7.5, 2), pi(), degrees(pi()), radians(180), sign(-3)"],
  ["SELECT 0.1 + 0.2, 1e308 * 10, -1e308 * 10, 9007199254740993, 1 / 3.0, 2.0 / 3, CAST('12.5e3' AS REAL), CAST('0x10' AS INTEGER), '1e-7' + 0"],
  ["SELECT abs(-9223372036854775807), 9223372036854775807 + 0, random() IS NOT NULL, typeof(randomblob(4))"],
  ["SELECT date('2024-02-28', '+1 day'), datetime(1700000000, 'unixepoch'), strftime('%Y-%m-%d %H:%M:%f %j %w', '2000-01-01 12:34:56.789'), julianday('2000-01-01')"],
  ["SELECT date('2024-01-31', '+1 month'), time('12:00', '-30 minutes'), unixepoch('2030-06-15 00:00:00'), datetime('2024-03-10 12:00', 'localtime')"],
  ["SELECT json_object('a', 1, 'b', json_array(1.5, 'x', null)), json_extract('{\"a\":[1,2,{\"b\":3}]}', '$.a[2].b'), json_valid('{'), json_type('[1]')"],
  ["SELECT key, value, type FROM json_each('{\"x\": 1, \"y\": [2, 3], \"z\": 2.5e-3}') ORDER BY key"],
  ["CREATE TABLE orders(id INTEGER PRIMARY KEY, person INTEGER REFERENCES people(id), amount REAL, day TEXT)"],
  ["WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) INSERT INTO orders(person, amount, day) SELECT 1 + i % 3, i * 1.25, date('2024-01-01', '+' || i || ' days') FROM n"],
  ["INSERT INTO orders(person, amount) VALUES (99, 1)"],
  ["SELECT p.name, count(o.id), sum(o.amount), round(avg(o.amount), 4) FROM people p LEFT JOIN orders o ON o.person = p.id GROUP BY p.id ORDER BY p.id"],
  ["SELECT id, amount, sum(amount) OVER (PARTITION BY person ORDER BY id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW), rank() OVER (ORDER BY amount DESC) FROM orders WHERE id % 17 = 0"],
  ["SELECT strftime('%m', day) AS month, count(*), max(amount) FROM orders GROUP BY month HAVING count(*) > 10 ORDER BY month"],
  ["UPDATE orders SET amount = amount * 2 WHERE person = 2"],
  ["DELETE FROM orders WHERE id > 190"],
  ["INSERT INTO people(id, name, age) VALUES (1, 'ada', 37) ON CONFLICT(id) DO UPDATE SET age = excluded.age"],
  ["SELECT id, name, age FROM people WHERE id IN (SELECT person FROM orders) ORDER BY age DESC NULLS LAST"],
  ["CREATE VIRTUAL TABLE docs USING fts5(title, body)"],
  ["INSERT INTO docs VALUES ('sqlite', 'an embedded sql database engine'), ('vmlet', 'sandboxes with a micro vm'), ('fts', 'full text search in sqlite')"],
  ["SELECT title, round(rank, 6) FROM docs WHERE docs MATCH 'sqlite' ORDER BY rank"],
  ["SELECT highlight(docs, 1, '[', ']') FROM docs WHERE docs MATCH 'sql*'"],
  ["CREATE VIRTUAL TABLE boxes USING rtree(id, x0, x1, y0, y1)"],
  ["INSERT INTO boxes VALUES (1, 0, 10, 0, 10), (2, 5, 15, 5, 15), (3, 20, 30, 20, 30)"],
  ["SELECT id FROM boxes WHERE x1 >= 8 AND x0 <= 12 AND y1 >= 8 AND y0 <= 12 ORDER BY id"],
  ["SELECT * FROM no_such_table"],
  ["SELEC 1"],
  ["SELECT ?, ?", [1.5, "two"]],
  ["SELECT zeroblob(3), x'', ''"],
  ["PRAGMA user_version = 7"],
  ["PRAGMA user_version"],
];

test("the SQLite guest answers every statement as better-sqlite3 does", async () => {
  const guest = await SqliteSandbox.open();
  const native = openNative();
  try {
    for (const [sql, params = []] of STATEMENTS) {
      assertSameResult(guestQuery(guest, sql, params), nativeQuery(native, sql, params), sql);
    }
  } finally {
    guest.close();
    native.close();
  }
});

test("exec runs several statements and reports the first error", async () => {
  const db = await SqliteSandbox.open();
  try {
    db.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2); INSERT INTO t SELECT x + 2 FROM t;");
    assert.deepEqual(db.query("SELECT sum(x) FROM t"), { columns: ["sum(x)"], rows: [[10]] });
    assert.throws(() => db.exec("INSERT INTO t VALUES (5); SELECT * FROM missing; INSERT INTO t VALUES (6)"), /no such table: missing/);
    assert.deepEqual(db.query("SELECT count(*) FROM t"), { columns: ["count(*)"], rows: [[5]] });
  } finally {
    db.close();
  }
});

test("a database sandbox snapshots, restores and starts new sandboxes from the snapshot", async () => {
  const db = await SqliteSandbox.open();
  try {
    db.exec("CREATE TABLE kv(k TEXT PRIMARY KEY, v INTEGER); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) INSERT INTO kv SELECT 'k' || i, i FROM n;");
    const snapshot = db.sandbox.snapshot();
    db.exec("UPDATE kv SET v = -v WHERE v % 2 = 0; DELETE FROM kv WHERE v > 900; CREATE TABLE extra(x);");
    assert.deepEqual(db.query("SELECT count(*), sum(v) FROM kv"), { columns: ["count(*)", "sum(v)"], rows: [[950, -48000]] });

    db.sandbox.restore(snapshot);
    assert.deepEqual(db.query("SELECT count(*), sum(v) FROM kv"), { columns: ["count(*)", "sum(v)"], rows: [[1000, 500500]] });
    assert.deepEqual(db.query("SELECT name FROM sqlite_schema"), { columns: ["name"], rows: [["kv"], ["sqlite_autoindex_kv_1"]] });

    const copy = SqliteSandbox.wrap(await Sandbox.fromSnapshot(snapshot, { hostFunctions: [guestClock] }));
    try {
      copy.exec("INSERT INTO kv VALUES ('only-in-copy', 1)");
      assert.deepEqual(copy.query("SELECT count(*) FROM kv"), { columns: ["count(*)"], rows: [[1001]] });
      assert.deepEqual(db.query("SELECT count(*) FROM kv"), { columns: ["count(*)"], rows: [[1000]] });
    } finally {
      copy.close();
    }
  } finally {
    db.close();
  }
});

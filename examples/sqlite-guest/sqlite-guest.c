/*
 * SQLite as a vmlet guest: one in-memory database per sandbox, opened at
 * start-up, so a snapshot of the sandbox is a snapshot of the database.
 *
 *   exec(sql)                -> ""  or the error message ("SQLITE_ERROR: ...")
 *   query(sql, paramsJson)   -> JSON: {"columns":[...],"rows":[[...],...]} for
 *                               statements that return rows, else
 *                               {"changes":n,"lastInsertRowid":id}; on error
 *                               {"error":"...","code":n}
 *
 * Parameters are a JSON array (positional) or object (named: :x, @x, $x);
 * {"$blob":"hex"} is a BLOB both ways. Integers and reals are JSON numbers
 * (reals printed with 17 significant digits, so they read back exactly).
 * The JSON parameters are decoded by SQLite itself, with json_each().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite3.h"
#include "vmlet.h"

static sqlite3 *db;
static sqlite3_stmt *param_reader; /* SELECT over json_each(?1), prepared once */

/* ---- a growable output buffer, reused by every call --------------------------- */

static char *out;
static size_t out_len, out_cap;

static void out_reserve(size_t more) {
  if (out_len + more + 1 <= out_cap) return;
  size_t cap = out_cap ? out_cap : 4096;
  while (cap < out_len + more + 1) cap *= 2;
  char *grown = realloc(out, cap);
  if (!grown) vmlet_out_of_memory();
  out = grown;
  out_cap = cap;
}

static void out_bytes(const char *s, size_t n) {
  out_reserve(n);
  memcpy(out + out_len, s, n);
  out_len += n;
  out[out_len] = '\0';
}

static void out_str(const char *s) { out_bytes(s, strlen(s)); }

static void out_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out_printf(const char *fmt, ...) {
  char buf[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  out_bytes(buf, (size_t)n);
}

static void out_reset(void) {
  out_len = 0;
  out_reserve(0);
  out[0] = '\0';
}

static void out_json_string(const unsigned char *s, int n) {
  out_reserve((size_t)n + 2);
  out_bytes("\"", 1);
  for (int i = 0; i < n; i++) {
    unsigned char c = s[i];
    if (c == '"' || c == '\\') {
      char esc[2] = {'\\', (char)c};
      out_bytes(esc, 2);
    } else if (c < 0x20) {
      out_printf("\\u%04x", c);
    } else {
      out_bytes((const char *)&c, 1);
    }
  }
  out_bytes("\"", 1);
}

static void out_value(sqlite3_stmt *stmt, int column) {
  switch (sqlite3_column_type(stmt, column)) {
  case SQLITE_INTEGER:
    out_printf("%lld", (long long)sqlite3_column_int64(stmt, column));
    break;
  case SQLITE_FLOAT: {
    double v = sqlite3_column_double(stmt, column);
    if (__builtin_isinf(v)) out_str(v > 0 ? "1e999" : "-1e999"); /* JSON.parse reads them as +-Infinity */
    else out_printf("%.17g", v);
    break;
  }
  case SQLITE_TEXT:
    out_json_string(sqlite3_column_text(stmt, column), sqlite3_column_bytes(stmt, column));
    break;
  case SQLITE_BLOB: {
    const unsigned char *p = sqlite3_column_blob(stmt, column);
    int n = sqlite3_column_bytes(stmt, column);
    out_str("{\"$blob\":\"");
    for (int i = 0; i < n; i++) out_printf("%02x", p[i]);
    out_str("\"}");
    break;
  }
  default:
    out_str("null");
  }
}

static const char *out_error(int code) {
  out_reset();
  out_str("{\"error\":");
  const char *msg = sqlite3_errmsg(db);
  out_json_string((const unsigned char *)msg, (int)strlen(msg));
  out_printf(",\"code\":%d}", code);
  return out;
}

/* ---- parameters ---------------------------------------------------------------- */

/* Binds one json_each() row (key, type, atom, blob) to the statement. */
static int bind_one(sqlite3_stmt *stmt, int position) {
  const char *key = (const char *)sqlite3_column_text(param_reader, 0);
  int index = position;
  if (sqlite3_column_type(param_reader, 0) == SQLITE_TEXT) {
    char name[256];
    static const char prefixes[] = ":@$";
    index = 0;
    for (int i = 0; i < 3 && !index; i++) {
      snprintf(name, sizeof name, "%c%s", prefixes[i], key);
      index = sqlite3_bind_parameter_index(stmt, name);
    }
    if (!index) return SQLITE_RANGE;
  }
  const char *type = (const char *)sqlite3_column_text(param_reader, 1);
  if (strcmp(type, "object") == 0) {
    if (sqlite3_column_type(param_reader, 3) != SQLITE_BLOB) return SQLITE_MISMATCH;
    return sqlite3_bind_blob(stmt, index, sqlite3_column_blob(param_reader, 3), sqlite3_column_bytes(param_reader, 3),
                             SQLITE_TRANSIENT);
  }
  if (strcmp(type, "array") == 0) return SQLITE_MISMATCH;
  return sqlite3_bind_value(stmt, index, sqlite3_column_value(param_reader, 2));
}

static int bind_params(sqlite3_stmt *stmt, const char *params_json) {
  if (!params_json[0]) return SQLITE_OK;
  sqlite3_reset(param_reader);
  int rc = sqlite3_bind_text(param_reader, 1, params_json, -1, SQLITE_STATIC);
  for (int position = 1; rc == SQLITE_OK; position++) {
    int step = sqlite3_step(param_reader);
    if (step == SQLITE_DONE) break;
    rc = step == SQLITE_ROW ? bind_one(stmt, position) : step;
  }
  sqlite3_reset(param_reader);
  sqlite3_clear_bindings(param_reader);
  return rc;
}

/* ---- exports ------------------------------------------------------------------- */

/*
 * Zeroes the stack below the caller, where the SDK's vmlet__ready puts its XSAVE area
 * after the call returns. Works around a bug in guest/src/start.S: it zeroes the XSAVE
 * header's bytes 8..63 but not XSTATE_BV (bytes 0..7), and XSAVE leaves the bits of
 * components outside its mask as they were, so stale stack bytes from SQLite's deep
 * frames can set a bit outside XCR0 and the reload (xrstor64) faults with #GP.
 * Remove once start.S zeroes 512(%rsp) as well.
 */
__attribute__((noinline)) static void clear_stack_below(void) {
  char area[8192];
  memset(area, 0, sizeof area);
  __asm__ volatile("" : : "r"(area) : "memory"); /* keeps the stores */
}

static const char *exec(const char *sql) {
  char *message = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &message);
  out_reset();
  if (rc != SQLITE_OK) {
    out_printf("%s: ", sqlite3_errstr(rc));
    out_str(message ? message : sqlite3_errmsg(db));
  }
  sqlite3_free(message);
  clear_stack_below();
  return out;
}
VMLET_EXPORT(exec, STRING, STRING);

static const char *rows_json(sqlite3_stmt *stmt) {
  int columns = sqlite3_column_count(stmt), rc;
  out_reset();
  out_str("{\"columns\":[");
  for (int c = 0; c < columns; c++) {
    const char *name = sqlite3_column_name(stmt, c);
    if (c) out_str(",");
    out_json_string((const unsigned char *)name, (int)strlen(name));
  }
  out_str("],\"rows\":[");
  for (int row = 0; (rc = sqlite3_step(stmt)) == SQLITE_ROW; row++) {
    out_str(row ? ",[" : "[");
    for (int c = 0; c < columns; c++) {
      if (c) out_str(",");
      out_value(stmt, c);
    }
    out_str("]");
  }
  out_str("]}");
  return rc == SQLITE_DONE ? out : out_error(rc);
}

static const char *query(const char *sql, const char *params_json) {
  sqlite3_stmt *stmt;
  const char *tail;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, &tail);
  if (rc != SQLITE_OK) return out_error(rc);
  if (!stmt) { /* only whitespace or comments */
    out_reset();
    out_str("{\"changes\":0,\"lastInsertRowid\":0}");
    return out;
  }
  rc = bind_params(stmt, params_json);
  sqlite3_int64 total_before = sqlite3_total_changes64(db);
  const char *result;
  if (rc != SQLITE_OK) {
    result = out_error(rc);
  } else if (sqlite3_column_count(stmt) > 0) {
    result = rows_json(stmt);
  } else if ((rc = sqlite3_step(stmt)) != SQLITE_DONE && rc != SQLITE_ROW) {
    result = out_error(rc);
  } else {
    out_reset();
    /* As better-sqlite3 reports it: 0 for a statement that changed no rows, though
     * sqlite3_changes() still holds the count of the last one that did. */
    int changes = sqlite3_total_changes64(db) == total_before ? 0 : sqlite3_changes(db);
    out_printf("{\"changes\":%d,\"lastInsertRowid\":%lld}", changes, (long long)sqlite3_last_insert_rowid(db));
    result = out;
  }
  sqlite3_finalize(stmt);
  clear_stack_below();
  return result;
}
VMLET_EXPORT(query, STRING, STRING, STRING);

void vmlet_init(void) {
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) vmlet_panic("sqlite3_open: %s", sqlite3_errmsg(db));
  if (sqlite3_prepare_v2(db,
                         "SELECT key, type, atom, CASE type WHEN 'object' THEN unhex(json_extract(value, '$.\"$blob\"')) END "
                         "FROM json_each(?1)", -1,
                         &param_reader, NULL) != SQLITE_OK)
    vmlet_panic("preparing the parameter reader: %s", sqlite3_errmsg(db));
  out_reset();
  clear_stack_below();
}

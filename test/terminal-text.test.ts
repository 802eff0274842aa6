/**
 * Guest text cannot drive the terminal (issue 11, item 17): the default guest logger and
 * every line the CLI prints escape control characters (ESC, BEL, CR, C1, bidi overrides)
 * and leave all other text as it is. No KVM needed.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { terminalLine, toJson } from "../src/cli/io.js";
import { defaultGuestLogger, formatGuestLogRecord } from "../src/sandbox/logging.js";
import { escapeControlChars, escapeControlCharsKeepingLines } from "../src/sandbox/terminal-text.js";

/** What a hostile guest logs: retitle the window, ring, clear the screen, overwrite the line, reverse the text. */
const HOSTILE = "\x1b]0;pwned\x07\x1b[2J\rOK\x9b31m\u202eevil\x7f";
const ESCAPED = "\\x1b]0;pwned\\x07\\x1b[2J\\rOK\\x9b31m\\u202eevil\\x7f";

/** Characters a terminal acts on: C0, DEL, C1, line separators, bidi controls. */
function isControl(code: number): boolean {
  return code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029 || (code >= 0x202a && code <= 0x202e) || (code >= 0x2066 && code <= 0x2069);
}

test("escapeControlChars turns every control character into a visible escape", () => {
  assert.equal(escapeControlChars(HOSTILE), ESCAPED);
  assert.equal(escapeControlChars("a\nb\tc\0"), "a\\nb\\tc\\x00");
  const all = Array.from({ length: 0x2070 }, (_, code) => String.fromCharCode(code)).join("");
  const out = escapeControlChars(all);
  assert.equal([...out].filter((c) => isControl(c.charCodeAt(0))).length, 0, "a control character survived");
});

test("printable text, Unicode included, is unchanged", () => {
  for (const text of ["", "plain ascii 123 !@#$%^&*()", "héllo ✓ 日本語 🙂", "back\\slash"]) {
    assert.equal(escapeControlChars(text), text);
    assert.equal(escapeControlCharsKeepingLines(text), text);
  }
});

test("the default guest logger prints one escaped line: message and file", () => {
  const line = formatGuestLogRecord({ level: "warn", message: HOSTILE, file: "a\x1b[1m.c", line: 7 });
  assert.equal(line, `[guest warn] ${ESCAPED} (a\\x1b[1m.c:7)`);
  const written: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string) => (written.push(chunk), true)) as typeof process.stderr.write;
  try {
    defaultGuestLogger({ level: "error", message: "line one\nline two\r\x1b[A", file: "", line: 0 });
  } finally {
    process.stderr.write = write;
  }
  assert.deepEqual(written, ["[guest error] line one\\nline two\\r\\x1b[A\n"]);
});

test("CLI lines keep newlines and tabs and escape the rest; JSON escapes what JSON.stringify leaves raw", () => {
  assert.equal(terminalLine(`result:\t${HOSTILE}\nnext`), `result:\t${ESCAPED}\nnext\n`);
  const document = { result: HOSTILE };
  const json = toJson(document);
  assert.deepEqual(JSON.parse(json), document, "the same value");
  assert.equal([...json].filter((c) => isControl(c.charCodeAt(0)) && c !== "\n").length, 0, json);
});

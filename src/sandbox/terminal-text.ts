/**
 * Text from a guest (log records, results, abort messages) or from a snapshot file, made
 * safe to print on a terminal. Control characters a terminal acts on (ESC sequences that
 * move the cursor, clear the screen or set the window title; BEL; CR, which overwrites the
 * line; C1 controls such as CSI 0x9b; line separators and bidi overrides, which hide or
 * reorder text) become visible escapes: "\x1b", "\r", "\u202e". Everything else, all
 * other Unicode included, is unchanged.
 */

/** Every character escaped in one-line text (a log record). */
const CONTROLS = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** The same but newline and tab, for multi-line output (the CLI's lines). */
const CONTROLS_BUT_LINES = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** The ones JSON.stringify leaves as they are (it escapes C0 itself). */
const CONTROLS_JSON_KEEPS = /[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** `text` on one line with every control character escaped. */
export function escapeControlChars(text: string): string {
  return text.replace(CONTROLS, escapeOne);
}

/** `text` with every control character but newline and tab escaped. */
export function escapeControlCharsKeepingLines(text: string): string {
  return text.replace(CONTROLS_BUT_LINES, escapeOne);
}

/**
 * JSON text with the controls JSON.stringify leaves raw written as \u escapes: still
 * valid JSON of the same value. They can only occur inside strings (JSON's own syntax is ASCII).
 */
export function escapeControlCharsInJson(json: string): string {
  return json.replace(CONTROLS_JSON_KEEPS, (c) => `\\u${hex(c, 4)}`);
}

function escapeOne(c: string): string {
  return NAMED[c] ?? (c.charCodeAt(0) <= 0xff ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`);
}

function hex(c: string, digits: number): string {
  return c.charCodeAt(0).toString(16).padStart(digits, "0");
}

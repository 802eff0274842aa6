/**
 * What a host function (or a guest logger) threw, as text. The value is the user's, not ours: its
 * `message` getter, toString or proxy traps may throw, and that must not escape as a raw
 * error in place of this one.
 */
export function describeThrown(value: unknown): string {
  try {
    if (value instanceof Error) return String(value.message);
    return String(value);
  } catch {
    return `a value that cannot be printed (${typeof value})`;
  }
}

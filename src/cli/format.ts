/** Text formatting for the CLI: byte sizes, short digests, aligned tables. */

/** 512 B, 4.0 KiB, 64.0 MiB, 1.50 GiB. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

/** "sha256:" and the first 12 hex digits: what `ls` shows; refs accept such a prefix. */
export function shortDigest(digest: string): string {
  return digest.slice(0, "sha256:".length + 12);
}

/** Columns padded to their widest cell; the last column is not padded. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (cells: readonly string[]): string => cells.map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(widths[c]!))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)];
}

/** 2025-01-31T12:00:00.123Z → 2025-01-31 12:00:00Z */
export function formatDate(iso: string): string {
  return iso.replace("T", " ").replace(/\.\d+Z$/, "Z");
}

/**
 * The runnable parts of a Markdown document, so tests can run the docs as a reader would:
 * a fenced block right after a line "`path`:" is a file to write; a ```sh block holds
 * commands, one a line; a ```text block right after a ```sh block is output the commands
 * must print (each line somewhere in it, "…" standing for anything). Other blocks are
 * illustrations and are left alone.
 */

export type DocStep =
  | { readonly kind: "file"; readonly path: string; readonly text: string }
  | { readonly kind: "commands"; readonly lines: string[]; expect: string[] };

const FENCE = /^```(\S*)\s*$/;
const FILE_LABEL = /^`([^`\s]+)`:$/;

export function docSteps(markdown: string): DocStep[] {
  const lines = markdown.split("\n");
  const steps: DocStep[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const start = i + 1;
    while (i + 1 < lines.length && lines[++i] !== "```");
    const body = lines.slice(start, i);
    const label = FILE_LABEL.exec(previousText(lines, start - 1) ?? "");
    const last = steps[steps.length - 1];
    if (label) steps.push({ kind: "file", path: label[1]!, text: `${body.join("\n")}\n` });
    else if (open[1] === "sh") steps.push({ kind: "commands", lines: body.map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#")), expect: [] });
    else if (open[1] === "text" && last?.kind === "commands" && last.expect.length === 0 && previousText(lines, start - 1) === "```") last.expect = body;
  }
  return steps;
}

/** The non-blank line before `index`. */
function previousText(lines: readonly string[], index: number): string | undefined {
  for (let i = index - 1; i >= 0; i--) if (lines[i]!.trim() !== "") return lines[i];
  return undefined;
}

/** The part of a document under a "## " heading, up to the next one. */
export function docSection(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`no section "## ${heading}"`);
  const end = markdown.indexOf("\n## ", start + 1);
  return markdown.slice(start, end < 0 ? undefined : end);
}

/** A line of expected output as a pattern: the whole line, "…" matching anything. */
export function outputLine(expected: string): RegExp {
  const escaped = expected.split("…").map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*");
  return new RegExp(`^${escaped}$`, "m");
}

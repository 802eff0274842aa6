/**
 * Command-line parsing for `vmlet`: node:util's parseArgs splits argv into options and
 * positionals; this file adds what it lacks: repeatable `--call <fn> [arg…]` groups,
 * negative numbers as guest arguments, `-h`/`--help` on every command, and messages in
 * vmlet's words. Also `<dir>:<ref>` splitting, sizes and refs. Mistakes are UsageErrors (exit 2).
 */
import util from "node:util";
import { DIGEST_PATTERN, TAG_PATTERN } from "../snapshot/file/format.js";

/** A mistake in how the command was invoked: exit 2 with the command's usage text. */
export class UsageError extends Error {
  constructor(message: string, readonly usage?: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** An expected failure that is not a vmlet library error (e.g. an unreadable @file): exit 1, no stack. */
export class CliFailure extends Error {
  constructor(message: string, readonly code = "ERROR") {
    super(message);
    this.name = "CliFailure";
  }
}

export interface OptionSpec {
  readonly type: "boolean" | "string";
  /** A one-letter alias: `-o` for `--output`. */
  readonly short?: string;
  /** Kept every time it is given (`-I a -I b`), in ParsedArgs.lists; else the last value counts. */
  readonly multiple?: boolean;
  /** What the value is, for the message when it is missing ("a function name"). */
  readonly valueName?: string;
}

export interface CommandSpec {
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** Accept repeatable `--call <fn> [arg…]` groups. */
  readonly calls?: boolean;
  /** Guest-function arguments may appear: a negative number ("-5", "-1.5e3", "-inf") is one of them, not an option. */
  readonly guestArguments?: boolean;
}

export interface CallRequest {
  readonly fn: string;
  readonly args: string[];
}

export interface ParsedArgs {
  readonly positionals: string[];
  /** Options given once: the value, or true for a boolean. */
  readonly flags: Map<string, string | true>;
  /** Options with `multiple`: every value in order. */
  readonly lists: Map<string, string[]>;
  readonly calls: CallRequest[];
  readonly help: boolean;
}

const HELP: OptionSpec = { type: "boolean", short: "h" };
const CALL: OptionSpec = { type: "string", valueName: "a function name" };
const NEGATIVE_NUMBER = /^-(?:\d|\.\d|inf(?:inity)?$|nan$)/i;

/**
 * Splits argv by the command's options. `--name value`, `--name=value`, `-n value` and
 * `-nvalue` all work; `--` ends option parsing, so guest arguments that look like options
 * can follow it. An option the command does not have is a UsageError, and so is a value
 * that is missing or looks like another option.
 */
export function parseArgs(argv: readonly string[], spec: CommandSpec, usage: string): ParsedArgs {
  const options: Record<string, OptionSpec> = { help: HELP, ...(spec.calls ? { call: CALL } : {}), ...spec.options };
  const config = Object.fromEntries(Object.entries(options).map(([name, o]) => [name, o.short ? { type: o.type, short: o.short } : { type: o.type }]));
  // Not strict: parseArgs would reject "-5" and word its own messages; the checks are below.
  // util.parseArgs is a lazy getter of node:util, read here so that `import "vmlet"` never loads it.
  const { tokens } = util.parseArgs({ args: [...argv], options: config, strict: false, allowPositionals: true, tokens: true });
  const parsed: Omit<ParsedArgs, "help"> = { positionals: [], flags: new Map(), lists: new Map(), calls: [] };
  let help = false;
  let group = parsed.positionals;
  let negativeAt = -1;
  for (const token of tokens) {
    if (token.kind === "option-terminator") continue;
    if (token.kind === "positional") {
      group.push(token.value);
      continue;
    }
    const raw = argv[token.index]!;
    const option = Object.hasOwn(options, token.name) ? options[token.name] : undefined; // not "--constructor"
    if (spec.guestArguments && NEGATIVE_NUMBER.test(raw) && option === undefined) {
      if (negativeAt !== token.index) group.push(raw); // parseArgs split "-1.5" into -1 -. -5: one argument
      negativeAt = token.index;
      continue;
    }
    if (option === undefined) throw new UsageError(`unknown option ${token.rawName}${raw === token.rawName ? "" : ` in ${raw}`}`, usage);
    if (option.type === "boolean") {
      if (token.value !== undefined) throw new UsageError(`${token.rawName} takes no value`, usage);
      if (token.name === "help") help = true;
      else parsed.flags.set(token.name, true);
    } else {
      const value = checkedValue(token.value, token.inlineValue === true, `${token.rawName} needs ${option.valueName ?? "a value"}`, usage);
      if (token.name === "call") {
        const call: CallRequest = { fn: value, args: [] };
        parsed.calls.push(call);
        group = call.args;
        continue;
      }
      if (option.multiple) parsed.lists.set(token.name, [...(parsed.lists.get(token.name) ?? []), value]);
      else parsed.flags.set(token.name, value);
    }
    group = parsed.positionals; // an option ends a --call group
  }
  return { ...parsed, help };
}

/** A string option's value: present, not empty, and (unless given as --name=value) not another option. */
function checkedValue(value: string | undefined, inline: boolean, missing: string, usage: string): string {
  if (value === undefined || value === "") throw new UsageError(missing, usage);
  if (!inline && value.startsWith("-") && value !== "-" && !NEGATIVE_NUMBER.test(value)) throw new UsageError(missing, usage);
  return value;
}

/** The value of a string option given once, or undefined. */
export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const value = args.flags.get(name);
  return typeof value === "string" ? value : undefined;
}

/** Exactly `names.length` positionals, else a UsageError naming the first missing or the extra ones. */
export function expectPositionals(args: ParsedArgs, names: readonly string[], usage: string): string[] {
  const p = args.positionals;
  if (p.length < names.length) throw new UsageError(`missing ${names.slice(p.length).map((n) => `<${n}>`).join(" ")}`, usage);
  if (p.length > names.length) throw new UsageError(`unexpected argument${p.length - names.length > 1 ? "s" : ""}: ${p.slice(names.length).join(" ")}`, usage);
  return p;
}

const SIZE = /^(\d+)\s*(?:([kmgt])(?:i?b)?|b)?$/i;
const UNIT: Record<string, number> = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** "1048576", "64M", "64MiB", "2g": bytes. */
export function parseSize(text: string, option: string, usage: string): number {
  const m = SIZE.exec(text.trim());
  if (!m) throw new UsageError(`${option} "${text}" is not a size (bytes, or a number with K, M, G or T: 64M, 1GiB)`, usage);
  const bytes = Number(m[1]) * (m[2] ? UNIT[m[2].toLowerCase()]! : 1);
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`${option} "${text}" is too large`, usage);
  return bytes;
}

/** A positive integer number of milliseconds. */
export function parseMs(text: string, option: string, usage: string): number {
  if (!/^\d+$/.test(text) || Number(text) <= 0 || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`${option} "${text}" is not a positive whole number of milliseconds`, usage);
  }
  return Number(text);
}

export function checkTag(tag: string, usage: string): string {
  if (!TAG_PATTERN.test(tag)) {
    throw new UsageError(`"${tag}" is not a valid tag (letters, digits, _ . -; up to 128 characters; not starting with . or -)`, usage);
  }
  return tag;
}

/** A tag, a full manifest digest, or a digest prefix ("sha256:" and at least 4 hex digits). */
const DIGEST_PREFIX = /^sha256:[a-f0-9]{4,64}$/;

export function checkRef(ref: string, usage: string): string {
  if (TAG_PATTERN.test(ref) || DIGEST_PATTERN.test(ref) || DIGEST_PREFIX.test(ref)) return ref;
  throw new UsageError(`"${ref}" is neither a tag nor a manifest digest (sha256:<hex>, at least 4 hex digits)`, usage);
}

export const isDigestPrefix = (ref: string): boolean => DIGEST_PREFIX.test(ref) && !DIGEST_PATTERN.test(ref);

/**
 * Splits "<dir>:<ref>". The ref starts after the last colon, unless that colon belongs to
 * a "sha256:<hex>" digest, in which case it starts at "sha256:". So "./snaps:base",
 * "./snaps:sha256:ab12…" and "/a:b/snaps:base" all split as expected.
 */
export function splitDirRef(text: string, usage: string): { dir: string; ref: string } {
  const digest = /^(.*):(sha256:[^:]*)$/.exec(text);
  let dir: string;
  let ref: string;
  if (digest) {
    dir = digest[1]!;
    ref = digest[2]!;
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) throw new UsageError(`"${text}" is not <dir>:<ref> (e.g. ./snaps:base or ./snaps:sha256:…)`, usage);
    dir = text.slice(0, colon);
    ref = text.slice(colon + 1);
  }
  if (dir === "") throw new UsageError(`"${text}" has no directory before the colon`, usage);
  if (ref === "") throw new UsageError(`"${text}" has no tag or digest after the colon`, usage);
  return { dir, ref: checkRef(ref, usage) };
}

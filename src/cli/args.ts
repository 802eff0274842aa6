/**
 * Command-line parsing for `vmlet`: flags, repeatable `--call <fn> [arg…]` groups,
 * `<dir>:<ref>` splitting, sizes and refs. Mistakes are UsageErrors (exit 2).
 */
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

export type FlagKind = "boolean" | "value";

export interface ArgSpec {
  readonly flags: Readonly<Record<string, FlagKind>>;
  /** Accept repeatable `--call <fn> [arg…]` groups. */
  readonly calls?: boolean;
}

export interface CallRequest {
  readonly fn: string;
  readonly args: string[];
}

export interface ParsedArgs {
  readonly positionals: string[];
  readonly flags: Map<string, string | true>;
  readonly calls: CallRequest[];
  readonly help: boolean;
}

/**
 * Splits argv into positionals, flags and call groups. A token is a flag only if it is
 * one of the command's flags (`--name`, `--name=value`); `--` ends option parsing, so
 * guest arguments that look like options can follow it. Other `--x` tokens are errors.
 */
export function parseArgs(argv: readonly string[], spec: ArgSpec, usage: string): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  const calls: CallRequest[] = [];
  let help = false;
  let current: string[] = positionals;
  let literal = false;
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (literal) {
      current.push(token);
      continue;
    }
    if (token === "--") {
      literal = true;
      continue;
    }
    if (token === "--help" || token === "-h") {
      help = true;
      continue;
    }
    if (spec.calls && token === "--call") {
      const fn = argv[i + 1];
      if (fn === undefined || fn.startsWith("--")) throw new UsageError("--call needs a function name", usage);
      const call: CallRequest = { fn, args: [] };
      calls.push(call);
      current = call.args;
      i++;
      continue;
    }
    if (token.startsWith("--") && token.length > 2) {
      const eq = token.indexOf("=");
      const name = token.slice(2, eq < 0 ? undefined : eq);
      const kind = spec.flags[name];
      if (kind === undefined) throw new UsageError(`unknown option --${name}`, usage);
      if (kind === "boolean") {
        if (eq >= 0) throw new UsageError(`--${name} takes no value`, usage);
        flags.set(name, true);
      } else {
        const value = eq >= 0 ? token.slice(eq + 1) : argv[++i];
        if (value === undefined || value === "") throw new UsageError(`--${name} needs a value`, usage);
        flags.set(name, value);
      }
      current = positionals; // an option ends a --call group
      continue;
    }
    current.push(token);
  }
  return { positionals, flags, calls, help };
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

/**
 * Deterministic inputs for the zstd guest's test and benchmark: the same bytes on every
 * run and machine, with the kinds of redundancy real data has.
 */

/** A seeded generator (xorshift32). */
export function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** Incompressible bytes. */
export function randomBytes(n: number, seed: number): Uint8Array {
  const next = random(seed);
  return Uint8Array.from({ length: n }, () => next() & 255);
}

/** Text with the repetition real text has: words drawn from a small vocabulary. */
export function text(n: number, seed: number): Uint8Array {
  const words = ["sandbox", "guest", "host", "snapshot", "restore", "memory", "page", "call", "the", "a", "of", "zstd", "frame", "\n"];
  const next = random(seed);
  const parts: string[] = [];
  for (let length = 0; length < n; ) {
    const word = `${words[next() % words.length]} `;
    parts.push(word);
    length += word.length;
  }
  return new TextEncoder().encode(parts.join("").slice(0, n));
}

/** JSON lines of numbers and names, as a log or a table dump has them. */
export function records(n: number, seed: number): Uint8Array {
  const next = random(seed);
  const lines: string[] = [];
  for (let i = 0, length = 0; length < n; i++) {
    const line = `{"id":${i},"user":"u${next() % 500}","amount":${(next() % 100000) / 100},"ok":${next() % 2 === 0}}\n`;
    lines.push(line);
    length += line.length;
  }
  return new TextEncoder().encode(lines.join("").slice(0, n));
}

/** The benchmark's corpus: JSON lines, text and some incompressible bytes, in that order. */
export function benchCorpus(n: number): Uint8Array {
  const corpus = new Uint8Array(n);
  corpus.set(records(n >> 1, 11), 0);
  corpus.set(text(n >> 2, 12), n >> 1);
  corpus.set(randomBytes(n - (n >> 1) - (n >> 2), 13), (n >> 1) + (n >> 2));
  return corpus;
}

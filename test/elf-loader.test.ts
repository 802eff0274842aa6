/**
 * Tests for the guest ELF loader: a small in-test ELF64 builder produces valid
 * images and targeted corruptions; every rejection must be a BadGuestBinaryError
 * that names the problem. Also parses a real gcc-built static binary and fuzzes
 * the parser with seeded random mutations.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadElf, parseElf, readSymbols, type ElfLimits } from "../src/mem/elf.js";
import { tlsBlockSize } from "../src/mem/thread-block.js";
import { BadGuestBinaryError } from "../src/errors/errors.js";

const PF_X = 1;
const PF_W = 2;
const PF_R = 4;
const PT_LOAD = 1;
const PT_INTERP = 3;
const PT_NOTE = 4;
const PT_TLS = 7;
const PT_GNU_STACK = 0x6474e551;
const STT_OBJECT = 1;
const STT_FUNC = 2;
const STT_FILE = 4;

const LIMITS: ElfLimits = { minAddress: 0x100000, maxAddress: 0x200000 };

interface SegmentSpec {
  type?: number;
  flags?: number;
  vaddr: number | bigint;
  data?: Uint8Array;
  /** Defaults to data.length. */
  memSize?: number | bigint;
  /** Overrides p_filesz (defaults to data.length). */
  fileSize?: number | bigint;
  /** Overrides p_offset (defaults to where the data was placed). */
  offset?: number | bigint;
  align?: number | bigint;
}

interface SymbolSpec {
  name: string;
  value: number;
  size: number;
  kind: number;
}

interface ElfSpec {
  segments: SegmentSpec[];
  entry?: number | bigint;
  machine?: number;
  type?: number;
  symbols?: SymbolSpec[];
}

/** Builds ELF64 little-endian bytes: header, program headers, segment data, then an optional symtab. */
function buildElf(spec: ElfSpec): Uint8Array {
  const phoff = 64;
  let cursor = phoff + spec.segments.length * 56;
  const placed = spec.segments.map((s) => {
    const data = s.data ?? new Uint8Array();
    const at = cursor;
    cursor += data.length;
    return { spec: s, data, at };
  });
  const strtab = symbolStrings(spec.symbols ?? []);
  const symtabAt = cursor;
  const symtabSize = spec.symbols === undefined ? 0 : (spec.symbols.length + 1) * 24;
  const strtabAt = symtabAt + symtabSize;
  const shoff = spec.symbols === undefined ? 0 : strtabAt + strtab.bytes.length;
  const total = spec.symbols === undefined ? cursor : shoff + 3 * 64;

  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  bytes.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  view.setUint16(16, spec.type ?? 2, true);
  view.setUint16(18, spec.machine ?? 62, true);
  view.setUint32(20, 1, true);
  view.setBigUint64(24, BigInt(spec.entry ?? 0x100000), true);
  view.setBigUint64(32, BigInt(phoff), true);
  view.setBigUint64(40, BigInt(shoff), true);
  view.setUint16(52, 64, true);
  view.setUint16(54, 56, true);
  view.setUint16(56, spec.segments.length, true);
  view.setUint16(58, 64, true);
  view.setUint16(60, shoff === 0 ? 0 : 3, true);

  placed.forEach(({ spec: s, data, at }, i) => {
    const ph = phoff + i * 56;
    view.setUint32(ph, s.type ?? PT_LOAD, true);
    view.setUint32(ph + 4, s.flags ?? PF_R, true);
    view.setBigUint64(ph + 8, BigInt(s.offset ?? at), true);
    view.setBigUint64(ph + 16, BigInt(s.vaddr), true);
    view.setBigUint64(ph + 24, BigInt(s.vaddr), true);
    view.setBigUint64(ph + 32, BigInt(s.fileSize ?? data.length), true);
    view.setBigUint64(ph + 40, BigInt(s.memSize ?? data.length), true);
    view.setBigUint64(ph + 48, BigInt(s.align ?? 0x1000), true);
    bytes.set(data, at);
  });

  if (spec.symbols !== undefined) {
    spec.symbols.forEach((sym, i) => {
      const at = symtabAt + (i + 1) * 24; // entry 0 stays the null symbol
      view.setUint32(at, strtab.offsets[i] ?? 0, true);
      view.setUint8(at + 4, (1 << 4) | sym.kind); // STB_GLOBAL
      view.setUint16(at + 6, 1, true);
      view.setBigUint64(at + 8, BigInt(sym.value), true);
      view.setBigUint64(at + 16, BigInt(sym.size), true);
    });
    bytes.set(strtab.bytes, strtabAt);
    writeSection(view, shoff + 64, { type: 2, offset: symtabAt, size: symtabSize, link: 2, entsize: 24 });
    writeSection(view, shoff + 128, { type: 3, offset: strtabAt, size: strtab.bytes.length, link: 0, entsize: 0 });
  }
  return bytes;
}

function symbolStrings(symbols: SymbolSpec[]): { bytes: Uint8Array; offsets: number[] } {
  const encoder = new TextEncoder();
  const parts: number[] = [0];
  const offsets = symbols.map((s) => {
    const offset = parts.length;
    parts.push(...encoder.encode(s.name), 0);
    return offset;
  });
  return { bytes: Uint8Array.from(parts), offsets };
}

function writeSection(
  view: DataView,
  at: number,
  s: { type: number; offset: number; size: number; link: number; entsize: number },
): void {
  view.setUint32(at + 4, s.type, true);
  view.setBigUint64(at + 24, BigInt(s.offset), true);
  view.setBigUint64(at + 32, BigInt(s.size), true);
  view.setUint32(at + 40, s.link, true);
  view.setBigUint64(at + 56, BigInt(s.entsize), true);
}

const CODE = Uint8Array.from([0xeb, 0xfe, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90]); // jmp . ; nops
const DATA = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);

/** A valid image: R-X text page, then RW- data with a bss tail, plus a small symtab. */
function validSpec(): ElfSpec {
  return {
    entry: 0x100000,
    segments: [
      { vaddr: 0x100000, flags: PF_R | PF_X, data: CODE },
      { vaddr: 0x101000, flags: PF_R | PF_W, data: DATA, memSize: 0x100 },
      { type: PT_GNU_STACK, vaddr: 0, flags: PF_R | PF_W, align: 16 },
    ],
    symbols: [
      { name: "_start", value: 0x100000, size: 2, kind: STT_FUNC },
      { name: "counter", value: 0x101000, size: 8, kind: STT_OBJECT },
      { name: "guest.c", value: 0, size: 0, kind: STT_FILE },
    ],
  };
}

function withSegments(segments: SegmentSpec[], entry: number | bigint = 0x100000): Uint8Array {
  return buildElf({ entry, segments });
}

function assertRejected(bytes: Uint8Array, problem: RegExp, limits: ElfLimits = LIMITS): void {
  assert.throws(
    () => parseElf(bytes, limits),
    (err: unknown) => {
      assert.ok(err instanceof BadGuestBinaryError, `expected BadGuestBinaryError, got ${String(err)}`);
      assert.equal(err.code, "BAD_GUEST_BINARY");
      assert.match(err.message, problem);
      return true;
    },
  );
}

test("a valid two-segment image parses and loads with bytes copied and bss zero-filled", () => {
  const bytes = buildElf(validSpec());
  const image = parseElf(bytes, LIMITS);
  assert.equal(image.entry, 0x100000);
  assert.equal(image.start, 0x100000);
  assert.equal(image.end, 0x102000);
  assert.equal(image.segments.length, 2, "PT_GNU_STACK is ignored");
  const [text, data] = image.segments;
  assert.deepEqual(
    { ...text, fileOffset: 0 },
    { vaddr: 0x100000, memSize: 8, fileSize: 8, fileOffset: 0, readable: true, writable: false, executable: true },
  );
  assert.deepEqual(
    { ...data, fileOffset: 0 },
    { vaddr: 0x101000, memSize: 0x100, fileSize: 8, fileOffset: 0, readable: true, writable: true, executable: false },
  );

  const memory = new Uint8Array(0x2000).fill(0xcc);
  loadElf(image, bytes, memory, 0x100000);
  assert.deepEqual(memory.subarray(0, 8), CODE);
  assert.deepEqual(memory.subarray(0x1000, 0x1008), DATA);
  assert.ok(memory.subarray(0x1008, 0x1100).every((b) => b === 0), "bss is zero-filled");
  assert.equal(memory[0x1100], 0xcc, "bytes past memSize are untouched");
});

test("readSymbols keeps named function and object symbols", () => {
  const symbols = readSymbols(buildElf(validSpec()));
  assert.deepEqual(symbols, [
    { name: "_start", value: 0x100000, size: 2, isFunction: true },
    { name: "counter", value: 0x101000, size: 8, isFunction: false },
  ]);
});

test("readSymbols returns nothing for a stripped binary", () => {
  const spec = validSpec();
  delete spec.symbols;
  assert.deepEqual(readSymbols(buildElf(spec)), []);
});

test("readSymbols rejects a symbol table past end of file", () => {
  const bytes = buildElf(validSpec());
  const view = new DataView(bytes.buffer);
  const shoff = Number(view.getBigUint64(40, true));
  view.setBigUint64(shoff + 64 + 32, 0x10000n, true); // .symtab sh_size
  assert.throws(() => readSymbols(bytes), (err: unknown) => err instanceof BadGuestBinaryError && /symtab.*past end of file/.test(err.message));
});

test("loadElf rejects a segment that does not fit guest memory", () => {
  const bytes = buildElf(validSpec());
  const image = parseElf(bytes, LIMITS);
  assert.throws(() => loadElf(image, bytes, new Uint8Array(0x1000), 0x100000), BadGuestBinaryError);
});

test("rejects a file shorter than the ELF header", () => {
  assertRejected(buildElf(validSpec()).subarray(0, 63), /shorter than the 64-byte ELF header/);
});

test("rejects truncated program headers", () => {
  assertRejected(buildElf(validSpec()).subarray(0, 64 + 56), /program header table.*past end of file/);
});

test("rejects bad magic", () => {
  const bytes = buildElf(validSpec());
  bytes[1] = 0x46;
  assertRejected(bytes, /magic/);
});

test("rejects a 32-bit class", () => {
  const bytes = buildElf(validSpec());
  bytes[4] = 1;
  assertRejected(bytes, /ELFCLASS64/);
});

test("rejects big-endian", () => {
  const bytes = buildElf(validSpec());
  bytes[5] = 2;
  assertRejected(bytes, /little-endian/);
});

test("rejects the wrong architecture (aarch64)", () => {
  assertRejected(buildElf({ ...validSpec(), machine: 183 }), /wrong architecture.*183/);
});

test("rejects ET_DYN as position-independent", () => {
  assertRejected(buildElf({ ...validSpec(), type: 3 }), /position-independent guests are not supported/);
});

test("rejects a segment past end of file", () => {
  assertRejected(withSegments([{ vaddr: 0x100000, flags: PF_R | PF_X, data: CODE, fileSize: 0x1000, memSize: 0x1000 }]), /segment 0.*past end of file/);
});

test("rejects fileSize greater than memSize", () => {
  assertRejected(withSegments([{ vaddr: 0x100000, flags: PF_R | PF_X, data: CODE, memSize: 4 }]), /fileSize 0x8 exceeds memSize 0x4/);
});

test("rejects a segment below minAddress", () => {
  assertRejected(withSegments([{ vaddr: 0xff000, flags: PF_R | PF_X, data: CODE }], 0xff000), /below minAddress/);
});

test("rejects a segment above maxAddress", () => {
  assertRejected(withSegments([{ vaddr: 0x1ff000, flags: PF_R | PF_X, data: CODE, memSize: 0x2000 }], 0x1ff000), /above maxAddress/);
});

test("rejects address overflow near 2^64", () => {
  const vaddr = (1n << 64n) - 0x1000n;
  assertRejected(withSegments([{ vaddr, flags: PF_R | PF_X, data: CODE, memSize: 0x2000 }], vaddr), /overflows the address space/);
});

test("rejects overlapping segments", () => {
  const segments = [
    { vaddr: 0x100000, flags: PF_R | PF_X, data: CODE, memSize: 0x2000 },
    { vaddr: 0x101000, flags: PF_R, data: DATA },
  ];
  assertRejected(withSegments(segments), /segments 0 and 1 overlap/);
});

test("rejects two segments sharing a page", () => {
  const segments = [
    { vaddr: 0x100800, flags: PF_R | PF_W, data: DATA },
    { vaddr: 0x100000, flags: PF_R | PF_X, data: CODE },
  ];
  assertRejected(withSegments(segments), /segments 1 and 0 share a page/);
});

test("rejects a writable and executable segment (W^X)", () => {
  assertRejected(withSegments([{ vaddr: 0x100000, flags: PF_R | PF_W | PF_X, data: CODE }]), /writable and executable/);
});

test("rejects an entry point outside every executable segment", () => {
  assertRejected(buildElf({ ...validSpec(), entry: 0x101000 }), /entry point 0x101000 is not inside an executable segment/);
});

test("rejects PT_INTERP as dynamically linked", () => {
  const spec = validSpec();
  spec.segments.push({ type: PT_INTERP, vaddr: 0, data: new TextEncoder().encode("/lib/ld.so\0") });
  assertRejected(buildElf(spec), /dynamically linked/);
});

test("rejects an image with zero PT_LOAD segments", () => {
  assertRejected(withSegments([{ type: PT_NOTE, vaddr: 0, data: DATA }]), /no PT_LOAD/);
});

test("rejects too many PT_LOAD segments", () => {
  const segments = Array.from({ length: 65 }, (_, i) => ({ vaddr: 0x100000 + i * 0x1000, flags: PF_R | PF_X, data: CODE }));
  assertRejected(withSegments(segments), /too many PT_LOAD segments \(65/);
});

test("rejects p_align that is not a power of two", () => {
  assertRejected(withSegments([{ vaddr: 0x100000, flags: PF_R | PF_X, data: CODE, align: 3 }]), /p_align.*power of two/);
});

/** The valid image plus a PT_TLS segment (its initial image is the data segment's bytes unless `data` says otherwise). */
function withTls(tls: Partial<SegmentSpec>): Uint8Array {
  const spec = validSpec();
  spec.segments.push({ type: PT_TLS, vaddr: 0x101000, flags: PF_R, data: DATA, memSize: 0x40, align: 8, ...tls });
  return buildElf(spec);
}

describe("PT_TLS", () => {
  test("is read: its file bytes, memory size and alignment; an image without one has none", () => {
    assert.equal(parseElf(buildElf(validSpec()), LIMITS).tls, undefined);
    const tls = parseElf(withTls({}), LIMITS).tls;
    assert.deepEqual({ ...tls, fileOffset: 0 }, { fileOffset: 0, fileSize: 8, memSize: 0x40, align: 8 });
    assert.equal(tlsBlockSize(tls), 0x40);
    assert.equal(tlsBlockSize(parseElf(withTls({ memSize: 0x41, align: 16 }), LIMITS).tls), 0x50, "rounded up to its alignment");
    assert.equal(parseElf(withTls({ align: 0, data: new Uint8Array(), memSize: 0 }), LIMITS).tls?.align, 1, "p_align 0 means no alignment");
  });

  const hostile: Array<[string, Partial<SegmentSpec>, RegExp]> = [
    ["a file size above its memory size", { memSize: 4 }, /PT_TLS segment 3: fileSize 0x8 exceeds memSize 0x4/],
    ["a file range past the end of the file", { offset: 0x100000 }, /PT_TLS segment 3: file range .* past end of file/],
    ["a huge file size", { fileSize: 2n ** 63n, memSize: 2n ** 64n - 1n }, /PT_TLS segment 3: file range .* past end of file/],
    ["a memory size a double cannot hold", { memSize: 2n ** 60n }, /PT_TLS segment 3 memSize .* too large/],
    ["an alignment that is not a power of two", { align: 24 }, /PT_TLS segment 3: p_align 0x18 is not a power of two/],
    ["an alignment above a page", { align: 0x2000, vaddr: 0x102000 }, /PT_TLS segment 3: p_align 0x2000 is above the page size/],
    ["a vaddr off its alignment", { vaddr: 0x101004 }, /PT_TLS segment 3: vaddr 0x101004 is not a multiple of p_align 0x8/],
  ];
  for (const [name, tls, problem] of hostile) {
    test(`rejects ${name}`, () => assertRejected(withTls(tls), problem));
  }

  test("rejects two PT_TLS segments", () => {
    const spec = validSpec();
    for (let i = 0; i < 2; i++) spec.segments.push({ type: PT_TLS, vaddr: 0x101000, flags: PF_R, data: DATA, align: 8 });
    assertRejected(buildElf(spec), /2 PT_TLS segments \(at most one\)/);
  });

  test("thread-local data larger than the area below the thread pointer is a BadGuestBinaryError", () => {
    const tls = parseElf(withTls({ memSize: 1 << 20 }), LIMITS).tls;
    assert.throws(() => tlsBlockSize(tls), (e: unknown) => e instanceof BadGuestBinaryError && /does not fit the \d+ bytes/.test(e.message));
  });
});

test("parses a real gcc-built static ELF", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vmlet-elf-"));
  try {
    const source = join(dir, "guest.c");
    const binary = join(dir, "guest");
    writeFileSync(source, "void _start(void){for(;;);}\n");
    try {
      execFileSync("gcc", [
        "-static", "-nostdlib", "-ffreestanding", "-fno-pie", "-no-pie",
        "-Wl,-Ttext-segment=0x100000", "-Wl,--build-id=none", "-o", binary, source,
      ], { stdio: "pipe" });
    } catch (err) {
      t.skip(`gcc unavailable: ${String(err)}`);
      return;
    }
    const bytes = new Uint8Array(readFileSync(binary));
    const image = parseElf(bytes, { minAddress: 0x100000, maxAddress: 0x40000000 });
    assert.ok(image.entry >= 0x100000 && image.entry < image.end, `entry 0x${image.entry.toString(16)}`);
    assert.ok(image.start >= 0x100000);
    const start = readSymbols(bytes).find((s) => s.name === "_start");
    assert.ok(start?.isFunction, "_start is a function symbol");
    assert.equal(start.value, image.entry);
    const memory = new Uint8Array(image.end - image.start);
    loadElf(image, bytes, memory, image.start);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** mulberry32: small, deterministic PRNG so fuzz failures reproduce. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff];

/** One random corruption: a byte, a 64-bit extreme, or a truncation; biased toward the headers. */
function mutate(base: Uint8Array, random: () => number): Uint8Array {
  let bytes = base.slice();
  const edits = 1 + Math.floor(random() * 4);
  for (let e = 0; e < edits; e++) {
    const headerBiased = random() < 0.6 ? Math.min(bytes.length, 64 + 3 * 56) : bytes.length;
    const at = Math.floor(random() * headerBiased);
    const choice = random();
    if (choice < 0.5) {
      bytes[at] = Math.floor(random() * 256);
    } else if (choice < 0.75) {
      bytes[at] = INTERESTING[Math.floor(random() * INTERESTING.length)] ?? 0;
    } else if (choice < 0.95) {
      const aligned = at - (at % 8);
      if (aligned + 8 <= bytes.length) {
        const extremes = [0n, 0xffffffffffffffffn, 1n << 63n, BigInt(Number.MAX_SAFE_INTEGER) + 1n, 0x100000n];
        new DataView(bytes.buffer).setBigUint64(aligned, extremes[Math.floor(random() * extremes.length)] ?? 0n, true);
      }
    } else {
      bytes = bytes.slice(0, at);
    }
  }
  return bytes;
}

test("2000 random mutations either parse or throw BadGuestBinaryError", () => {
  const base = buildElf(validSpec());
  const random = prng(0x5eed);
  const memory = new Uint8Array(LIMITS.maxAddress - LIMITS.minAddress);
  let parsed = 0;
  let rejected = 0;
  for (let i = 0; i < 2000; i++) {
    const bytes = mutate(base, random);
    for (const attempt of [
      () => loadElf(parseElf(bytes, LIMITS), bytes, memory, LIMITS.minAddress),
      () => readSymbols(bytes),
    ]) {
      try {
        attempt();
        parsed++;
      } catch (err) {
        if (!(err instanceof BadGuestBinaryError)) {
          assert.fail(`mutation ${i} threw ${err instanceof Error ? err.stack : String(err)}`);
        }
        rejected++;
      }
    }
  }
  assert.ok(parsed > 0 && rejected > 0, `parsed ${parsed}, rejected ${rejected}`);
});

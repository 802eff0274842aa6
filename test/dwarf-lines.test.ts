/**
 * The .debug_line decoder (src/debug/dwarf-lines.ts) agrees with binutils' addr2line on the
 * guests gcc builds here (DWARF 5, with the SDK's assembly) and on a small program built
 * with DWARF 4 and with DWARF 5; damaged tables are BadGuestBinaryErrors, never anything else.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { BadGuestBinaryError } from "../src/index.js";
import { LineTable } from "../src/debug/dwarf-lines.js";
import { readNamedSections } from "../src/debug/elf-sections.js";
import { readSymbols } from "../src/mem/elf.js";
import { guestPath } from "./helpers.js";

const hasAddr2line = spawnSync("addr2line", ["--version"]).status === 0;
const needsBinutils = hasAddr2line ? {} : { skip: "addr2line is not installed (binutils)" };
const hasGdb = spawnSync("gdb", ["--version"]).status === 0;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-dwarf-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function lineTable(elf: Uint8Array): LineTable {
  const sections = readNamedSections(elf);
  const debugLine = sections.get(".debug_line");
  assert.ok(debugLine, "the ELF has .debug_line");
  return LineTable.decode(debugLine, { lineStr: sections.get(".debug_line_str"), str: sections.get(".debug_str") });
}

/** A few addresses in every function: its first byte, and some bytes into it. */
function sampleAddresses(elf: Uint8Array): number[] {
  const addresses = new Set<number>();
  for (const f of readSymbols(elf).filter((s) => s.isFunction)) {
    for (const offset of [0, 1, 5, 13, 40]) if (offset < Math.max(f.size, 1)) addresses.add(f.value + offset);
  }
  return [...addresses].sort((a, b) => a - b);
}

/** addr2line's file:line for each address ("??:0" and "??:?" when it knows none). */
function addr2line(file: string, addresses: number[]): string[] {
  const r = spawnSync("addr2line", ["-e", file, ...addresses.map((a) => `0x${a.toString(16)}`)], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trimEnd().split("\n").map((l) => l.replace(/ \(discriminator \d+\)$/, ""));
}

/** gdb's `info line *address`, as basename:line. */
function gdbLine(file: string, address: number): string {
  const r = spawnSync("gdb", ["-batch", "-nx", "-ex", `info line *0x${address.toString(16)}`, file], { encoding: "utf8" });
  const m = /Line (\d+) of "([^"]+)"/.exec(r.stdout);
  return m ? `${path.basename(m[2] ?? "")}:${m[1]}` : `gdb: ${r.stdout}${r.stderr}`;
}

/**
 * addr2line 2.40 names the compilation unit's own file for out-of-line copies of a header's
 * static inline functions in DWARF 5 (file entry 1 is the header there); gdb and readelf name
 * the header. Where addr2line disagrees only on the file, gdb decides.
 */
function assertMatchesAddr2line(file: string): number {
  const elf = fs.readFileSync(file);
  const table = lineTable(elf);
  const addresses = sampleAddresses(elf);
  const expected = addr2line(file, addresses);
  let known = 0;
  addresses.forEach((address, i) => {
    const found = table.lookup(address);
    const ours = found ? `${found.file}:${found.line}` : "??";
    const theirs = expected[i] ?? "";
    if (theirs.startsWith("??:")) return assert.equal(ours, "??", `0x${address.toString(16)}: addr2line knows no line`);
    known++;
    if (ours !== theirs && found && theirs.endsWith(`:${found.line}`) && hasGdb) {
      return assert.equal(`${path.basename(found.file)}:${found.line}`, gdbLine(file, address), `0x${address.toString(16)} (gdb)`);
    }
    assert.equal(ours, theirs, `0x${address.toString(16)}`);
  });
  return known;
}

for (const guest of ["profiled", "debuggee", "demo"]) {
  test(`${guest}.elf (DWARF 5, C and assembly): every sampled address matches addr2line`, needsBinutils, () => {
    assert.ok(assertMatchesAddr2line(guestPath(guest)) > 50, "most sampled addresses have lines");
  });
}

for (const version of [4, 5]) {
  test(`a program built with -gdwarf-${version}: every sampled address matches addr2line`, needsBinutils, () => {
    const source = path.join(dir, `v${version}.c`);
    fs.writeFileSync(source, [
      "static int square(int x) { return x * x; }",
      "__attribute__((noinline)) int sum(int n) {",
      "  int s = 0;",
      "  for (int i = 0; i < n; i++)",
      "    s += square(i);",
      "  return s;",
      "}",
      "void _start(void) { for (;;) sum(10); }",
      "",
    ].join("\n"));
    const out = path.join(dir, `v${version}.elf`);
    const cc = spawnSync("gcc", ["-O1", `-gdwarf-${version}`, "-nostdlib", "-static", "-fno-pie", "-no-pie", "-o", out, source], { encoding: "utf8" });
    assert.equal(cc.status, 0, cc.stderr);
    assert.ok(assertMatchesAddr2line(out) >= 5);
  });
}

test("damaged line tables are BadGuestBinaryErrors and never anything else", () => {
  const sections = readNamedSections(fs.readFileSync(guestPath("profiled")));
  const original = sections.get(".debug_line");
  assert.ok(original);
  const strings = { lineStr: sections.get(".debug_line_str"), str: sections.get(".debug_str") };
  let seed = 12345;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  let rejected = 0;
  for (let round = 0; round < 300; round++) {
    const damaged = Uint8Array.from(original.subarray(0, round % 3 === 0 ? random(original.length) : original.length));
    for (let flips = 0; flips < 1 + random(8); flips++) if (damaged.length > 0) damaged[random(damaged.length)] = random(256);
    try {
      LineTable.decode(damaged, strings).lookup(0x100010);
    } catch (error) {
      assert.ok(error instanceof BadGuestBinaryError, `round ${round}: ${String(error)}`);
      rejected++;
    }
  }
  assert.ok(rejected > 0, "some damage is detected");
  assert.throws(() => LineTable.decode(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0)), BadGuestBinaryError);
});

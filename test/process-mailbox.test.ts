/**
 * The process backend's mailbox as the child (native/process/mailbox.h, C) and the host
 * (src/hypervisor/process/mailbox.ts) see it: every offset the host reads or writes is the
 * C struct's own, measured by compiling the header, so neither side can move a field alone.
 * Runs without a backend (it needs gcc, which the build needs anyway).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { CONTROL_ADDRESS, MAX_PREFAULT_RANGES, MB, PARK_SET_FS_PC, SIGNAL_STACK } from "../src/hypervisor/process/mailbox.js";
import { repoRoot } from "./helpers.js";

/** The host's name of each field, and the C member it mirrors. */
const FIELDS: ReadonlyArray<readonly [keyof typeof MB, string]> = [
  ["state", "state"], ["interrupt", "interrupt"], ["trackWrites", "track_writes"], ["writeTracking", "write_tracking"],
  ["signo", "signo"], ["code", "code"], ["address", "address"], ["trapno", "trapno"], ["error", "error"],
  ["syscall", "syscall"], ["exits", "exits"], ["regs", "regs"], ["frameXfeatures", "frame_xfeatures"],
  ["frameXstateSize", "frame_xstate_size"], ["xsaveSize", "xsave_size"], ["memorySizePages", "memory_size_pages"],
  ["mapCount", "map_count"], ["hugePages", "huge_pages"], ["maps", "maps"], ["fsBase", "fs_base"], ["gsBase", "gs_base"],
  ["prefaultCount", "prefault_count"], ["prefaultWrites", "prefault_writes"], ["prefault", "prefault"], ["xsave", "xsave"],
];

function measured(): Record<string, number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vmlet-mailbox-"));
  try {
    const source = path.join(dir, "offsets.c");
    const lines = [
      "#include <stddef.h>", "#include <stdint.h>", "#include <stdio.h>", '#include "mailbox.h"', "int main(void) {", 'printf("{");',
      ...FIELDS.map(([, c]) => `printf("\\"${c}\\": %zu, ", offsetof(struct mailbox, ${c}));`),
      'printf("\\"map_entry\\": %zu, ", sizeof(struct mb_map));',
      'printf("\\"prefault_entry\\": %zu, \\"max_prefault\\": %d, ", sizeof(struct mb_range), MB_MAX_PREFAULT);',
      'printf("\\"control\\": %llu, \\"park_set_fs_pc\\": %llu, \\"signal_stack\\": %llu, \\"signal_stack_size\\": %llu}\\n", (unsigned long long)CONTROL_ADDR, (unsigned long long)PARK_SET_FS_PC, (unsigned long long)SIGNAL_STACK_OFFSET, (unsigned long long)SIGNAL_STACK_SIZE);',
      "return 0; }",
    ];
    fs.writeFileSync(source, `${lines.join("\n")}\n`);
    const binary = path.join(dir, "offsets");
    execFileSync("gcc", ["-I", path.join(repoRoot, "native/process"), source, "-o", binary]);
    return JSON.parse(execFileSync(binary, { encoding: "utf8" })) as Record<string, number>;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test("every mailbox offset the host uses is the C struct's, and so are the control memfd's addresses", () => {
  const c = measured();
  for (const [host, member] of FIELDS) assert.equal(MB[host], c[member], `${host} (C ${member})`);
  assert.equal(MB.mapEntrySize, c.map_entry, "struct mb_map");
  assert.equal(MB.prefaultEntrySize, c.prefault_entry, "struct mb_range");
  assert.equal(MAX_PREFAULT_RANGES, c.max_prefault, "MB_MAX_PREFAULT");
  assert.equal(BigInt(CONTROL_ADDRESS), BigInt(c.control!), "CONTROL_ADDR");
  assert.equal(BigInt(PARK_SET_FS_PC), BigInt(c.park_set_fs_pc!), "PARK_SET_FS_PC");
  assert.deepEqual(SIGNAL_STACK, { offset: c.signal_stack, size: c.signal_stack_size });
});

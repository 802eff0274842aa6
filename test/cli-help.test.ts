/**
 * The command line's usage handling, run in-process (runCli with an Io that keeps what
 * it prints): -h/--help and `vmlet help` on every command, --version, usage mistakes of the
 * commands without a snapshot layout. test/cli-snapshot.test.ts drives the built bin.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { runCli, withGlobalJsonLast } from "../src/cli/cli.js";
import { terminalLine, toJson, type Io } from "../src/cli/io.js";
import { repoRoot } from "./helpers.js";

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

async function vmlet(...argv: string[]): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const io: Io = {
    json: argv.includes("--json"),
    out: (line) => void (stdout += terminalLine(line)),
    err: (line) => void (stderr += terminalLine(line)),
    printJson: (document) => void (stdout += `${toJson(document)}\n`),
    stderr: { isTTY: false, write: () => true },
  };
  const status = await runCli(argv, io);
  return { status, stdout, stderr };
}

const COMMANDS: string[][] = [
  ["demo"], ["doctor"], ["guest"], ["guest", "new"], ["guest", "build"], ["sdk-path"], ["run"],
  ["snapshot"], ["snapshot", "create"], ["snapshot", "ls"], ["snapshot", "inspect"], ["snapshot", "verify"], ["snapshot", "rm"], ["snapshot", "gc"],
];

test("-h and --help after every command print its usage, the same as `vmlet help`, and do nothing else", async () => {
  for (const command of COMMANDS) {
    const help = await vmlet("help", ...command);
    assert.equal(help.status, 0, command.join(" "));
    assert.match(help.stdout, new RegExp(`^usage: vmlet ${command.join(" ")}( |\\n)`), command.join(" "));
    for (const flag of ["-h", "--help"]) {
      // After the arguments too, as users type it; "x" would be a mistake without -h.
      const r = await vmlet(...command, ...(command.length === 1 && command[0] !== "snapshot" && command[0] !== "guest" ? ["x"] : []), flag);
      assert.deepEqual(r, { status: 0, stdout: help.stdout, stderr: "" }, `${command.join(" ")} ${flag}`);
    }
  }
  assert.doesNotMatch((await vmlet("demo", "-h")).stdout, /add\(2, 40\)/, "demo -h does not run the demo");
});

test("--version, alone or as JSON; the top-level help lists every command", async () => {
  const version = (JSON.parse(fs.readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { version: string }).version;
  assert.deepEqual(await vmlet("--version"), { status: 0, stdout: `${version}\n`, stderr: "" });
  assert.deepEqual(JSON.parse((await vmlet("--version", "--json")).stdout), { version });
  const top = (await vmlet("--help")).stdout;
  for (const command of ["demo", "doctor", "guest new", "guest build", "sdk-path", "snapshot create", "run", "help"]) assert.ok(top.includes(`\n  ${command} `), command);
});

test("usage mistakes exit 2 naming the mistake, with the command's usage on stderr", async () => {
  const cases: Array<[string[], RegExp, RegExp]> = [
    [["--frob"], /unknown option --frob/, /^usage: vmlet <command>/m],
    [["demo", "extra"], /unexpected argument: extra/, /^usage: vmlet demo/m],
    [["demo", "--json"], /unknown option --json/, /^usage: vmlet demo/m],
    [["doctor", "--json=yes"], /--json takes no value/, /^usage: vmlet doctor/m],
    [["guest"], /missing guest command/, /^usage: vmlet guest <command>/m],
    [["guest", "frob"], /unknown guest command "frob"/, /^usage: vmlet guest <command>/m],
    [["guest", "new"], /missing <dir>/, /^usage: vmlet guest new/m],
    [["guest", "build", "--cc"], /--cc needs a value/, /^usage: vmlet guest build/m],
    [["sdk-path", "--cflag"], /unknown option --cflag/, /^usage: vmlet sdk-path/m],
    [["run", "snaps:demo", "echo", "-x"], /unknown option -x/, /^usage: vmlet run/m],
    [["help", "guest", "nothing"], /no command "guest nothing"/, /^usage: vmlet <command>/m],
  ];
  for (const [argv, message, usage] of cases) {
    const r = await vmlet(...argv);
    assert.equal(r.status, 2, argv.join(" "));
    assert.match(r.stderr, message, argv.join(" "));
    assert.match(r.stderr, usage, argv.join(" "));
    if (argv.includes("--json")) assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, "USAGE", argv.join(" "));
    else assert.equal(r.stdout, "", argv.join(" "));
  }
  assert.deepEqual(JSON.parse((await vmlet("doctor", "extra", "--json")).stdout), { error: { code: "USAGE", message: "unexpected argument: extra" } });
});

test("--json before the command is the same as after it (doctor, sdk-path, a usage error), and stays out of guest arguments after --", async () => {
  const strip = (text: string): string => text.replace(/"(ms|elapsedMs|[a-zA-Z]*Ns)": [0-9.]+/g, "");
  for (const command of [["doctor"], ["sdk-path"], ["snapshot", "ls", "/nonexistent-vmlet-dir"]]) {
    const after = await vmlet(...command, "--json");
    const before = await vmlet("--json", ...command);
    assert.equal(before.status, after.status, command.join(" "));
    assert.equal(strip(before.stdout), strip(after.stdout), command.join(" "));
    assert.doesNotThrow(() => JSON.parse(before.stdout), command.join(" "));
  }
  assert.deepEqual(withGlobalJsonLast(["--json", "run", "d:t", "echo", "--", "--json"]), ["run", "d:t", "echo", "--json", "--", "--json"]);
  assert.deepEqual(withGlobalJsonLast(["run", "d:t", "echo", "--", "--json"]), ["run", "d:t", "echo", "--", "--json"], "only leading flags move");
  assert.deepEqual(withGlobalJsonLast(["--json"]), ["--json"]);
});

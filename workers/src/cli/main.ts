#!/usr/bin/env node
/**
 * The `blosm` command line. Each subcommand parses its own flags (node:util parseArgs, strict), prints a
 * one-line error naming the problem on bad input or unreachable services (exit 2 for usage, 1 otherwise),
 * and offers --json for scripts.
 */
import { BlosmError, ConfigError } from "../lib/errors.ts";
import { COMMANDS } from "./commands.ts";
import { parseCommand, usage } from "./command.ts";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { projectRoot } from "../lib/projectRoot.ts";

const commands = COMMANDS;

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "blosm — blockchain-coordinated service migration for GPU edge clusters",
    "",
    "Usage: blosm <command> [options]   (blosm <command> --help for its options; blosm --version)",
    "",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
  ].join("\n");
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === "--version" || argv[0] === "-V") {
    const pkg = JSON.parse(await readFile(path.join(projectRoot, "package.json"), "utf8")) as { version: string };
    console.log(`blosm ${pkg.version}`);
    return 0;
  }
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
    console.log(help());
    return argv.length === 0 ? 2 : 0;
  }
  // Longest match first: "chain genesis" before "chain".
  const command = [...commands]
    .sort((a, b) => b.name.split(" ").length - a.name.split(" ").length)
    .find((c) => c.name.split(" ").every((word, i) => argv[i] === word));
  if (!command) {
    const group = commands.filter((c) => c.name.startsWith(`${argv[0]} `));
    if (group.length > 0) {
      console.error(`blosm: "${argv.slice(0, 2).join(" ")}" is not a command; ${argv[0]} has: ${group.map((c) => c.name.split(" ")[1]).join(", ")}`);
    } else {
      console.error(`blosm: unknown command "${argv[0]}" (blosm --help lists them)`);
    }
    return 2;
  }
  const rest = argv.slice(command.name.split(" ").length);
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(usage(command));
    return 0;
  }
  // With --json, a failure is JSON too (on stderr), so a script reading the output never parses prose.
  const json = rest.includes("--json");
  const fail = (code: number, kind: "usage" | "error" | "unexpected", message: string) => {
    console.error(json ? JSON.stringify({ error: message, kind, command: command.name, exitCode: code }) : `blosm ${command.name}: ${kind === "unexpected" ? "unexpected error: " : ""}${message}`);
    return code;
  };
  try {
    // Flags are parsed and required ones checked before the command's code (and any network) is touched.
    const parsed = parseCommand(command, rest);
    const run = await command.load();
    return await run(parsed);
  } catch (e) {
    if (e instanceof ConfigError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) return fail(2, "usage", (e as Error).message.split("\n")[0]!);
    if (e instanceof BlosmError) return fail(1, "error", e.shortMessage);
    if (process.env.BLOSM_DEBUG) console.error(e);
    return fail(1, "unexpected", (e as Error)?.message ?? String(e));
  }
}

process.exitCode = await main(process.argv.slice(2));

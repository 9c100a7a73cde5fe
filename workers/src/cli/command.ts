import { parseArgs, type ParseArgsConfig } from "node:util";
import { ConfigError } from "../lib/errors.ts";
import { toJson } from "../lib/json.ts";

export type Options = NonNullable<ParseArgsConfig["options"]>;

export type Command = {
  /** One or two words: "worker", "chain genesis". */
  name: string;
  summary: string;
  /** Positional arguments shown in usage, e.g. "<container>". */
  positionals?: string;
  options: Options;
  /** Help text per option. */
  help: Record<string, string>;
  run: (argv: string[]) => Promise<number>;
};

export function usage(c: Command): string {
  const lines = [`Usage: blosm ${c.name}${c.positionals ? ` ${c.positionals}` : ""} [options]`, "", c.summary, "", "Options:"];
  for (const [name, opt] of Object.entries(c.options)) {
    const flag = `--${name}${opt.type === "string" ? " <value>" : ""}`;
    const def = opt.default !== undefined ? ` (default: ${String(opt.default)})` : "";
    lines.push(`  ${flag.padEnd(26)} ${c.help[name] ?? ""}${def}`);
  }
  lines.push(`  ${"--help".padEnd(26)} show this help`);
  return lines.join("\n");
}

/** Strict flag parsing: unknown flags and missing values are errors that name the flag. */
export function parse<O extends Options>(argv: string[], options: O, allowPositionals = false) {
  return parseArgs({ args: argv, options, strict: true, allowPositionals });
}

export function intFlag(name: string, value: string | undefined, min: number, max: number): number {
  if (value === undefined) throw new ConfigError(`--${name}`, "is required");
  if (!/^-?\d+$/.test(value.trim())) throw new ConfigError(`--${name}`, `must be an integer, got "${value}"`);
  const n = Number(value);
  if (n < min || n > max) throw new ConfigError(`--${name}`, `must be from ${min} to ${max}, got ${n}`);
  return n;
}

export function urlFlag(name: string, value: string | undefined): string {
  if (value === undefined) throw new ConfigError(`--${name}`, "is required");
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new ConfigError(`--${name}`, `"${value}" is not a URL`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new ConfigError(`--${name}`, `must be an http(s) URL, got "${value}"`);
  return value;
}

export function printJson(value: unknown): void {
  console.log(toJson(value, 2));
}

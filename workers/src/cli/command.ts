import { parseArgs, type ParseArgsConfig } from "node:util";
import { ConfigError } from "../lib/errors.ts";
import { toJson } from "../lib/json.ts";

export type Options = NonNullable<ParseArgsConfig["options"]>;

/** A command's flags after strict parsing (main.ts parses them before the command's code is even loaded). */
export type Parsed = { values: Record<string, unknown>; positionals: string[] };
export type Runner = (parsed: Parsed) => Promise<number>;

/**
 * What the command line knows of a command without loading it: enough to print help, parse the flags and check
 * the required ones. The behaviour (and with it viem, dockerode, BullMQ…) is loaded only when the command runs.
 */
export type CommandSpec = {
  /** One or two words: "worker", "chain genesis". */
  name: string;
  summary: string;
  /** Positional arguments shown in usage, e.g. "<container>". */
  positionals?: string;
  options: Options;
  /** Help text per option. */
  help: Record<string, string>;
  /** Flags that must be given; marked in --help and checked before the command loads. */
  required?: string[];
  load: () => Promise<Runner>;
};

export function usage(c: CommandSpec): string {
  const lines = [`Usage: blosm ${c.name}${c.positionals ? ` ${c.positionals}` : ""}${(c.required ?? []).map((r) => ` --${r} <value>`).join("")} [options]`, "", c.summary, "", "Options:"];
  for (const [name, opt] of Object.entries(c.options)) {
    const flag = `--${name}${opt.type === "string" ? " <value>" : ""}`;
    const def = opt.default !== undefined ? ` (default: ${String(opt.default)})` : "";
    const required = c.required?.includes(name) ? " (required)" : "";
    lines.push(`  ${flag.padEnd(26)} ${c.help[name] ?? ""}${required}${def}`);
  }
  lines.push(`  ${"--help".padEnd(26)} show this help`);
  return lines.join("\n");
}

/** Parses argv against the spec: unknown flags, missing values and missing required flags are errors naming the flag. */
export function parseCommand(c: CommandSpec, argv: string[]): Parsed {
  const { values, positionals } = parseArgs({ args: argv, options: c.options, strict: true, allowPositionals: Boolean(c.positionals) });
  const missing = (c.required ?? []).filter((r) => {
    const v = (values as Record<string, unknown>)[r];
    return v === undefined || (Array.isArray(v) && v.length === 0);
  });
  if (missing.length > 0) throw new ConfigError(missing.map((m) => `--${m}`).join(", "), `${missing.length > 1 ? "are" : "is"} required (blosm ${c.name} --help)`);
  return { values: values as Record<string, unknown>, positionals };
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

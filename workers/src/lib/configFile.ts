import { readFile } from "node:fs/promises";
import type { z } from "zod";
import { ConfigError } from "./errors.ts";

/**
 * Validates a parsed configuration against its schema. Every problem is reported at once (a config with three
 * mistakes names all three), each as `config.<path>: <problem>`, on one line so a CLI can print it whole.
 */
export function parseConfig<S extends z.ZodType>(schema: S, raw: unknown): z.infer<S> {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => ({ field: i.path.length > 0 ? `config.${i.path.join(".")}` : "config", problem: i.message }));
  const [first, ...rest] = problems;
  throw new ConfigError(first!.field, [first!.problem, ...rest.map((p) => `${p.field}: ${p.problem}`)].join("; "));
}

/** Reads a JSON configuration file and validates it; unreadable or malformed files are ConfigErrors on --config. */
export async function loadConfigFile<T>(file: string, parse: (raw: unknown) => T): Promise<T> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new ConfigError("--config", `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError("--config", `${file} is not valid JSON: ${(e as Error).message}`);
  }
  return parse(raw);
}

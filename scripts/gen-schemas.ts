/**
 * Writes JSON Schemas of worker.json and gateway.json (schemas/*.schema.json) from the zod schemas the worker and
 * gateway validate with, so editors complete and check a config as it is typed (`"$schema": ".../worker.schema.json"`).
 * `npm run schemas` regenerates them; test/schemas.test.ts fails when they are out of date. Input types: what a
 * person writes (defaults optional), not what the parser returns.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { GatewayConfigSchema } from "../workers/src/gateway/config.ts";
import { projectRoot } from "../workers/src/lib/projectRoot.ts";
import { WorkerConfigSchema } from "../workers/src/worker/config.ts";

export const SCHEMAS = {
  "worker.schema.json": { schema: WorkerConfigSchema, title: "blosm worker configuration (worker.json)" },
  "gateway.schema.json": { schema: GatewayConfigSchema, title: "blosm gateway configuration (gateway.json)" },
} as const;

/** The JSON text of one schema, as committed. */
export function schemaText(name: keyof typeof SCHEMAS): string {
  const { schema, title } = SCHEMAS[name];
  // Checks zod runs in code (refinements: URL schemes, addresses) are not expressible here; the types, bounds,
  // patterns, enums and defaults are. "$schema" is allowed so a config can point at its schema.
  const json = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  const properties = { $schema: { type: "string", description: "this file's JSON Schema, for editors" }, ...(json.properties as object) };
  return `${JSON.stringify({ ...json, title, properties }, null, 2)}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const name of Object.keys(SCHEMAS) as Array<keyof typeof SCHEMAS>) {
    await writeFile(path.join(projectRoot, "schemas", name), schemaText(name));
    console.log(`wrote schemas/${name}`);
  }
}

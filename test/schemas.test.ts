import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { SCHEMAS, schemaText } from "../scripts/gen-schemas.ts";
import { projectRoot } from "../workers/src/lib/projectRoot.ts";

const read = async (file: string) => readFile(path.join(projectRoot, file), "utf8");

describe("the JSON Schemas of worker.json and gateway.json", () => {
  it("are what the zod schemas generate (npm run schemas regenerates them)", async () => {
    for (const name of Object.keys(SCHEMAS) as Array<keyof typeof SCHEMAS>) {
      expect(await read(`schemas/${name}`), `schemas/${name} is out of date: npm run schemas`).toBe(schemaText(name));
    }
  });

  it("describe the example configs: every field known, every required field present, and each points at its schema", async () => {
    for (const [example, schema] of [["worker.example.json", "worker.schema.json"], ["gateway.example.json", "gateway.schema.json"]] as const) {
      const config = JSON.parse(await read(`docker/edge-cluster/${example}`)) as Record<string, unknown>;
      const json = JSON.parse(await read(`schemas/${schema}`)) as { properties: Record<string, unknown>; required: string[] };
      expect(Object.keys(config).filter((k) => !(k in json.properties)), example).toEqual([]);
      expect(json.required.filter((k) => !(k in config)), example).toEqual([]);
      expect(config.$schema).toBe(`../../schemas/${schema}`);
    }
    // And a field the schema requires really is required by the parser.
    const { parseWorkerConfig } = await import("../workers/src/worker/config.ts");
    const worker = JSON.parse(await read("docker/edge-cluster/worker.example.json")) as Record<string, unknown>;
    const required = (JSON.parse(await read("schemas/worker.schema.json")) as { required: string[] }).required;
    for (const field of required) {
      const { [field]: _dropped, ...rest } = worker;
      expect(() => parseWorkerConfig(rest), field).toThrow(`config.${field}`);
    }
  });
});

import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * The rooms of workers/src and the floors they stand on (docs/ARCHITECTURE.md): a file may import its own room
 * and rooms on lower floors, never a higher floor or a room beside it. Runtime code therefore never imports
 * plane/ (the local rig) or cli/. Tests are exempt: they may reach anywhere.
 */
const FLOORS: Record<string, number> = {
  lib: 0,
  chain: 1, engine: 1, registryAuth: 1,
  evaluation: 2, transfer: 2,
  worker: 3, gateway: 3,
  plane: 4, doctor: 4,
  cli: 5,
};
const ROOT = path.dirname(fileURLToPath(import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") ? [p] : [];
  });
}

const roomOf = (file: string) => path.relative(ROOT, file).split(path.sep)[0]!;

function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)].map((m) => path.resolve(path.dirname(file), m[1]!));
}

const files = sources(ROOT);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

describe("the layering of workers/src", () => {
  it("puts every file in a known room", () => {
    expect(files.map(roomOf).filter((r) => !(r in FLOORS))).toEqual([]);
  });

  it("imports only the file's own room or lower floors", () => {
    const wrong: string[] = [];
    for (const [file, imports] of graph) {
      const from = roomOf(file);
      for (const target of imports) {
        const to = roomOf(target);
        if (to.startsWith("..")) wrong.push(`${path.relative(ROOT, file)} imports ${path.relative(ROOT, target)} (outside workers/src)`);
        else if (to !== from && FLOORS[to]! >= FLOORS[from]!) wrong.push(`${path.relative(ROOT, file)} (${from}) imports ${path.relative(ROOT, target)} (${to})`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("has no import circles", () => {
    const circles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const visit = (file: string, trail: string[]) => {
      if (state.get(file) === "done") return;
      if (state.get(file) === "open") {
        circles.push([...trail.slice(trail.indexOf(file)), file].map((f) => path.relative(ROOT, f)).join(" → "));
        return;
      }
      state.set(file, "open");
      for (const t of graph.get(file) ?? []) visit(t, [...trail, file]);
      state.set(file, "done");
    };
    for (const f of files) visit(f, []);
    expect(circles).toEqual([]);
  });
});

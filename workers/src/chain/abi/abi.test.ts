import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { generatedAbiFile, renderAbiModule } from "../../../../scripts/gen-abi.ts";
import { State, migrationRegistryAbi } from "./migrationRegistry.ts";

describe("the generated registry ABI", () => {
  it("is what the current build of the contract gives (run npm run compile if not)", () => {
    expect(readFileSync(generatedAbiFile, "utf8")).toBe(renderAbiModule());
  });

  it("types the state view's uint8 and names every state in the Solidity order", () => {
    const stateFn = migrationRegistryAbi.find((i) => i.type === "function" && i.name === "state");
    expect(stateFn?.outputs[0]?.internalType).toBe("enum IMigrationRegistry.MigrationState");
    expect(Object.values(State)).toEqual([...Object.keys(State).keys()]);
    expect(Object.keys(State)[0]).toBe("None");
  });
});

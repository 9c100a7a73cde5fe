import { describe, expect, it } from "vitest";
import artifact from "../../artifacts/contracts/MigrationRegistry.sol/MigrationRegistry.json" with { type: "json" };

// Opcodes introduced after London, which geth 1.13 Clique networks reject ("invalid opcode").
const POST_LONDON: Record<number, string> = { 0x5f: "PUSH0", 0x5e: "MCOPY", 0x5c: "TLOAD", 0x5d: "TSTORE", 0x49: "BLOBHASH", 0x4a: "BLOBBASEFEE" };

/** Opcodes of the code part, skipping PUSH data and the trailing CBOR metadata (its length is the last 2 bytes). */
function opcodes(hex: string): number[] {
  const code = Buffer.from(hex.replace(/^0x/, ""), "hex");
  const metadataLength = code.readUInt16BE(code.length - 2) + 2;
  const end = code.length - metadataLength;
  const ops: number[] = [];
  for (let i = 0; i < end; i++) {
    const op = code[i]!;
    ops.push(op);
    if (op >= 0x60 && op <= 0x7f) i += op - 0x5f;
  }
  return ops;
}

describe("MigrationRegistry bytecode", () => {
  it.each(["bytecode", "deployedBytecode"] as const)("%s uses London opcodes only and fits the 24 KiB limit", (kind) => {
    const ops = opcodes(artifact[kind]);
    expect(ops.length).toBeGreaterThan(1000);
    expect(ops.filter((op) => op in POST_LONDON).map((op) => POST_LONDON[op])).toEqual([]);
    if (kind === "deployedBytecode") expect((artifact[kind].length - 2) / 2).toBeLessThanOrEqual(24_576);
  });
});

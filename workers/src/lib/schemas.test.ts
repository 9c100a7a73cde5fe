import { describe, expect, it } from "vitest";
import { addressSchema, bytes32Schema, urlSchema } from "./schemas.ts";

describe("shared schemas", () => {
  it("returns an address checksummed, whatever case it came in", () => {
    expect(addressSchema.parse("0x5fbdb2315678afecb367f032d93f642f64180aa3")).toBe("0x5FbDB2315678afecb367f032d93F642f64180aa3");
  });

  it("refuses a short address and a mixed-case one with a wrong checksum, naming the problem", () => {
    for (const bad of ["0x1234", "0x5FBDB2315678afecb367f032d93F642f64180aa3", "5fbdb2315678afecb367f032d93f642f64180aa3"]) {
      const r = addressSchema.safeParse(bad);
      expect(r.success).toBe(false);
      expect(r.error?.issues[0]?.message).toBe("must be a 0x-prefixed 20-byte address");
    }
  });

  it("takes 32-byte hex only", () => {
    expect(bytes32Schema.safeParse(`0x${"ab".repeat(32)}`).success).toBe(true);
    expect(bytes32Schema.safeParse(`0x${"ab".repeat(31)}`).success).toBe(false);
  });

  it("takes a URL only in the schemes named", () => {
    const ws = urlSchema(["ws:", "wss:"]);
    expect(ws.safeParse("wss://node.example:8546").success).toBe(true);
    const r = ws.safeParse("http://node.example:8545");
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toBe("must be a ws/wss URL");
    expect(ws.safeParse("not a url").success).toBe(false);
  });
});

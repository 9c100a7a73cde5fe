import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { POSITION_OP, PROOF_HEADER, inferOp } from "./clientProof.ts";
import { ClientSigner } from "./clientSigner.ts";
import { ClientVerifier, ProofError, type ProofInput } from "./clientVerifier.ts";

const body = Buffer.from(JSON.stringify({ window: [[1, 2, 3]] }));
const position = "35.885000,128.610000";

async function signed(signer: ClientSigner, op = inferOp("driver-profiling"), b = body, pos: string | undefined = position): Promise<ProofInput> {
  const h = await signer.headers({ op, position: pos, body: b });
  return { op, client: signer.address, position: pos, body: b, session: h[PROOF_HEADER.session], signature: h[PROOF_HEADER.signature] };
}

describe("client proofs: an EIP-712 session grant, then Ed25519-signed requests", () => {
  const verifier = () => new ClientVerifier({ clockSkewMs: 30_000, maxSessionSeconds: 86_400 });
  const car = () => new ClientSigner(privateKeyToAccount(generatePrivateKey()));

  it("accepts a signed request and returns the client it proves", async () => {
    const signer = car();
    expect(await verifier().verify(await signed(signer))).toBe(signer.address);
  });

  it("accepts the client's address in any letter case, and a position update signed over its body", async () => {
    const signer = car();
    const v = verifier();
    const p = await signed(signer);
    expect(await v.verify({ ...p, client: p.client.toLowerCase() })).toBe(signer.address);
    expect(await v.verify(await signed(signer, POSITION_OP, Buffer.from('{"lat":35.9,"lon":128.6}'), undefined))).toBe(signer.address);
  });

  const refusals: Array<[string, (p: ProofInput, other: ProofInput) => ProofInput, RegExp]> = [
    ["unsigned (no session grant)", (p) => ({ ...p, session: undefined }), /x-blosm-session is missing/],
    ["unsigned (no signature)", (p) => ({ ...p, signature: undefined }), /x-blosm-signature is missing/],
    ["a client that is not an address", (p) => ({ ...p, client: "car-1" }), /is not an address/],
    ["another client's session claimed as one's own", (p, other) => ({ ...p, client: other.client }), /was signed by 0x[0-9a-fA-F]{40}, not by the client/],
    ["another client's signature on this request", (p, other) => ({ ...p, signature: other.signature }), /does not match/],
    ["a changed body", (p) => ({ ...p, body: Buffer.from("{}") }), /does not match/],
    ["a changed position", (p) => ({ ...p, position: "35.999000,128.610000" }), /does not match/],
    ["another app type", (p) => ({ ...p, op: inferOp("image-recognition") }), /does not match/],
    ["a forged grant signature", (p) => ({ ...p, session: p.session!.replace(/\.0x(..)/, (_, b: string) => `.0x${b === "ff" ? "fe" : "ff"}`) }), /was signed by|malformed/],
    ["a malformed signature header", (p) => ({ ...p, signature: "nonsense" }), /expected <time ms>/],
  ];
  for (const [what, tamper, message] of refusals) {
    it(`refuses ${what}`, async () => {
      const p = await signed(car());
      const other = await signed(car());
      await expect(verifier().verify(tamper(p, other))).rejects.toThrow(message);
      await expect(verifier().verify(tamper(p, other))).rejects.toBeInstanceOf(ProofError);
    });
  }

  it("refuses a replay, but accepts requests that arrive out of order once each", async () => {
    const signer = car();
    const v = verifier();
    const first = await signed(signer);
    const second = await signed(signer);
    expect(await v.verify(second)).toBe(signer.address);
    expect(await v.verify(first)).toBe(signer.address); // counter 1 after 2: reordered, not replayed
    await expect(v.verify(first)).rejects.toThrow(/replayed: counter 1/);
    await expect(v.verify(second)).rejects.toThrow(/replayed: counter 2/);
  });

  it("refuses a stale request, one from the future, an expired grant and a grant longer than allowed", async () => {
    let now = Date.now();
    const signer = new ClientSigner(privateKeyToAccount(generatePrivateKey()), { now: () => now, sessionSeconds: 120 });
    const v = new ClientVerifier({ clockSkewMs: 30_000, maxSessionSeconds: 600, now: () => now });
    const p = await signed(signer);
    now += 31_000;
    await expect(v.verify(p)).rejects.toThrow(/signed 31 s ago \(allowed: ±30 s\)/);
    now -= 62_000;
    await expect(v.verify(p)).rejects.toThrow(/31 s in the future/);
    now += 31_000 + 121_000; // past the grant's 120 s
    await expect(v.verify(p)).rejects.toThrow(/the session grant expired at/);
    const long = new ClientSigner(privateKeyToAccount(generatePrivateKey()), { sessionSeconds: 3600 });
    await expect(new ClientVerifier({ clockSkewMs: 30_000, maxSessionSeconds: 600 }).verify(await signed(long))).rejects.toThrow(/longer than the 600 s accepted here/);
  });

  it("verifies a request in well under a millisecond once the session is known", async () => {
    // Not a benchmark (bench:gateway measures the cost): a check that the grant is not recovered per request.
    const signer = car();
    const v = verifier();
    await v.verify(await signed(signer));
    const inputs = await Promise.all(Array.from({ length: 200 }, () => signed(signer)));
    const recoveries = { n: 0 };
    const inner = (v as unknown as { verifier: { recover: (...a: unknown[]) => Promise<unknown> } }).verifier;
    const recover = inner.recover.bind(inner);
    inner.recover = (...a) => (recoveries.n++, recover(...a));
    for (const p of inputs) await v.verify(p);
    expect(recoveries.n).toBe(0);
  });
});

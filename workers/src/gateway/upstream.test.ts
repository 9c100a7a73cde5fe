import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { Upstream, gatewayTarget } from "./upstream.ts";

describe("gatewayTarget", () => {
  it("keeps a peer's scheme and port: an https gateway is not called in plain HTTP on port 80", () => {
    expect(gatewayTarget("https://edge-b.example", "driver-profiling")).toEqual({ protocol: "https:", host: "edge-b.example", port: 443, path: "/apps/driver-profiling/infer" });
    expect(gatewayTarget("https://edge-b.example:8443/", "x")).toMatchObject({ protocol: "https:", port: 8443 });
    expect(gatewayTarget("http://10.78.2.1:8000", "image-recognition")).toEqual({ protocol: "http:", host: "10.78.2.1", port: 8000, path: "/apps/image-recognition/infer" });
    expect(gatewayTarget("http://[::1]", "a b")).toEqual({ protocol: "http:", host: "[::1]", port: 80, path: "/apps/a%20b/infer" });
  });

  it("refuses a gateway URL that is not http(s)", () => {
    expect(() => gatewayTarget("ftp://edge-b.example", "x")).toThrow(/not http\(s\)/);
  });
});

describe("Upstream.warm", () => {
  it("sends one GET of the app's path, and the first real request then rides the connection it opened", async () => {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} from port ${req.socket.remotePort}`);
      req.resume().on("end", () => res.writeHead(req.method === "GET" ? 400 : 200).end("answer"));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const upstream = new Upstream();
    try {
      const target = { host: "127.0.0.1", port: (server.address() as AddressInfo).port, path: "/infer" };
      const warmed = await upstream.warm(target);
      expect(warmed.status).toBe(400); // whatever the app answers a GET: it ran
      await new Promise((r) => setTimeout(r, 50)); // the client's request comes later (seconds, in a handover)
      const r = await upstream.send(target, { type: "driver-profiling", contentType: "text/csv", body: Buffer.from("1,2") } as never);
      expect(r.status).toBe(200);
      const port = seen[0]!.split(" ").at(-1);
      expect(seen).toEqual([`GET /infer from port ${port}`, `POST /infer from port ${port}`]);
    } finally {
      await upstream.close();
      server.close();
    }
  });

  it("says when the container does not answer", async () => {
    const upstream = new Upstream();
    await expect(upstream.warm({ host: "127.0.0.1", port: 9, path: "/" }, 500)).rejects.toThrow();
    await upstream.close();
  });
});

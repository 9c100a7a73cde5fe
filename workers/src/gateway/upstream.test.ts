import { describe, expect, it } from "vitest";
import { gatewayTarget } from "./upstream.ts";

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

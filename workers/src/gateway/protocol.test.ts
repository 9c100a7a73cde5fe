import { describe, expect, it } from "vitest";
import { gatewayTimings, serverTimings } from "./protocol.ts";

describe("serverTimings", () => {
  it("reads each named duration of a Server-Timing header, the first of a name winning (the answering cluster's)", () => {
    expect(serverTimings("app;dur=12.5, gateway;dur=20, gateway;dur=31")).toEqual({ app: 12.5, gateway: 20 });
  });

  it("ignores what carries no readable duration, and an absent header", () => {
    expect(serverTimings("cache;desc=hit, app;dur=abc, ;dur=4, db ; dur=7")).toEqual({ db: 7 });
    expect(serverTimings(null)).toEqual({});
  });
});

describe("gatewayTimings", () => {
  it("lists every gateway's whole time in order: the answering cluster's first, the called one's (which sent it on) last", () => {
    expect(gatewayTimings("app;dur=8, gateway;dur=9.5, gateway;dur=14")).toEqual([9.5, 14]);
    expect(gatewayTimings("app;dur=8, gateway;dur=x")).toEqual([]);
    expect(gatewayTimings(undefined)).toEqual([]);
  });
});

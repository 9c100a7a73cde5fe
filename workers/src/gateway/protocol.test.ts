import { describe, expect, it } from "vitest";
import { serverTimings } from "./protocol.ts";

describe("serverTimings", () => {
  it("reads each named duration of a Server-Timing header, the first of a name winning (the answering cluster's)", () => {
    expect(serverTimings("app;dur=12.5, gateway;dur=20, gateway;dur=31")).toEqual({ app: 12.5, gateway: 20 });
  });

  it("ignores what carries no readable duration, and an absent header", () => {
    expect(serverTimings("cache;desc=hit, app;dur=abc, ;dur=4, db ; dur=7")).toEqual({ db: 7 });
    expect(serverTimings(null)).toEqual({});
  });
});

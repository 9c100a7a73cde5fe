import { UnrecoverableError } from "bullmq";
import { describe, expect, it } from "vitest";
import { FailureCode, jobFailedLevel, permanentFailureLevel, StepFailure } from "./failure.ts";

describe("failure levels", () => {
  const turnedBack = new StepFailure(FailureCode.ClientTurnedBack, "the client turned back before crossing", { retryable: false });
  const startFailed = new StepFailure(FailureCode.StartFailed, "the container did not start", { retryable: false });

  it("logs a move given up for a client that turned back at info, every other permanent failure loud", () => {
    expect(permanentFailureLevel(turnedBack)).toBe("info");
    expect(permanentFailureLevel(startFailed)).toBe("error");
    expect(permanentFailureLevel(new Error("anything"))).toBe("error");
  });

  it("gives BullMQ's \"job failed\" line the level its cause has, kept on the UnrecoverableError", () => {
    expect(jobFailedLevel(Object.assign(new UnrecoverableError("given up"), { cause: turnedBack }))).toBe("info");
    expect(jobFailedLevel(Object.assign(new UnrecoverableError("failed"), { cause: startFailed }))).toBe("warn");
    expect(jobFailedLevel(new Error("a retry's failure"))).toBe("warn");
  });
});

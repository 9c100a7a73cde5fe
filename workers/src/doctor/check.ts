/** One line of `blosm doctor`: what was checked, how it went, and what to do about it when it did not. */
export type Check = {
  name: string;
  /** ok: fine; warn: works, but something an operator should know; fail: the cluster cannot join like this; skip: not checked (an earlier check failed). */
  status: "ok" | "warn" | "fail" | "skip";
  detail: string;
  fix?: string;
};

export const ok = (name: string, detail: string): Check => ({ name, status: "ok", detail });
export const warn = (name: string, detail: string, fix?: string): Check => ({ name, status: "warn", detail, fix });
export const fail = (name: string, detail: string, fix: string): Check => ({ name, status: "fail", detail, fix });
export const skip = (name: string, because: string): Check => ({ name, status: "skip", detail: `not checked: ${because}` });

/** A cluster can join when nothing failed; warnings and skipped checks behind a failure do not change that. */
export const canJoin = (checks: Check[]) => checks.every((c) => c.status !== "fail");

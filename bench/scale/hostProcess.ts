import { fork, type ChildProcess } from "node:child_process";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { projectRoot } from "../../workers/src/lib/projectRoot.ts";
import type { RpcTally } from "./rpcTally.ts";

type Usage = { cpuUs: number; rss: number; loopDelayP99Ms: number };
type Ready = { kind: "ready"; baselineRss: number };

/**
 * A child process hosting some of a plane's clusters (bench/scale/host.ts: real workers; bench/broker/host.ts:
 * the broker or its agents). Both answer the same IPC messages: start → ready | failed, usage, stop.
 */
export class HostProcess {
  baselineRss = 0;
  private constructor(readonly child: ChildProcess, readonly workers: number) {}

  /** Forks `script` (relative to the project root), sends it `start` and waits for its answer. */
  static async fork<R extends Ready, S extends { kind: "start"; logFile: string } = { kind: "start"; logFile: string }>(script: string, start: S, workers: number): Promise<{ host: HostProcess; ready: R }> {
    const child = fork(path.join(projectRoot, script), [], {
      execArgv: ["--import", `file://${projectRoot}/node_modules/tsx/dist/loader.mjs`], stdio: ["ignore", "inherit", "inherit", "ipc"],
      env: { ...process.env, NODE_OPTIONS: "" },
    });
    const host = new HostProcess(child, workers);
    const answer = await new Promise<R | { kind: "failed"; error: string }>((resolve, reject) => {
      child.once("message", (m: R | { kind: "failed"; error: string }) => resolve(m));
      child.once("exit", (code) => reject(new Error(`${script} exited with ${code} while starting (log: ${start.logFile})`)));
      child.send(start);
    });
    if (answer.kind === "failed") {
      child.kill("SIGKILL");
      throw new Error(`${script} did not start: ${answer.error} (log: ${start.logFile})`);
    }
    host.baselineRss = answer.baselineRss;
    return { host, ready: answer };
  }

  usage(): Promise<Usage> {
    return new Promise((resolve) => {
      const on = (m: { kind: string } & Usage) => {
        if (m.kind !== "usage") return;
        this.child.off("message", on);
        resolve(m);
      };
      this.child.on("message", on);
      this.child.send({ kind: "usage" });
    });
  }

  /** Its workers' JSON-RPC calls counted since the last reset (bench/scale/rpcTally.ts); hosts without workers answer none. */
  rpcTally(reset: boolean): Promise<RpcTally> {
    return new Promise((resolve) => {
      const on = (m: { kind: string; tally?: RpcTally }) => {
        if (m.kind !== "rpc") return;
        this.child.off("message", on);
        resolve(m.tally!);
      };
      this.child.on("message", on);
      this.child.send({ kind: "rpc", reset });
    });
  }

  /** Asks it to stop its clusters, and kills it when it has not exited 30 s later. */
  stop(): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.child.exitCode !== null) return resolve();
      const timer = setTimeout(() => this.child.kill("SIGKILL"), 30_000);
      this.child.once("exit", () => (clearTimeout(timer), resolve()));
      this.child.send({ kind: "stop" });
    });
  }
}

/**
 * The child's side of `usage`: this process's CPU time, memory and event-loop delay p99 since the last answer. Its
 * clusters share one event loop, so a busy loop delays every cluster's event delivery and offers alike.
 */
export function usageReporter(): () => Usage & { kind: "usage" } {
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  return () => {
    const u = process.cpuUsage();
    const answer = { kind: "usage" as const, cpuUs: u.user + u.system, rss: process.memoryUsage().rss, loopDelayP99Ms: loopDelay.percentile(99) / 1e6 };
    loopDelay.reset();
    return answer;
  };
}

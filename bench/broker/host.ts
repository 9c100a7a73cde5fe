/**
 * One process of the broker plane, as bench/scale/host.ts is one of the chain plane: either the broker itself or
 * up to 50 clusters' agents. The parent (bench/broker/plane.ts) starts it over IPC, asks for CPU and memory use
 * (the same messages as the chain plane's hosts) and stops it. Warnings go to the log file the parent names.
 */
import { createWriteStream } from "node:fs";
import { usageReporter } from "../scale/hostProcess.ts";
import { createLogger } from "../../workers/src/lib/log.ts";
import { Agent, type AgentConfig } from "./agent.ts";
import { Broker, serveBroker } from "./broker.ts";

export type BrokerHostStart = { kind: "start"; logFile: string } & ({ role: "broker" } | { role: "agents"; agents: AgentConfig[] });
export type BrokerHostMessage =
  | { kind: "ready"; brokerUrl?: string; agents: Array<{ name: string; url: string }>; baselineRss: number }
  | { kind: "usage"; cpuUs: number; rss: number; loopDelayP99Ms: number }
  | { kind: "failed"; error: string };

const send = (m: BrokerHostMessage) => process.send!(m);
const agents: Agent[] = [];
let closeBroker: (() => void) | undefined;
const baselineRss = process.memoryUsage().rss;
const usage = usageReporter();

process.on("message", (m: BrokerHostStart | { kind: "usage" } | { kind: "stop" }) => {
  if (m.kind === "start") void start(m);
  if (m.kind === "usage") send(usage());
  if (m.kind === "stop") {
    closeBroker?.();
    void Promise.all(agents.map((a) => a.stop().catch(() => {}))).then(() => process.exit(0));
  }
});

async function start(m: BrokerHostStart) {
  const out = createWriteStream(m.logFile, { flags: "a" });
  const log = createLogger({ level: (process.env.BLOSM_LOG_LEVEL as "info" | undefined) ?? "warn", sink: (line) => out.write(`${line}\n`) });
  try {
    if (m.role === "broker") {
      const { url, server } = await serveBroker(new Broker());
      closeBroker = () => server.close();
      return send({ kind: "ready", brokerUrl: url, agents: [], baselineRss });
    }
    for (let i = 0; i < m.agents.length; i += 8) agents.push(...(await Promise.all(m.agents.slice(i, i + 8).map((c) => Agent.start(c, log)))));
    send({ kind: "ready", agents: agents.map((a) => ({ name: a.config.name, url: a.url })), baselineRss });
  } catch (e) {
    send({ kind: "failed", error: (e as Error).message });
  }
}

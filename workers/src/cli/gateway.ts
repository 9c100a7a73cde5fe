import { loadGatewayConfig } from "../gateway/config.ts";
import { runGateway } from "../gateway/runGateway.ts";
import { ConfigError } from "../lib/errors.ts";
import { onStopSignal } from "../lib/shutdown.ts";
import { createLogger } from "../lib/log.ts";
import { parse, type Command } from "./command.ts";

const gateway: Command = {
  name: "gateway",
  summary: "Run this edge cluster's gateway (clients POST /apps/<type>/infer; short of resources → neighbour; left coverage → migrate); Ctrl-C stops it",
  options: { config: { type: "string" } },
  help: { config: "gateway configuration (JSON; see README: Configuration, and docker/edge-cluster/gateway.example.json)" },
  async run(argv) {
    const { values } = parse(argv, this.options);
    if (!values.config) throw new ConfigError("--config", "is required");
    const config = await loadGatewayConfig(values.config as string);
    const running = await runGateway(config, { log: createLogger() });
    console.error(`blosm gateway ${config.name}: ${running.url} (apps: ${Object.keys(config.apps).join(", ")})`);
    await onStopSignal(() => running.stop(), { graceMs: 30_000, onForced: (why) => console.error(`blosm gateway: ${why}`) });
    // Stopped in order; a library's reconnect timer (Redis away) must not keep the process alive after that.
    setTimeout(() => process.exit(process.exitCode ?? 0), 1000).unref();
    return 0;
  },
};

export const gatewayCommands: Command[] = [gateway];

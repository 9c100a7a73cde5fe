import { loadGatewayConfig } from "../gateway/config.ts";
import { runGateway } from "../gateway/runGateway.ts";
import { onStopSignal } from "../lib/shutdown.ts";
import { createLogger } from "../lib/log.ts";
import type { Runner } from "./command.ts";

export const runGatewayCommand: Runner = async ({ values }) => {
  const config = await loadGatewayConfig(values.config as string);
  const running = await runGateway(config, { log: createLogger() });
  console.error(`blosm gateway ${config.name}: ${running.url} (apps: ${Object.keys(config.apps).join(", ")})`);
  await onStopSignal(() => running.stop(), { graceMs: 30_000, onForced: (why) => console.error(`blosm gateway: ${why}`) });
  // Stopped in order; a library's reconnect timer (Redis away) must not keep the process alive after that.
  setTimeout(() => process.exit(process.exitCode ?? 0), 1000).unref();
  return 0;
};


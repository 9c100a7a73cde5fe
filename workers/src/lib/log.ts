/**
 * Structured logs: one JSON object per line on stderr (or a custom sink), with a level, a message and fields.
 * Fields are values the caller chose to log; keys and passwords are never passed here (see chain/keys.ts).
 */
export type Level = "debug" | "info" | "warn" | "error";
const rank: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Logger = {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(bindings: Record<string, unknown>): Logger;
};

export function createLogger(
  opts: { level?: Level; bindings?: Record<string, unknown>; sink?: (line: string) => void } = {},
): Logger {
  const min = rank[opts.level ?? ((process.env.BLOSM_LOG_LEVEL as Level | undefined) ?? "info")] ?? rank.info;
  const sink = opts.sink ?? ((line: string) => process.stderr.write(`${line}\n`));
  const bindings = opts.bindings ?? {};
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (rank[level] < min) return;
    sink(JSON.stringify({ time: new Date().toISOString(), level, msg, ...bindings, ...fields }, replacer));
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (more) => createLogger({ ...opts, bindings: { ...bindings, ...more } }),
  };
}

function replacer(_key: string, value: unknown) {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) return { name: value.name, message: value.message };
  return value;
}

/** A logger that drops everything (tests that do not look at logs). */
export const silentLogger: Logger = createLogger({ sink: () => {} });

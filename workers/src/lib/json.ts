/** JSON.stringify replacer for values that hold bigints (chain data): they go out as decimal strings. */
export const bigintReplacer = (_key: string, value: unknown) => (typeof value === "bigint" ? value.toString() : value);

/** JSON text of a value that may hold bigints. */
export const toJson = (value: unknown, space?: number) => JSON.stringify(value, bigintReplacer, space);

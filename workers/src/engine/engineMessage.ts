/** The Engine's own message from a dockerode error, without the "(HTTP code N) …" prefix. */
export function engineMessage(e: Error): string {
  const json = (e as { json?: { message?: string } }).json;
  return json?.message ?? e.message.replace(/^\(HTTP code \d+\)[^-]*- /, "");
}

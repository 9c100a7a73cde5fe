import type Docker from "dockerode";
import { buildImage } from "./localImages.ts";

/**
 * BloSM's driver-profiling service, in shape: POST a 40×15 window of CAN features (600 numbers, JSON or CSV),
 * get back a driver id and a confidence. Served by busybox httpd as CGI; the "model" hashes the window a number
 * of times, so each answer costs real compute and depends only on its request (stateless, as in BloSM).
 */
const INFER = `#!/bin/sh
printf 'Content-Type: application/json\\r\\n'
len=\${CONTENT_LENGTH:-0}
if [ "$REQUEST_METHOD" != POST ] || [ "$len" -le 0 ] || [ "$len" -gt 65536 ]; then
  printf 'Status: 400 Bad Request\\r\\n\\r\\n{"error":"POST a 40x15 window of CAN features (at most 64 KiB)"}\\n'
  exit 0
fi
body=$(head -c "$len")
n=$(printf '%s' "$body" | tr -c '0-9.\\n-' ' ' | tr -s ' ' '\\n' | grep -c '[0-9]')
if [ "$n" -ne 600 ]; then
  printf 'Status: 422 Unprocessable Entity\\r\\n\\r\\n{"error":"expected 600 features (40x15), got %s"}\\n' "$n"
  exit 0
fi
h=$(printf '%s' "$body" | sha256sum)
i=0
while [ $i -lt \${ROUNDS:-4} ]; do h=$(printf '%s' "$h" | sha256sum); i=$((i+1)); done
d=$(printf '%d' "0x$(printf '%s' "$h" | head -c 2)")
c=$(printf '%d' "0x$(printf '%s' "$h" | cut -c3-4)")
printf '\\r\\n{"driverId":%d,"confidence":0.%02d}\\n' $((d % 10)) $((c % 100))
`;

export async function buildDriverProfilingImage(docker: Docker, base: string, reference: string): Promise<string> {
  return buildImage(docker, reference, {
    Dockerfile: [
      `FROM ${base}`,
      "COPY infer.sh /www/cgi-bin/infer",
      "RUN chmod 0755 /www/cgi-bin/infer && mkdir -p /var/log",
      'LABEL blosm.app-type="driver-profiling"',
      'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]',
      "",
    ].join("\n"),
    "infer.sh": INFER,
  });
}

/** A 40×15 window of CAN-bus features as the car would send it (speed, rpm, throttle, … per 1/40 s). */
export function canWindow(seed: number): string {
  const rows: string[] = [];
  for (let t = 0; t < 40; t++) {
    const row: string[] = [];
    for (let f = 0; f < 15; f++) row.push((Math.sin(seed * 0.37 + t * 0.11 + f) * 50 + 50).toFixed(2));
    rows.push(row.join(","));
  }
  return rows.join("\n");
}

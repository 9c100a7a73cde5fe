import type Docker from "dockerode";
import { buildImage } from "./localImages.ts";

/**
 * BloSM's driver-profiling service, in shape: POST a 40×15 window of CAN features (600 numbers, JSON or CSV),
 * get back a driver id and a confidence. Served by busybox httpd as CGI; the "model" hashes the window a number
 * of times, so each answer costs real compute and depends only on its request (stateless, as in BloSM).
 */
export const DRIVER_PROFILING_CGI = `#!/bin/sh
len=\${CONTENT_LENGTH:-0}
if [ "$REQUEST_METHOD" != POST ] || [ "$len" -le 0 ] || [ "$len" -gt 65536 ]; then
  printf 'Status: 400 Bad Request\\r\\nContent-Type: application/json\\r\\n\\r\\n{"error":"POST a 40x15 window of CAN features (at most 64 KiB)"}\\n'
  exit 0
fi
body=$(head -c "$len")
n=$(printf '%s' "$body" | tr -c '0-9.\\n-' ' ' | tr -s ' ' '\\n' | grep -c '[0-9]')
if [ "$n" -ne 600 ]; then
  printf 'Status: 422 Unprocessable Entity\\r\\nContent-Type: application/json\\r\\n\\r\\n{"error":"expected 600 features (40x15), got %s"}\\n' "$n"
  exit 0
fi
h=$(printf '%s' "$body" | sha256sum)
i=0
while [ $i -lt \${ROUNDS:-4} ]; do h=$(printf '%s' "$h" | sha256sum); i=$((i+1)); done
d=$(printf '%d' "0x$(printf '%s' "$h" | head -c 2)")
c=$(printf '%d' "0x$(printf '%s' "$h" | cut -c3-4)")
printf 'Content-Type: application/json\\r\\n\\r\\n{"driverId":%d,"confidence":0.%02d}\\n' $((d % 10)) $((c % 100))
`;

/**
 * BloSM's image-recognition service, in shape: POST an image (PPM/PGM, PNG or JPEG, at most 1 MiB), get back an
 * object id, a class name and a probability. The "model" hashes the pixels a number of times (ROUNDS), so the
 * answer costs compute that grows with the image and depends only on it.
 */
const RECOGNIZE = `#!/bin/sh
len=\${CONTENT_LENGTH:-0}
if [ "$REQUEST_METHOD" != POST ] || [ "$len" -le 0 ] || [ "$len" -gt 1048576 ]; then
  printf 'Status: 400 Bad Request\\r\\nContent-Type: application/json\\r\\n\\r\\n{"error":"POST an image (PPM, PGM, PNG or JPEG) of at most 1 MiB"}\\n'
  exit 0
fi
f=/tmp/req.$$
head -c "$len" > $f
magic=$(head -c 4 $f | od -An -tx1 | tr -d ' \\n')
case "$magic" in
  5036*|5035*|89504e47|ffd8ff*) ;;
  *) rm -f $f; printf 'Status: 415 Unsupported Media Type\\r\\nContent-Type: application/json\\r\\n\\r\\n{"error":"not a PPM, PGM, PNG or JPEG image"}\\n'; exit 0 ;;
esac
h=$(sha256sum < $f | cut -c1-64)
rm -f $f
i=0
while [ $i -lt \${ROUNDS:-8} ]; do h=$(printf '%s' "$h" | sha256sum); i=$((i+1)); done
o=$(( $(printf '%d' "0x$(printf '%s' "$h" | head -c 2)") % 10 ))
p=$(printf '%d' "0x$(printf '%s' "$h" | cut -c3-4)")
set -- person bicycle car motorcycle bus truck traffic-light stop-sign dog cat
shift $o
printf 'Content-Type: application/json\\r\\n\\r\\n{"objectId":%d,"name":"%s","probability":0.%02d}\\n' $o "$1" $((50 + p % 50))
`;

export async function buildDriverProfilingImage(docker: Docker, base: string, reference: string): Promise<string> {
  return buildSampleApp(docker, base, reference, "driver-profiling", DRIVER_PROFILING_CGI);
}

export async function buildImageRecognitionImage(docker: Docker, base: string, reference: string): Promise<string> {
  return buildSampleApp(docker, base, reference, "image-recognition", RECOGNIZE);
}

/** busybox httpd serving one CGI at /cgi-bin/infer on port 8080, labelled so gateways find it. */
function buildSampleApp(docker: Docker, base: string, reference: string, type: string, script: string): Promise<string> {
  return buildImage(docker, reference, {
    Dockerfile: [
      `FROM ${base}`,
      "COPY infer.sh /www/cgi-bin/infer",
      "RUN chmod 0755 /www/cgi-bin/infer && mkdir -p /var/log",
      `LABEL blosm.app-type="${type}" blosm.app-port="8080" blosm.app-path="/cgi-bin/infer"`,
      'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]',
      "",
    ].join("\n"),
    "infer.sh": script,
  });
}

/** A small camera frame (binary PPM, 64×48) as a car would send for recognition; `seed` varies the content. */
export function cameraFrame(seed: number, width = 64, height = 48): Buffer {
  const header = Buffer.from(`P6\n${width} ${height}\n255\n`, "ascii");
  const px = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      px[i] = (x * 4 + seed * 7) & 255;
      px[i + 1] = (y * 5 + seed * 3) & 255;
      px[i + 2] = ((x ^ y) + seed) & 255;
    }
  }
  return Buffer.concat([header, px]);
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

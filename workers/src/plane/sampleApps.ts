import type Docker from "dockerode";
import { readFile } from "node:fs/promises";
import { inferBinary } from "./inferBinary.ts";
import { buildImage } from "./localImages.ts";

/** Where the sample apps answer (their `blosm.app-path` label): POST a request, get the model's answer. */
export const APP_PATH = "/infer";

/**
 * The command that runs a sample app on `port` (its image's default is 8080); `verbose` logs each request
 * ("infer: POST /infer 200 4.1 ms") to the container's output.
 */
export function appCmd(port: number, o: { verbose?: boolean } = {}): string[] {
  return ["infer", "-p", String(port), ...(o.verbose ? ["-v"] : [])];
}

/**
 * BloSM's driver-profiling service, in shape: POST a 40×15 window of CAN features (600 numbers, JSON or CSV, at most
 * 64 KiB), get back a driver id and a confidence. Served by the inference server in docker/sample-app/infer.c.
 */
export function buildDriverProfilingImage(docker: Docker, base: string, reference: string): Promise<string> {
  return buildSampleApp(docker, base, reference, "driver-profiling");
}

/**
 * BloSM's image-recognition service, in shape: POST an image (PPM/PGM, PNG or JPEG, at most 1 MiB), get back an
 * object id, a class name and a probability.
 */
export function buildImageRecognitionImage(docker: Docker, base: string, reference: string): Promise<string> {
  return buildSampleApp(docker, base, reference, "image-recognition");
}

/** The base image plus the static inference server (one process per container), labelled so gateways find it. */
async function buildSampleApp(docker: Docker, base: string, reference: string, type: string): Promise<string> {
  return buildImage(docker, reference, {
    Dockerfile: [
      `FROM ${base}`,
      "COPY infer /bin/infer",
      `ENV INFER_MODEL=${type}`,
      `LABEL blosm.app-type="${type}" blosm.app-port="8080" blosm.app-path="${APP_PATH}"`,
      `CMD ${JSON.stringify(appCmd(8080))}`,
      "",
    ].join("\n"),
    infer: { content: await readFile(await inferBinary()), mode: 0o755 },
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

/** What a car sends the app `type` as its request number `seq`: a CAN window, or a camera frame for recognition. */
export function requestBody(type: string, seq: number): { body: Buffer | string; contentType: string } {
  return type === "driver-profiling" ? { body: canWindow(seq), contentType: "text/csv" } : { body: cameraFrame(seq), contentType: "image/x-portable-pixmap" };
}

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../lib/freePort.ts";
import { inferBinary } from "./inferBinary.ts";
import { APP_PATH, appCmd, cameraFrame, canWindow } from "./sampleApps.ts";

/** The sample apps' server (docker/sample-app/infer.c), built as the images get it and run here on loopback. */
let bin: string;
const servers: ChildProcess[] = [];
const logs = new Map<number, string>();

async function start(model: string, env: Record<string, string> = {}): Promise<number> {
  const port = await freePort();
  const p = spawn(bin, [...appCmd(port, { verbose: true }).slice(1), "-m", model], { stdio: ["ignore", "ignore", "pipe"], env });
  servers.push(p);
  logs.set(port, "");
  p.stderr!.on("data", (d: Buffer) => logs.set(port, logs.get(port) + d.toString()));
  for (let i = 0; i < 50 && !logs.get(port)!.includes("answering"); i++) await new Promise((r) => setTimeout(r, 20));
  return port;
}

/** Sends raw bytes and returns everything the server wrote until it closed or went quiet for 300 ms. */
function raw(port: number, bytes: string | Buffer): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    let text = "";
    let quiet: NodeJS.Timeout | undefined;
    const idle = () => {
      clearTimeout(quiet);
      quiet = setTimeout(() => (s.destroy(), resolve({ text, closed: false })), 300);
    };
    s.on("data", (d) => ((text += d.toString()), idle()));
    s.on("end", () => (clearTimeout(quiet), resolve({ text, closed: true })));
    s.on("error", reject);
    s.write(bytes, idle);
  });
}

const post = (port: number, body: string | Buffer, path = APP_PATH) => fetch(`http://127.0.0.1:${port}${path}`, { method: "POST", body });

let driver: number;
let vision: number;
beforeAll(async () => {
  bin = await inferBinary();
  [driver, vision] = [await start("driver-profiling"), await start("image-recognition")];
}, 60_000);
afterAll(() => servers.forEach((p) => p.kill("SIGKILL")));

describe("the sample apps' inference server", () => {
  it("answers a CAN window with a driver id and a confidence that depend only on the window", async () => {
    const answers = [];
    for (let seed = 0; seed < 12; seed++) {
      const res = await post(driver, canWindow(seed));
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/json");
      answers.push((await res.json()) as { driverId: number; confidence: number });
    }
    for (const a of answers) {
      expect(Number.isInteger(a.driverId) && a.driverId >= 0 && a.driverId < 10).toBe(true);
      expect(a.confidence).toBeGreaterThan(0);
      expect(a.confidence).toBeLessThan(1);
    }
    expect(await (await post(driver, canWindow(3))).json()).toEqual(answers[3]);
    expect(new Set(answers.map((a) => a.driverId)).size).toBeGreaterThan(1); // a model, not a constant
  });

  it("answers a camera frame with an object; what is not an image gets 415", async () => {
    const res = await post(vision, cameraFrame(2));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { objectId: number; name: string; probability: number };
    expect(body.name).toMatch(/^[a-z-]+$/);
    expect(await (await post(vision, cameraFrame(2))).json()).toEqual(body);
    const text = await post(vision, "hello, not an image");
    expect(text.status).toBe(415);
    expect(await text.json()).toEqual({ error: "not a PPM, PGM, PNG or JPEG image" });
  });

  it("names what is wrong with a request", async () => {
    const short = await post(driver, "1,2,3");
    expect([short.status, await short.json()]).toEqual([422, { error: "expected 600 features (40x15), got 3" }]);
    const get = await fetch(`http://127.0.0.1:${driver}${APP_PATH}`);
    expect([get.status, get.headers.get("allow")]).toEqual([405, "POST"]);
    expect(((await get.json()) as { error: string }).error).toMatch(/answers POST only/);
    const elsewhere = await post(driver, canWindow(1), "/predict");
    expect([elsewhere.status, await elsewhere.json()]).toEqual([404, { error: `no such path; POST requests to ${APP_PATH}` }]);
    expect((await post(driver, "")).status).toBe(400);
    // Refused from its headers alone: the body is never read.
    const big = await raw(driver, `POST ${APP_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n`);
    expect(big.text).toMatch(/^HTTP\/1\.1 413 .*body of 70000 bytes; driver-profiling takes at most 65536/s);
    expect(big.closed).toBe(true);
    const chunked = await raw(driver, `POST ${APP_PATH} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n1,2,3\r\n0\r\n\r\n`);
    expect(chunked.text).toMatch(/^HTTP\/1\.1 411 /);
    expect((await raw(driver, `POST ${APP_PATH} HTTP/1.1\r\nContent-Length: 12x\r\n\r\n`)).text).toMatch(/^HTTP\/1\.1 400 .*Content-Length is not a number/s);
    expect((await raw(driver, "hello there\r\n\r\n")).text).toMatch(/^HTTP\/1\.1 400 .*not an HTTP\/1\.x request line/s);
    expect((await raw(driver, `GET / HTTP/1.1\r\nX: ${"a".repeat(17_000)}`)).text).toMatch(/^HTTP\/1\.1 431 /);
  });

  it("keeps a connection for the next request, answers pipelined requests in order, and closes when asked", async () => {
    const one = `POST ${APP_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n1,2,3`;
    const window = canWindow(4);
    const two = `POST ${APP_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: ${window.length}\r\nConnection: close\r\n\r\n${window}`;
    const both = await raw(driver, one + two);
    expect(both.text.match(/^HTTP\/1\.1 \d+/gm)).toEqual(["HTTP/1.1 422", "HTTP/1.1 200"]);
    expect(both.closed).toBe(true); // after the second: it asked to close
    const kept = await raw(driver, one);
    expect(kept.text).toMatch(/^HTTP\/1\.1 422 /);
    expect(kept.closed).toBe(false);
    // A body in pieces (as a slow link delivers it) is answered once whole.
    const pieces = await new Promise<string>((resolve, reject) => {
      const s = connect(driver, "127.0.0.1");
      let text = "";
      s.on("data", (d) => (text += d.toString())).on("end", () => resolve(text)).on("error", reject);
      s.write(`POST ${APP_PATH} HTTP/1.1\r\nContent-Length: ${window.length}\r\nConnection: close\r\n\r\n${window.slice(0, 100)}`);
      setTimeout(() => s.write(window.slice(100)), 200);
    });
    expect(pieces).toMatch(/^HTTP\/1\.1 200 .*"driverId":/s);
  });

  it("refuses uploads beyond what its memory allows at once (503), and serves again once they are gone", async () => {
    // 30 frames of 1 MiB in flight together, each short of its last byte: more than the 24 MiB it holds at once.
    const frame = Buffer.concat([Buffer.from("P6\n1024 341\n255\n"), Buffer.alloc(1024 * 1024 - 16, 7)]);
    const head = `POST ${APP_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: ${frame.length}\r\nConnection: close\r\n\r\n`;
    const sockets = Array.from({ length: 30 }, () => connect(vision, "127.0.0.1"));
    const answers = sockets.map((s) => new Promise<string>((resolve) => {
      let text = "";
      s.on("data", (d) => (text += d.toString())).on("close", () => resolve(text)).on("error", () => {});
    }));
    for (const s of sockets) s.write(Buffer.concat([Buffer.from(head), frame.subarray(0, -1)]));
    await new Promise((r) => setTimeout(r, 1500));
    for (const s of sockets) if (!s.destroyed) s.write(frame.subarray(-1));
    const statuses = (await Promise.all(answers)).map((t) => Number(t.slice(9, 12)));
    expect(statuses.every((x) => x === 200 || x === 503)).toBe(true);
    expect(statuses.filter((x) => x === 503).length).toBeGreaterThan(0);
    expect(statuses.filter((x) => x === 200).length).toBeGreaterThanOrEqual(20); // 24 MiB holds over 20 of them
    expect((await post(vision, cameraFrame(1))).status).toBe(200);
  });

  it("answers on the path INFER_PATH names, and only there", async () => {
    const port = await start("driver-profiling", { INFER_PATH: "/v1/models/driver-predict" });
    expect((await post(port, canWindow(1), "/v1/models/driver-predict")).status).toBe(200);
    expect((await post(port, canWindow(1))).status).toBe(404);
  });

  it("logs each request with -v, one line naming method, path, status and time", async () => {
    await post(driver, "1,2");
    expect(logs.get(driver)).toMatch(/infer: POST \/infer 422 \d+\.\d ms\n/);
  });

  it("stops at once on SIGTERM (as PID 1 in a container it has no default handler)", async () => {
    const port = await start("driver-profiling");
    const p = servers.at(-1)!;
    const t0 = Date.now();
    const code = await new Promise<number | null>((resolve) => (p.on("exit", resolve), p.kill("SIGTERM")));
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(1500);
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  });

  it("refuses a bad command line, naming the problem", () => {
    const run = (args: string[], env: Record<string, string> = {}) => spawnSync(bin, args, { encoding: "utf8", env });
    expect(run(["-p", "8080"])).toMatchObject({ status: 2, stderr: expect.stringMatching(/no model: pass -m or set INFER_MODEL/) });
    expect(run(["-m", "speech"])).toMatchObject({ status: 2, stderr: expect.stringMatching(/unknown model "speech"/) });
    expect(run(["-m", "driver-profiling", "-p", "70000"])).toMatchObject({ status: 2, stderr: expect.stringMatching(/port must be a number/) });
    expect(run(["-m", "driver-profiling", "-p", "localhost:8080"])).toMatchObject({ status: 2, stderr: expect.stringMatching(/IPv4 address/) });
    expect(run(["-m", "driver-profiling"], { INFER_HIDDEN: "0" })).toMatchObject({ status: 2, stderr: expect.stringMatching(/INFER_HIDDEN must be/) });
    expect(run(["-m", "driver-profiling"], { INFER_PATH: 'infer"x' })).toMatchObject({ status: 2, stderr: expect.stringMatching(/INFER_PATH must be a path starting with \//) });
    expect(run(["-m", "driver-profiling"], { INFER_PATH: '/a"b' })).toMatchObject({ status: 2, stderr: expect.stringMatching(/INFER_PATH must be/) });
    expect(run(["-m", "driver-profiling", "-p", `127.0.0.1:${driver}`])).toMatchObject({ status: 1, stderr: expect.stringMatching(/cannot listen on .*Address (already )?in use/) });
  });
});

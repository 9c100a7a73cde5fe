import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export type ClusterNet = { ns: string; hostIp: string; gatewayIp: string };

/**
 * A network namespace standing for one edge cluster's host: a veth pair to the root namespace
 * (10.78.<i>.1 here, 10.78.<i>.2 inside), a default route back, optionally a link shaped with tc.
 * Addresses exist only on this machine; nothing leaves it.
 */
export async function createClusterNet(i: number, opts: { prefix?: string; rateMbit?: number } = {}): Promise<ClusterNet> {
  const ns = `${opts.prefix ?? "blosm-cl"}${i}`;
  const outside = `${ns}-o`.slice(0, 15);
  const inside = `${ns}-i`.slice(0, 15);
  await destroyClusterNet(i, opts);
  const ip = (...args: string[]) => run("ip", args);
  const inNs = (...args: string[]) => run("ip", ["netns", "exec", ns, ...args]);
  await ip("netns", "add", ns);
  await ip("link", "add", outside, "type", "veth", "peer", "name", inside);
  await ip("link", "set", inside, "netns", ns);
  await ip("addr", "add", `10.78.${i}.1/24`, "dev", outside);
  await ip("link", "set", outside, "up");
  await inNs("ip", "addr", "add", `10.78.${i}.2/24`, "dev", inside);
  await inNs("ip", "link", "set", inside, "up");
  await inNs("ip", "link", "set", "lo", "up");
  await inNs("ip", "route", "add", "default", "via", `10.78.${i}.1`);
  if (opts.rateMbit) {
    const tbf = ["root", "tbf", "rate", `${opts.rateMbit}mbit`, "burst", "64kb", "latency", "50ms"];
    await run("tc", ["qdisc", "add", "dev", outside, ...tbf]);
    await inNs("tc", "qdisc", "add", "dev", inside, ...tbf);
  }
  return { ns, hostIp: `10.78.${i}.2`, gatewayIp: `10.78.${i}.1` };
}

/** Removes a cluster's namespace and its link; returns whether the namespace was there. */
export async function destroyClusterNet(i: number, opts: { prefix?: string } = {}): Promise<boolean> {
  const ns = `${opts.prefix ?? "blosm-cl"}${i}`;
  const existed = await run("ip", ["netns", "del", ns]).then(() => true, () => false);
  await run("ip", ["link", "del", `${ns}-o`.slice(0, 15)]).catch(() => {});
  return existed;
}

import { parentPort, workerData } from "node:worker_threads";
import { privateKeyToAccount } from "viem/accounts";
import { ClientSigner } from "../gateway/clientSigner.ts";
import type { CarsThreadInput, CarsThreadMessage } from "./carsThread.ts";
import { requestBody } from "./sampleApps.ts";
import { simulate } from "./simulator.ts";

/** The cars' thread (carsThread.ts): drives them with simulate() and sends what happens to the plane's thread. */
const input = workerData as CarsThreadInput;
const port = parentPort!;
const send = (m: CarsThreadMessage) => port.postMessage(m);
let stopped = false;
port.on("message", (m) => {
  if (m === "stop") stopped = true;
});
port.unref(); // the thread ends when the cars do
try {
  const { carKeys, ...rest } = input;
  const { cars } = await simulate({
    ...rest, cars: carKeys.map((k) => new ClientSigner(privateKeyToAccount(k))), body: (seq) => requestBody(input.appType, seq),
    stopped: () => stopped, onRecord: (record) => send({ type: "record", record }), onHandover: (handover) => send({ type: "handover", handover }),
  });
  send({ type: "done", cars });
} catch (err) {
  send({ type: "failed", message: (err as Error).message });
}

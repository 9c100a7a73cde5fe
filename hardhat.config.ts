import { createRequire } from "node:module";
import hardhatToolboxViemPlugin from "@nomicfoundation/hardhat-toolbox-viem";
import { configVariable, defineConfig } from "hardhat/config";

const require = createRequire(import.meta.url);

// Hardhat cannot download compilers on these machines; the npm `solc` package ships the wasm build.
// The path must be absolute: a relative one is resolved inside Hardhat's own folder.
const soljson = require.resolve("solc/soljson.js");
const solcVersion: string = require("solc/package.json").version;
const compiler = {
  version: solcVersion,
  path: soljson,
  settings: {
    // Clique networks run geth <= 1.13.15 with London rules: no PUSH0 (Shanghai) or MCOPY (Cancun).
    evmVersion: "london",
    optimizer: { enabled: true, runs: 200 },
  },
};
const blockTimeMs = Number(process.env.BLOSM_BLOCK_TIME_MS ?? 1000);

export default defineConfig({
  plugins: [hardhatToolboxViemPlugin],
  // Ignition keeps each deployment's journal under <paths.ignition>/deployments. blosm's throwaway chains (up,
  // devnet, tests) set BLOSM_IGNITION_DIR=.blosm/ignition so running anything leaves the checkout clean; modules
  // stay in ignition/modules and are always named by path.
  paths: { ignition: process.env.BLOSM_IGNITION_DIR ?? "ignition" },
  solidity: {
    // Both build profiles spelled out: `ignition deploy` builds with "production", and a profile left to
    // Hardhat's defaults would target a newer EVM (PUSH0), which a London-rules Clique chain rejects.
    profiles: {
      default: compiler,
      production: compiler,
    },
  },
  // Solidity tests: the registry's invariants (test/contracts/invariants). `npm run test:invariants` runs 10 000
  // sequences per property; `npm test` a shorter run. Each sequence is `depth` calls by random parties.
  test: {
    solidity: {
      invariant: {
        runs: Number(process.env.BLOSM_INVARIANT_RUNS ?? 200),
        depth: Number(process.env.BLOSM_INVARIANT_DEPTH ?? 40),
        failOnRevert: false,
      },
    },
  },
  networks: {
    // In-process chain for tests (automine), London rules so nothing newer than Clique's EVM slips in.
    default: {
      type: "edr-simulated",
      chainType: "l1",
      hardfork: "london",
    },
    // The local dev/CI chain served by `npm run chain`: a real JSON-RPC node sealing one block per period,
    // like a Clique signer (BLOSM_BLOCK_TIME_MS, default 1000), with London rules like geth 1.13 Clique.
    chain: {
      type: "edr-simulated",
      chainType: "l1",
      hardfork: "london",
      mining: { auto: false, interval: blockTimeMs },
      // Tests may run faster than Clique's 1 s minimum period; blocks then share timestamps.
      allowBlocksWithSameTimestamp: blockTimeMs < 1000,
    },
    localhost: {
      type: "http",
      chainType: "l1",
      url: process.env.BLOSM_RPC_URL ?? "http://127.0.0.1:8545",
    },
    // A private Clique PoA network (geth v1.13.15 signers). URL and deployer key are configuration variables
    // (`npx hardhat keystore set CLIQUE_RPC_URL` / `CLIQUE_DEPLOYER_KEY`, or environment variables), never committed.
    clique: {
      type: "http",
      chainType: "l1",
      url: configVariable("CLIQUE_RPC_URL"),
      accounts: [configVariable("CLIQUE_DEPLOYER_KEY")],
    },
  },
});

import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";

/**
 * Deploys the MigrationRegistry.
 * Parameters (ignition/parameters/<network>.json, key "MigrationRegistry"):
 * - admin: account that registers and deactivates edge nodes (an EOA now, a multisig later); defaults to the deployer.
 * - offerWindowSeconds: how long candidates may offer after a request (1..3600); defaults to 5 (five 1 s blocks).
 * - initialNodes: NodeRegistration[] registered at deployment (operator, endpoint, location, coverage, capacity,
 *   app types as bytes32).
 */
export default buildModule("MigrationRegistry", (m) => {
  const admin = m.getParameter("admin", m.getAccount(0));
  const offerWindowSeconds = m.getParameter("offerWindowSeconds", 5);
  const initialNodes = m.getParameter("initialNodes", []);
  const registry = m.contract("MigrationRegistry", [admin, offerWindowSeconds, initialNodes]);
  return { registry };
});

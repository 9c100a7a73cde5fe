// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {IMigrationRegistry} from "./interfaces/IMigrationRegistry.sol";
import {EdgeNodes} from "./libraries/EdgeNodes.sol";
import {Migrations} from "./libraries/Migrations.sol";

/// @title MigrationRegistry
/// @notice Coordinates service-container migrations between edge clusters on a permissioned chain (BloSM).
/// A source cluster requests a migration with the container's requirements; candidate clusters self-evaluate and
/// offer; one is assigned; the source publishes the snapshot's digest; the destination runs exactly that image
/// and records completion with per-phase timings. Only registered, active edge nodes act, and only in their role.
/// @dev Compiled for London (no PUSH0): Clique networks run geth <= 1.13.15.
contract MigrationRegistry is IMigrationRegistry, AccessControl, EIP712 {
    using EdgeNodes for EdgeNodes.State;
    using Migrations for Migrations.State;

    /// @notice Held by every registered, active edge node's operator key.
    bytes32 public constant EDGE_NODE_ROLE = keccak256("EDGE_NODE_ROLE");

    /// @notice What a preferred destination signs (EIP-712) to accept a request before it is sent: the request
    /// itself (keccak256 of its ABI encoding), who sends it, the score it would have offered, until when, and the
    /// service's latest migration id at signing (so an acceptance serves one request once).
    bytes32 public constant ACCEPTANCE_TYPEHASH =
        keccak256("Acceptance(address source,bytes32 request,uint256 afterMigration,uint32 score,uint64 expires)");

    EdgeNodes.State private _nodes;
    Migrations.State private _migrations;

    /// @param admin Account (EOA or multisig) that registers and deactivates nodes.
    /// @param offerWindowSeconds How long candidates may offer after a request (1 s .. 1 h).
    /// @param initialNodes Nodes registered at deployment.
    /// Requirements:
    /// - `admin` is not zero; every initial node passes {registerNode}'s checks.
    constructor(address admin, uint32 offerWindowSeconds, NodeRegistration[] memory initialNodes)
        EIP712("blosm MigrationRegistry", "1")
    {
        if (admin == address(0)) revert MigrationRegistryInvalidOperator(admin);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _migrations.initialize(offerWindowSeconds);
        for (uint256 i = 0; i < initialNodes.length; ++i) {
            _register(initialNodes[i]);
        }
    }

    modifier onlyActiveNode() {
        _checkRole(EDGE_NODE_ROLE);
        _nodes.requireActive(msg.sender);
        _;
    }

    // ------------------------------------------------------------ edge nodes

    /// @notice Registers an edge node (or reactivates a deactivated one) and grants its operator EDGE_NODE_ROLE.
    /// Requirements:
    /// - caller has DEFAULT_ADMIN_ROLE; the node is not active;
    /// - endpoint is 1..256 bytes; position within ±90°/±180°; coverage 1 m..1000 km;
    /// - capacity has CPU and memory, GPU memory iff GPUs, all within bounds; 1..32 distinct non-zero app types.
    function registerNode(NodeRegistration calldata node) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _register(node);
    }

    /// @notice Replaces a node's location, coverage, total capacity and app types.
    /// Requirements:
    /// - caller has DEFAULT_ADMIN_ROLE; the node is active; inputs pass the bounds of {registerNode}.
    function updateNode(
        address operator,
        Position calldata location,
        uint32 coverageRadiusM,
        Capacity calldata total,
        bytes32[] calldata appTypes
    ) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _nodes.update(operator, location, coverageRadiusM, total, appTypes);
    }

    /// @notice A node publishes its own endpoint (how peers reach its worker) and the SHA-256 of its image
    /// registry's TLS certificate (peers pin it before pushing a snapshot there).
    /// Requirements:
    /// - caller is an active edge node; endpoint is 1..256 bytes; the certificate hash is not zero.
    function updateEndpoint(string calldata endpoint, bytes32 registryCertSha256) external onlyActiveNode {
        _nodes.updateEndpoint(msg.sender, endpoint, registryCertSha256);
    }

    /// @notice A node's periodic report of its free capacity, read by gateways choosing a neighbour.
    /// Requirements:
    /// - caller is an active edge node; every field is at most the node's total.
    function reportCapacity(Capacity calldata free) external onlyActiveNode {
        _nodes.reportCapacity(msg.sender, free);
    }

    /// @notice Deactivates a node and revokes its role. Its open migrations can still be failed by the other
    /// party or expired by anyone.
    /// Requirements:
    /// - caller has DEFAULT_ADMIN_ROLE; the node is active.
    function deactivateNode(address operator) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _nodes.deactivate(operator);
        _revokeRole(EDGE_NODE_ROLE, operator);
    }

    /// @notice Sets how long candidates may offer after each new request.
    /// Requirements:
    /// - caller has DEFAULT_ADMIN_ROLE; 1 <= seconds_ <= 3600.
    function setOfferWindow(uint32 seconds_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _migrations.setOfferWindow(seconds_);
    }

    // ------------------------------------------------------------ migrations

    /// @notice The source cluster asks to move a service container (BloSM Algorithm 1). Emits {MigrationRequested}.
    /// Requirements:
    /// - caller is an active edge node with fewer than 64 open migrations as source;
    /// - the service has no open migration, and the caller is the node it runs on by the record (see {serviceOf});
    /// - non-zero service id and app type; CPU, memory and snapshot size non-zero and within bounds, GPU memory
    ///   only with GPUs;
    /// - deadline after the offer window and at most one day ahead;
    /// - a preferred destination, if given, is another active node that supports the app type and can hold it;
    /// - base image at most 256 bytes; client position, if given, within bounds.
    function requestMigration(MigrationRequest calldata request) external onlyActiveNode returns (uint256 id) {
        return _migrations.request(_nodes, msg.sender, request);
    }

    /// @notice {requestMigration} with the preferred destination's consent obtained off-chain: it self-evaluated
    /// the very request and signed an acceptance (EIP-712, {acceptanceDigest}), so the migration is assigned to it
    /// in the same transaction (MigrationAssigned, preferred) instead of after its offer lands a block or more
    /// later. Without an acceptance, or when it no longer holds, the source sends the plain request.
    /// Requirements:
    /// - everything {requestMigration} requires, with a preferred destination named;
    /// - `expires` is not past; `signature` is the preferred destination's over this request, this caller as
    ///   source, `score`, `expires` and the service's latest migration id now (see {serviceOf}).
    function requestMigrationAccepted(MigrationRequest calldata request, uint32 score, uint64 expires, bytes calldata signature)
        external
        onlyActiveNode
        returns (uint256 id)
    {
        address preferred = request.preferredDestination;
        if (preferred == address(0)) revert MigrationRegistryInvalidPreferredDestination(preferred);
        if (block.timestamp > expires) revert MigrationRegistryAcceptanceExpired(expires, uint64(block.timestamp));
        // Read before the request: the request makes this migration the service's latest.
        (address signer,,) = ECDSA.tryRecover(acceptanceDigest(request, msg.sender, score, expires), signature);
        if (signer != preferred) revert MigrationRegistryInvalidAcceptance(signer, preferred);
        id = _migrations.request(_nodes, msg.sender, request);
        _migrations.assignAccepted(id, score);
    }

    /// @notice The EIP-712 digest a preferred destination signs to accept `request` from `source` now (it names
    /// the service's latest migration id, so it changes once the request is made).
    function acceptanceDigest(MigrationRequest calldata request, address source, uint32 score, uint64 expires)
        public
        view
        returns (bytes32)
    {
        bytes32 requestHash = keccak256(abi.encode(request));
        uint256 afterMigration = _migrations.latestOf[request.serviceId];
        return _hashTypedDataV4(keccak256(abi.encode(ACCEPTANCE_TYPEHASH, source, requestHash, afterMigration, score, expires)));
    }

    /// @notice A candidate that passed self-evaluation offers to host the container, with its score.
    /// The preferred destination's offer is assigned at once, and is not bound by the offer window (which collects
    /// offers to choose among; the preferred destination is not chosen, the client is entering it): a preferred
    /// destination slowed by load still gets the migration until the source assigns another offer or cancels.
    /// Requirements:
    /// - caller is an active edge node other than the source, supports the app type, has published its registry
    ///   certificate (snapshots can be sent to it), and its total capacity holds the requirements;
    /// - the migration is Requested or Offered; for any other caller the offer window is open and the caller has
    ///   not offered yet, except on an open request (no preferred destination) nobody offered on within the
    ///   window: its first late offer is assigned at once (there is nothing to choose among);
    /// - fewer than {maxOffers} offers exist, or this one scores higher than the lowest kept, whose place it takes
    ///   (MigrationOfferDisplaced): the list is bounded but always holds the best, whoever offered first.
    function offer(uint256 id, uint32 score) external onlyActiveNode {
        _migrations.offer(_nodes, id, msg.sender, score);
    }

    /// @notice Assigns the best offer once the window has closed (highest score, earliest on ties). Anyone may call.
    /// Requirements:
    /// - the migration is Requested or Offered, its offer window has closed, and an active node has offered.
    function finalizeAssignment(uint256 id) external returns (address destination) {
        return _migrations.finalize(_nodes, id);
    }

    /// @notice The source pins the snapshot image the destination may run, by manifest digest.
    /// Requirements:
    /// - caller is the migration's source and an active edge node; the migration is Assigned; digest is non-zero.
    function publishSnapshot(uint256 id, bytes32 imageDigest) external onlyActiveNode {
        _migrations.publishSnapshot(id, msg.sender, imageDigest);
    }

    /// @notice The destination records that the container runs there, with per-phase timings.
    /// Requirements:
    /// - caller is the assigned destination and an active edge node; the migration is SnapshotPublished;
    /// - totalMs is non-zero and no phase exceeds it.
    function complete(uint256 id, Timings calldata timings) external onlyActiveNode {
        _migrations.complete(_nodes, id, msg.sender, timings);
    }

    /// @notice Either party marks an assigned migration failed; the source then restarts its container.
    /// Requirements:
    /// - caller is the source or the destination; the migration is Assigned or SnapshotPublished; code is non-zero.
    function fail(uint256 id, uint16 code) external {
        _migrations.fail(_nodes, id, msg.sender, code);
    }

    /// @notice The source withdraws a request before it is assigned.
    /// Requirements:
    /// - caller is the source; the migration is Requested or Offered.
    function cancel(uint256 id) external {
        _migrations.cancel(_nodes, id, msg.sender);
    }

    /// @notice Anyone ends a migration whose deadline has passed, so no migration stays open forever.
    /// Requirements:
    /// - the migration has not ended and block.timestamp > deadline.
    function expire(uint256 id) external {
        _migrations.expire(_nodes, id, msg.sender);
    }

    // ------------------------------------------------------------------ views

    /// @notice The current state of a migration, derived from its stored facts and the clock.
    /// Requirements:
    /// - the migration exists.
    function state(uint256 id) external view returns (MigrationState) {
        return _migrations.state(id);
    }

    /// @notice What the contract keeps of a migration (see {Migration}: the request's other details are in its
    /// MigrationRequested event at `requestedBlock`). Requirements: the migration exists.
    function getMigration(uint256 id) external view returns (Migration memory) {
        return _migrations.get(id);
    }

    /// @notice A migration's kept offers (the best {maxOffers}; a displaced offer's slot holds the one that took
    /// its place). The preferred destination's offer is assigned at once and not kept here.
    /// Requirements: the migration exists.
    function getOffers(uint256 id) external view returns (Offer[] memory) {
        return _migrations.offersOf(id);
    }

    /// @notice A service's newest migration (0 if it never moved) and the node it runs on by the record: that
    /// migration's destination if it completed, else its source (zero address if it never moved). Workers
    /// reconcile their containers against this; at most one migration of a service is open at a time.
    function serviceOf(bytes32 serviceId) external view returns (uint256 latestMigrationId, address holder) {
        return (_migrations.latestOf[serviceId], _migrations.holderOf(serviceId));
    }

    /// @notice Migrations not yet ended in which `party` is the source or the assigned destination (any, if
    /// `party` is zero), among `limit` ids from `fromId` up (never below {oldestOpenMigration}); `next` is where
    /// the following page starts, 0 when there is none. Workers rebuild their view from it after a restart.
    /// A migration past its deadline stays here until someone calls {expire}.
    function openMigrations(address party, uint256 fromId, uint256 limit)
        external
        view
        returns (uint256[] memory ids, uint256 next)
    {
        return _migrations.openPage(party, fromId, limit);
    }

    /// @notice Every migration with a lower id has ended (migrationCount() + 1 when all have).
    function oldestOpenMigration() external view returns (uint256) {
        return _migrations.oldestOpen;
    }

    /// @notice An edge node as stored. Requirements: the node was registered once.
    function getNode(address operator) external view returns (EdgeNode memory) {
        EdgeNode storage node = _nodes.nodes[operator];
        if (node.operator == address(0)) revert MigrationRegistryUnknownNode(operator);
        return node;
    }

    /// @notice A page of all nodes ever registered, active or not.
    function nodes(uint256 offset, uint256 limit) external view returns (EdgeNode[] memory page, uint256 total) {
        return _nodes.page(offset, limit);
    }

    /// @notice Whether `operator` is registered for `appType`.
    function supportsAppType(address operator, bytes32 appType) external view returns (bool) {
        return _nodes.runs[operator][appType];
    }

    /// @notice Number of migrations ever requested; ids run from 1 to this.
    function migrationCount() external view returns (uint256) {
        return _migrations.count;
    }

    /// @notice Seconds candidates may offer after a request.
    function offerWindow() external view returns (uint32) {
        return _migrations.offerWindow;
    }

    /// @notice How many offers a migration keeps (the best by score).
    function maxOffers() external pure returns (uint256) {
        return Migrations.MAX_OFFERS;
    }

    function _register(NodeRegistration memory node) private {
        _nodes.register(node);
        _grantRole(EDGE_NODE_ROLE, node.operator);
    }
}

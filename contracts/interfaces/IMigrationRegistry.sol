// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IMigrationRegistry
/// @notice Types, events and errors of the blosm migration registry: the on-chain record of which edge
/// cluster asked to move which service container, who offered to take it, which snapshot (by digest) was
/// handed over, and how long each phase took.
interface IMigrationRegistry {
    // ------------------------------------------------------------------ types

    /// @notice Why a migration was requested (BloSM's two scenarios plus operator actions).
    enum MigrationReason {
        ClientMobility,
        InsufficientResources,
        Rebalance,
        Manual
    }

    /// @notice Lifecycle of one migration, derived by {state}. `None` is never returned (unknown ids revert).
    enum MigrationState {
        None,
        Requested,
        Offered,
        Assigned,
        SnapshotPublished,
        Completed,
        Failed,
        Cancelled,
        Expired
    }

    /// @notice Resources of a node or needs of a container. Memory in MiB, CPU in millicores.
    struct Capacity {
        uint32 cpuMillicores;
        uint32 memoryMiB;
        uint16 gpuCount;
        uint32 gpuMemoryMiB;
    }

    /// @notice Fixed-point position: degrees × 1e6.
    struct Position {
        int32 latE6;
        int32 lonE6;
    }

    /// @notice What an admin registers for an edge node.
    struct NodeRegistration {
        address operator;
        string endpoint;
        Position location;
        uint32 coverageRadiusM;
        Capacity total;
        bytes32[] appTypes;
    }

    /// @notice An edge node as stored.
    struct EdgeNode {
        address operator;
        bool active;
        uint64 registeredAt;
        /// @dev Migrations this node requested that have not ended (bounded; packed beside `active` so counting
        /// costs a warm slot, not a fresh one).
        uint16 openAsSource;
        uint64 freeReportedAt;
        uint32 coverageRadiusM;
        Position location;
        Capacity total;
        Capacity free;
        string endpoint;
        /// @dev SHA-256 of the node's image-registry TLS certificate (DER): peers pin it before sending a snapshot.
        /// Zero until the node publishes one; a node without it cannot receive migrations.
        bytes32 registryCertSha256;
        bytes32[] appTypes;
    }

    /// @notice What a container needs at its destination (BloSM Algorithm 1's metadata, made complete).
    struct Requirements {
        uint32 cpuMillicores;
        uint32 memoryMiB;
        uint16 gpuCount;
        uint32 gpuMemoryMiB;
        uint64 snapshotSizeBytes;
    }

    /// @notice Arguments of {requestMigration}.
    struct MigrationRequest {
        bytes32 serviceId; // stable identity of the service container across clusters
        bytes32 appType;
        Requirements requirements;
        MigrationReason reason;
        address preferredDestination; // the cluster the client is entering, or zero
        uint64 deadline; // unix seconds; past it anyone may expire the migration
        bool stateful; // stateful containers freeze and send a final delta; stateless ones hand over
        bool hasClientPosition;
        Position clientPosition;
        string baseImage; // registry reference of the container's base image, for pre-staging (may be empty)
    }

    /// @notice Per-phase milliseconds and bytes moved, recorded by the destination at completion.
    struct Timings {
        uint32 stopMs;
        uint32 snapshotMs;
        uint32 pushMs;
        uint32 pullMs;
        uint32 startMs;
        uint32 totalMs;
        uint32 downtimeMs;
        uint64 bytesMoved;
    }

    struct Offer {
        address node;
        uint32 score;
        uint64 offeredAt;
    }

    /// @notice What the contract keeps of a migration: what later calls check, and nothing else. The request's
    /// other details (reason, stateful, client position, snapshot size, base image) are in its
    /// {MigrationRequested} event in block `requestedBlock`, the timings in {MigrationCompleted}: every node keeps
    /// storage forever, so details that no call checks live in logs. {state} derives the current state.
    struct Migration {
        address source;
        uint64 requestedBlock;
        address destination; // zero until assigned
        uint64 offerWindowEnd;
        address preferredDestination;
        uint64 deadline;
        MigrationState outcome; // None while open; Completed/Failed/Cancelled/Expired once ended
        uint16 failureCode;
        uint8 offerCount;
        Capacity needs; // the requirements a candidate's total capacity must hold
        bytes32 serviceId;
        bytes32 appType;
        bytes32 snapshotDigest;
    }

    // ----------------------------------------------------------------- events

    event NodeRegistered(address indexed operator, string endpoint, Position location, uint32 coverageRadiusM, Capacity total, bytes32[] appTypes);
    event NodeUpdated(address indexed operator, Position location, uint32 coverageRadiusM, Capacity total, bytes32[] appTypes);
    event NodeEndpointUpdated(address indexed operator, string endpoint, bytes32 registryCertSha256);
    event NodeCapacityReported(address indexed operator, Capacity free);
    event NodeDeactivated(address indexed operator);
    event OfferWindowChanged(uint32 previousSeconds, uint32 newSeconds);

    event MigrationRequested(
        uint256 indexed id,
        address indexed source,
        bytes32 indexed appType,
        MigrationRequest request,
        uint64 offerWindowEnd
    );
    event MigrationOffered(uint256 indexed id, address indexed node, bytes32 indexed appType, uint32 score);
    /// @dev A better offer took the place of this node's (the list keeps the best MAX_OFFERS); its reservation may go.
    event MigrationOfferDisplaced(uint256 indexed id, address indexed node, uint32 score);
    event MigrationAssigned(
        uint256 indexed id,
        address indexed source,
        address indexed destination,
        bytes32 serviceId,
        uint32 score,
        bool preferred
    );
    event MigrationSnapshotPublished(
        uint256 indexed id, address indexed source, address indexed destination, bytes32 imageDigest
    );
    event MigrationCompleted(
        uint256 indexed id,
        address indexed destination,
        bytes32 indexed serviceId,
        address source,
        bytes32 imageDigest,
        Timings timings
    );
    event MigrationFailed(uint256 indexed id, address indexed by, bytes32 indexed serviceId, uint16 code, MigrationState stateAtFailure);
    event MigrationCancelled(uint256 indexed id, address indexed source, bytes32 indexed serviceId);
    event MigrationExpired(uint256 indexed id, address indexed by, bytes32 indexed serviceId, MigrationState stateAtExpiry);

    // ----------------------------------------------------------------- errors

    error MigrationRegistryUnknownNode(address operator);
    error MigrationRegistryNodeAlreadyActive(address operator);
    error MigrationRegistryNodeInactive(address operator);
    error MigrationRegistryInvalidOperator(address operator);
    error MigrationRegistryTooManyNodes(uint256 max);
    error MigrationRegistryInvalidEndpoint(uint256 length, uint256 maxLength);
    error MigrationRegistryNoRegistryCert(address node);
    error MigrationRegistryInvalidPosition(int32 latE6, int32 lonE6);
    error MigrationRegistryInvalidCoverage(uint32 radiusM, uint32 maxRadiusM);
    error MigrationRegistryInvalidCapacity(Capacity capacity);
    error MigrationRegistryCapacityAboveTotal(Capacity free, Capacity total);
    error MigrationRegistryInvalidAppTypes(uint256 count, uint256 maxCount);
    error MigrationRegistryInvalidAppType(bytes32 appType);
    error MigrationRegistryInvalidOfferWindow(uint32 seconds_, uint32 minSeconds, uint32 maxSeconds);

    error MigrationRegistryUnknownMigration(uint256 id);
    error MigrationRegistryUnexpectedState(uint256 id, MigrationState current, bytes32 expectedStates);
    error MigrationRegistryInvalidRequirements(Requirements requirements);
    error MigrationRegistryInvalidServiceId();
    error MigrationRegistryUnsupportedAppType(address node, bytes32 appType);
    error MigrationRegistryInvalidDeadline(uint64 deadline, uint64 minDeadline, uint64 maxDeadline);
    error MigrationRegistryInvalidPreferredDestination(address preferred);
    error MigrationRegistryInvalidBaseImage(uint256 length, uint256 maxLength);
    error MigrationRegistryTooManyOpenMigrations(address source, uint256 max);
    error MigrationRegistryServiceBusy(bytes32 serviceId, uint256 openMigrationId);
    error MigrationRegistryNotServiceHolder(bytes32 serviceId, address holder);
    error MigrationRegistryNotSource(uint256 id, address caller);
    error MigrationRegistryNotDestination(uint256 id, address caller);
    error MigrationRegistryNotParty(uint256 id, address caller);
    error MigrationRegistrySourceCannotOffer(uint256 id);
    error MigrationRegistryAlreadyOffered(uint256 id, address node);
    /// @dev The offer list is full and this offer does not beat the lowest one kept: sending it cannot matter.
    error MigrationRegistryOfferNotBetter(uint256 id, uint32 score, uint32 lowestKept);
    error MigrationRegistryOfferWindowClosed(uint256 id, uint64 offerWindowEnd);
    error MigrationRegistryOfferWindowOpen(uint256 id, uint64 offerWindowEnd);
    error MigrationRegistryInsufficientCapacity(address node, Capacity needs);
    error MigrationRegistryNoOffers(uint256 id);
    error MigrationRegistryInvalidDigest();
    error MigrationRegistryInvalidFailureCode();
    error MigrationRegistryInvalidTimings(Timings timings);
    error MigrationRegistryNotExpired(uint256 id, uint64 deadline);
    /// @dev The preferred destination's acceptance ({requestMigrationAccepted}) is past its `expires`.
    error MigrationRegistryAcceptanceExpired(uint64 expires, uint64 now_);
    /// @dev The acceptance was not signed by the preferred destination (`signer` is who signed it, zero if the
    /// signature is malformed), or was signed for another request, source, score or earlier migration.
    error MigrationRegistryInvalidAcceptance(address signer, address preferredDestination);

    // ------------------------------------------------------------- functions

    function registerNode(NodeRegistration calldata node) external;
    function updateNode(address operator, Position calldata location, uint32 coverageRadiusM, Capacity calldata total, bytes32[] calldata appTypes) external;
    function updateEndpoint(string calldata endpoint, bytes32 registryCertSha256) external;
    function reportCapacity(Capacity calldata free) external;
    function deactivateNode(address operator) external;
    function setOfferWindow(uint32 seconds_) external;

    function requestMigration(MigrationRequest calldata request) external returns (uint256 id);
    function requestMigrationAccepted(MigrationRequest calldata request, uint32 score, uint64 expires, bytes calldata signature)
        external
        returns (uint256 id);
    function acceptanceDigest(MigrationRequest calldata request, address source, uint32 score, uint64 expires)
        external
        view
        returns (bytes32);
    function offer(uint256 id, uint32 score) external;
    function finalizeAssignment(uint256 id) external returns (address destination);
    function publishSnapshot(uint256 id, bytes32 imageDigest) external;
    function complete(uint256 id, Timings calldata timings) external;
    function fail(uint256 id, uint16 code) external;
    function cancel(uint256 id) external;
    function expire(uint256 id) external;

    function state(uint256 id) external view returns (MigrationState);
    function getMigration(uint256 id) external view returns (Migration memory);
    function getOffers(uint256 id) external view returns (Offer[] memory);
    function serviceOf(bytes32 serviceId) external view returns (uint256 latestMigrationId, address holder);
    function openMigrations(address party, uint256 fromId, uint256 limit)
        external
        view
        returns (uint256[] memory ids, uint256 next);
    function oldestOpenMigration() external view returns (uint256);
    function getNode(address operator) external view returns (EdgeNode memory);
    function nodes(uint256 offset, uint256 limit) external view returns (EdgeNode[] memory page, uint256 total);
    function supportsAppType(address operator, bytes32 appType) external view returns (bool);
    function migrationCount() external view returns (uint256);
    function offerWindow() external view returns (uint32);
    function maxOffers() external pure returns (uint256);
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MigrationRegistry} from "../../../contracts/MigrationRegistry.sol";
import {IMigrationRegistry as I} from "../../../contracts/interfaces/IMigrationRegistry.sol";
import {vm} from "./Vm.sol";

/// @notice Plays every party of the registry in the order the fuzzer picks: sources, candidates, destinations,
/// the admin and strangers, each call with a caller drawn at random (mostly the right one, sometimes not) and the
/// clock moved between calls. It records what it saw happen so the invariants can judge it: a state that went
/// back, a call that succeeded from someone not in that role, an offer locked out by worse ones, a wrong winner.
/// Function names avoid the `test` prefix: this is not a test contract.
contract RegistryHandler {
    uint256 internal constant NODES = 20; // more than MAX_OFFERS (16), so full offer lists happen
    uint256 internal constant SERVICES = 4;
    bytes32 internal constant APP = "driver-profiling";
    address internal constant STRANGER = address(0xBAD);
    uint32 internal constant WINDOW = 300;
    uint256 internal constant KEY_BASE = 0x1000;

    /// @dev The last acceptance the registry took, replayed now and then: it must never serve a second request.
    I.MigrationRequest internal lastAccepted;
    uint32 internal lastAcceptedScore;
    uint64 internal lastAcceptedExpires;
    bytes internal lastAcceptedSignature;
    I.MigrationRequest internal candidate;
    uint32 internal candidateScore;
    uint64 internal candidateExpires;
    bytes internal candidateSignature;

    MigrationRegistry public immutable registry;
    address[] public nodeList;
    bytes32[] public serviceList;

    /// @dev Rank of each migration's last seen state (1 Requested .. 4 SnapshotPublished, 5 + k for ended ones).
    mapping(uint256 id => uint256) public lastRank;
    /// @dev The highest score of an offer that was made (or refused as not better) and is no longer kept.
    mapping(uint256 id => uint32) public maxLockedOut;
    mapping(uint256 id => bool) public anyLockedOut;

    // What went wrong, first occurrence each; empty while everything behaved.
    string public violation; // a call succeeded for someone not in that role (or at a time it must not)
    string public regression; // a state moved back, or an ended migration changed how it ended
    string public wrongWinner; // finalize assigned an offer that was not the best
    uint256 public succeeded; // calls that changed the registry (the campaign is not all reverts)
    mapping(bytes4 selector => uint256) public successesOf;

    constructor() {
        registry = new MigrationRegistry(address(this), WINDOW, new I.NodeRegistration[](0));
        bytes32[] memory apps = new bytes32[](1);
        apps[0] = APP;
        for (uint256 i = 0; i < NODES; ++i) {
            address node = vm.addr(KEY_BASE + i); // a key of its own: nodes sign acceptances
            nodeList.push(node);
            registry.registerNode(
                I.NodeRegistration({
                    operator: node,
                    endpoint: "http://node:8700",
                    location: I.Position({latE6: 35_000_000, lonE6: 128_000_000 + int32(int256(i)) * 10_000}),
                    coverageRadiusM: 1500,
                    total: I.Capacity({cpuMillicores: 4000, memoryMiB: 8192, gpuCount: 1, gpuMemoryMiB: 16_384}),
                    appTypes: apps
                })
            );
            vm.prank(node);
            registry.updateEndpoint("http://node:8700", keccak256(abi.encode(node)));
        }
        for (uint256 i = 0; i < SERVICES; ++i) serviceList.push(keccak256(abi.encode("service", i)));
    }

    // ---------------------------------------------------------------- actions

    function request(uint256 actorSeed, uint256 serviceSeed, uint256 preferredSeed, uint16 deadlineSeed, bool stateful)
        external
    {
        bytes32 service = serviceList[serviceSeed % SERVICES];
        (uint256 latest, address holder) = registry.serviceOf(service);
        bool busy = latest != 0 && _isOpen(registry.state(latest));
        // Mostly the node the service runs on; sometimes anyone (who must then be refused).
        address actor = holder != address(0) && actorSeed % 4 != 0 ? holder : _actor(actorSeed >> 2);
        address preferred = preferredSeed % 3 == 0 ? nodeList[(preferredSeed >> 2) % NODES] : address(0);
        I.MigrationRequest memory req = I.MigrationRequest({
            serviceId: service,
            appType: APP,
            requirements: I.Requirements({cpuMillicores: 500, memoryMiB: 256, gpuCount: 0, gpuMemoryMiB: 0, snapshotSizeBytes: 1 << 20}),
            reason: I.MigrationReason.ClientMobility,
            preferredDestination: preferred,
            deadline: uint64(block.timestamp) + WINDOW + 1 + (deadlineSeed % 900),
            stateful: stateful,
            hasClientPosition: false,
            clientPosition: I.Position({latE6: 0, lonE6: 0}),
            baseImage: ""
        });
        vm.prank(actor);
        try registry.requestMigration(req) returns (uint256) {
            if (actor == STRANGER || !_isActive(actor)) _violate("requestMigration by a stranger or inactive node");
            if (busy) _violate("a second open migration of one service");
            if (holder != address(0) && holder != actor) _violate("requestMigration by a node the service does not run on");
            _ok(this.request.selector);
        } catch {}
        _track();
    }

    /// @dev A request its preferred destination accepted beforehand (signed), or an acceptance that must be refused:
    /// signed by another node, expired, for another score, or one already used (replayed).
    function requestAccepted(uint256 actorSeed, uint256 serviceSeed, uint256 preferredSeed, uint256 twistSeed, uint32 score) external {
        if (twistSeed % 8 == 7 && lastAcceptedSignature.length != 0) {
            // By the node the service runs on now (its source, or the destination it moved to) or any other.
            (, address holderNow) = registry.serviceOf(lastAccepted.serviceId);
            vm.prank(actorSeed % 2 == 0 ? holderNow : _actor(actorSeed >> 1));
            try registry.requestMigrationAccepted(lastAccepted, lastAcceptedScore, lastAcceptedExpires, lastAcceptedSignature) {
                _violate("an acceptance served a second request");
            } catch {}
            _track();
            return;
        }
        bytes32 service = serviceList[serviceSeed % SERVICES];
        (uint256 latest, address holder) = registry.serviceOf(service);
        bool busy = latest != 0 && _isOpen(registry.state(latest));
        address actor = holder != address(0) && actorSeed % 4 != 0 ? holder : _actor(actorSeed >> 2);
        uint256 twist = twistSeed % 8;
        _prepareAcceptance(service, actor, (preferredSeed >> 2) % NODES, twistSeed, score);
        vm.prank(actor);
        try registry.requestMigrationAccepted(candidate, candidateScore, candidateExpires, candidateSignature) returns (uint256 id) {
            if (actor == STRANGER || !_isActive(actor)) _violate("requestMigrationAccepted by a stranger or inactive node");
            if (busy) _violate("a second open migration of one service");
            if (holder != address(0) && holder != actor) _violate("requestMigrationAccepted by a node the service does not run on");
            if (twist == 1 || twist == 3) _violate("an acceptance not signed by the preferred destination for these terms was taken");
            if (twist == 2) _violate("an expired acceptance was taken");
            if (registry.getMigration(id).destination != candidate.preferredDestination || registry.state(id) != I.MigrationState.Assigned) {
                _violate("an accepted request was not assigned to its preferred destination");
            }
            lastAccepted = candidate;
            (lastAcceptedScore, lastAcceptedExpires) = (candidateScore, candidateExpires);
            lastAcceptedSignature = candidateSignature;
            _ok(this.requestAccepted.selector);
        } catch {}
        _track();
    }

    /// @dev The request and acceptance `requestAccepted` sends, in storage (too many values for the stack). Twist 0,
    /// 4-6: honest; 1: signed by another node; 2: expired; 3: sent with another score than signed.
    function _prepareAcceptance(bytes32 service, address actor, uint256 preferredIndex, uint256 twistSeed, uint32 score) internal {
        uint256 twist = twistSeed % 8;
        candidate = I.MigrationRequest({
            serviceId: service,
            appType: APP,
            requirements: I.Requirements({cpuMillicores: 500, memoryMiB: 256, gpuCount: 0, gpuMemoryMiB: 0, snapshotSizeBytes: 1 << 20}),
            reason: I.MigrationReason.ClientMobility,
            preferredDestination: nodeList[preferredIndex],
            deadline: uint64(block.timestamp) + WINDOW + 1 + (uint16(twistSeed >> 8) % 900),
            stateful: false,
            hasClientPosition: false,
            clientPosition: I.Position({latE6: 0, lonE6: 0}),
            baseImage: ""
        });
        uint64 expires = twist == 2 ? uint64(block.timestamp) - 1 : uint64(block.timestamp) + 60;
        bytes32 digest = registry.acceptanceDigest(candidate, actor, score, expires);
        (uint8 v, bytes32 r, bytes32 s_) = vm.sign(KEY_BASE + (twist == 1 ? (preferredIndex + 1) % NODES : preferredIndex), digest);
        (candidateScore, candidateExpires, candidateSignature) = (twist == 3 ? score ^ 1 : score, expires, abi.encodePacked(r, s_, v));
    }

    function offer(uint256 idSeed, uint256 actorSeed, uint32 scoreSeed) external {
        uint256 id = _id(idSeed);
        if (id == 0) return;
        _offer(id, _actor(actorSeed), scoreSeed % 16); // a narrow range of scores, so ties across time happen
        _track();
    }

    /// @dev Many candidates answering one request at once (offer lists fill up, and better offers displace worse).
    function offerBurst(uint256 idSeed, uint256 firstNode, uint8 count, uint256 scoreSeeds) external {
        uint256 id = _id(idSeed);
        if (id == 0) return;
        for (uint256 i = 0; i < count % (NODES + 1); ++i) {
            _offer(id, nodeList[(firstNode + i) % NODES], uint32(uint8(scoreSeeds >> (8 * (i % 32)))) % 16);
        }
        _track();
    }

    function _offer(uint256 id, address actor, uint32 score) internal {
        I.Migration memory m = registry.getMigration(id);
        I.Offer[] memory before = registry.getOffers(id);
        vm.prank(actor);
        try registry.offer(id, score) {
            if (actor == STRANGER || !_isActive(actor)) _violate("offer by a stranger or inactive node");
            if (actor == m.source) _violate("offer by the source");
            // Only the preferred destination may offer after the window, or anyone on an open request nobody offered
            // on in time (the first such offer is assigned).
            bool late = block.timestamp >= m.offerWindowEnd && actor != m.preferredDestination;
            if (late && (m.preferredDestination != address(0) || before.length != 0)) _violate("a late offer by a candidate");
            if (late && registry.getMigration(id).destination != actor) _violate("a late first offer was not assigned");
            I.Offer[] memory afterwards = registry.getOffers(id);
            if (afterwards.length == before.length) {
                // Full: one offer left the list for this one.
                for (uint256 i = 0; i < before.length; ++i) {
                    if (!_kept(afterwards, before[i].node)) _lockOut(id, before[i].score);
                }
            }
            _ok(this.offer.selector);
        } catch (bytes memory reason) {
            if (bytes4(reason) == I.MigrationRegistryOfferNotBetter.selector) _lockOut(id, score);
        }
    }

    function finalize(uint256 idSeed) external {
        uint256 id = _id(idSeed);
        if (id == 0) return;
        I.Offer[] memory kept = registry.getOffers(id);
        vm.prank(STRANGER); // anyone may
        try registry.finalizeAssignment(id) returns (address winner) {
            // The highest-scoring active offer, the earliest among equals.
            for (uint256 i = 0; i < kept.length; ++i) {
                if (!_isActive(kept[i].node) || kept[i].node == winner) continue;
                (uint32 ws, uint64 wt) = _offerOf(kept, winner);
                if (kept[i].score > ws || (kept[i].score == ws && kept[i].offeredAt < wt)) _note(1, "finalize assigned an offer that was not the best");
            }
            _ok(this.finalize.selector);
        } catch {}
        _track();
    }

    function publish(uint256 idSeed, uint256 actorSeed, bytes32 digest) external {
        uint256 id = _id(idSeed);
        if (id == 0) return;
        I.Migration memory m = registry.getMigration(id);
        address actor = actorSeed % 3 == 0 ? _actor(actorSeed >> 2) : m.source;
        vm.prank(actor);
        try registry.publishSnapshot(id, digest) {
            if (actor != m.source) _violate("publishSnapshot by someone other than the source");
            if (!_isActive(actor)) _violate("publishSnapshot by an inactive node");
            _ok(this.publish.selector);
        } catch {}
        _track();
    }

    function complete(uint256 idSeed, uint256 actorSeed, uint32 totalMs) external {
        uint256 id = _id(idSeed);
        if (id == 0) return;
        I.Migration memory m = registry.getMigration(id);
        address actor = actorSeed % 3 == 0 ? _actor(actorSeed >> 2) : m.destination;
        uint32 t = totalMs % 10_000;
        I.Timings memory timings = I.Timings(t / 8, t / 8, t / 4, t / 4, t / 8, t, t / 2, 1 << 20);
        vm.prank(actor);
        try registry.complete(id, timings) {
            if (actor != m.destination) _violate("complete by someone other than the destination");
            if (!_isActive(actor)) _violate("complete by an inactive node");
            _ok(this.complete.selector);
        } catch {}
        _track();
    }

    function fail(uint256 idSeed, uint256 actorSeed, uint16 code) external {
        uint256 id = _id(idSeed);
        if (id == 0) return;
        I.Migration memory m = registry.getMigration(id);
        address actor = actorSeed % 3 == 0 ? _actor(actorSeed >> 2) : (actorSeed % 3 == 1 ? m.source : m.destination);
        vm.prank(actor);
        try registry.fail(id, code) {
            if (actor != m.source && actor != m.destination) _violate("fail by someone not party to the migration");
            _ok(this.fail.selector);
        } catch {}
        _track();
    }

    function cancel(uint256 idSeed, uint256 actorSeed) external {
        uint256 id = _id(idSeed);
        if (id == 0) return;
        I.Migration memory m = registry.getMigration(id);
        address actor = actorSeed % 3 == 0 ? _actor(actorSeed >> 2) : m.source;
        vm.prank(actor);
        try registry.cancel(id) {
            if (actor != m.source) _violate("cancel by someone other than the source");
            _ok(this.cancel.selector);
        } catch {}
        _track();
    }

    function expire(uint256 idSeed) external {
        uint256 id = _id(idSeed);
        if (id == 0) return;
        bool pastDeadline = block.timestamp > registry.getMigration(id).deadline;
        vm.prank(STRANGER); // anyone may
        try registry.expire(id) {
            if (!pastDeadline) _violate("expire before the deadline");
            _ok(this.expire.selector);
        } catch {}
        _track();
    }

    /// @dev The admin takes a node out (its open migrations must still be endable) or brings it back.
    function toggleNode(uint256 nodeSeed) external {
        address node = nodeList[nodeSeed % NODES];
        if (_isActive(node)) {
            registry.deactivateNode(node);
        } else {
            I.EdgeNode memory n = registry.getNode(node);
            registry.registerNode(I.NodeRegistration(node, n.endpoint, n.location, n.coverageRadiusM, n.total, n.appTypes));
        }
        _ok(this.toggleNode.selector);
        _track();
    }

    function reportCapacity(uint256 actorSeed, uint32 cpu, uint32 memoryMiB, uint16 gpus, uint32 gpuMemoryMiB) external {
        address actor = _actor(actorSeed);
        vm.prank(actor);
        try registry.reportCapacity(I.Capacity(cpu % 5000, memoryMiB % 10_000, gpus % 3, gpuMemoryMiB % 20_000)) {
            if (actor == STRANGER || !_isActive(actor)) _violate("reportCapacity by a stranger or inactive node");
            _ok(this.reportCapacity.selector);
        } catch {}
    }

    /// @dev A stranger (never registered) tries each node-only call on a random migration: all must revert.
    function stranger(uint256 idSeed, uint32 score) external {
        uint256 id = _id(idSeed);
        if (id == 0) return;
        vm.prank(STRANGER);
        try registry.offer(id, score) { _violate("a stranger offered"); } catch {}
        vm.prank(STRANGER);
        try registry.publishSnapshot(id, keccak256("x")) { _violate("a stranger published"); } catch {}
        vm.prank(STRANGER);
        try registry.cancel(id) { _violate("a stranger cancelled"); } catch {}
        vm.prank(STRANGER);
        try registry.fail(id, 1) { _violate("a stranger failed a migration"); } catch {}
    }

    function warp(uint16 seconds_) external {
        vm.warp(block.timestamp + (seconds_ % 400));
        _track();
    }

    // ------------------------------------------------------- for invariants

    function nodeCount() external pure returns (uint256) {
        return NODES;
    }

    function serviceCount() external pure returns (uint256) {
        return SERVICES;
    }

    /// @dev The rank of a state on the lifecycle's one-way path; every ended state shares the top rank.
    function rankOf(I.MigrationState s) public pure returns (uint256) {
        return uint256(s) >= uint256(I.MigrationState.Completed) ? 5 : uint256(s);
    }

    // -------------------------------------------------------------- internals

    /// @dev States only move forward, and an ended migration never changes how it ended. Then the clock moves on
    /// by a block or a few (each call lands in a block of its own), so windows close and deadlines pass within a
    /// sequence of a few dozen calls, as they do on the chain.
    function _track() internal {
        vm.warp(block.timestamp + 1 + (uint256(keccak256(abi.encode(block.timestamp, registry.migrationCount()))) % 30));
        uint256 count = registry.migrationCount();
        for (uint256 id = 1; id <= count; ++id) {
            I.MigrationState s = registry.state(id);
            uint256 rank = rankOf(s);
            uint256 last = lastRank[id];
            if (rank < (last > 5 ? 5 : last)) _note(2, "a migration's state moved back");
            if (last > 5 && last != 5 + uint256(s)) _note(2, "an ended migration changed how it ended");
            lastRank[id] = rank == 5 ? 5 + uint256(s) : rank;
        }
    }

    function _lockOut(uint256 id, uint32 score) internal {
        if (!anyLockedOut[id] || score > maxLockedOut[id]) maxLockedOut[id] = score;
        anyLockedOut[id] = true;
    }

    function _violate(string memory what) internal {
        _note(0, what);
    }

    function _note(uint256 kind, string memory what) internal {
        if (kind == 0 && bytes(violation).length == 0) violation = what;
        if (kind == 1 && bytes(wrongWinner).length == 0) wrongWinner = what;
        if (kind == 2 && bytes(regression).length == 0) regression = what;
    }

    function _ok(bytes4 selector) internal {
        ++succeeded;
        ++successesOf[selector];
    }

    function _id(uint256 seed) internal view returns (uint256) {
        uint256 count = registry.migrationCount();
        if (count == 0) return 0;
        // Mostly recent migrations (where the action is), sometimes any.
        return seed % 4 == 0 ? 1 + (seed >> 2) % count : count - ((seed >> 2) % (count < 3 ? count : 3));
    }

    function _actor(uint256 seed) internal view returns (address) {
        return seed % 16 == 15 ? STRANGER : nodeList[seed % NODES];
    }

    function _isActive(address a) internal view returns (bool) {
        return a != STRANGER && a != address(0) && registry.getNode(a).active;
    }

    function _isOpen(I.MigrationState s) internal pure returns (bool) {
        return s >= I.MigrationState.Requested && s <= I.MigrationState.SnapshotPublished;
    }

    function _kept(I.Offer[] memory list, address node) internal pure returns (bool) {
        for (uint256 i = 0; i < list.length; ++i) if (list[i].node == node) return true;
        return false;
    }

    function _offerOf(I.Offer[] memory list, address node) internal pure returns (uint32, uint64) {
        for (uint256 i = 0; i < list.length; ++i) if (list[i].node == node) return (list[i].score, list[i].offeredAt);
        return (0, 0);
    }
}

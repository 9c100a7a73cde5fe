// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {IMigrationRegistry as I} from "../interfaces/IMigrationRegistry.sol";
import {EdgeNodes} from "./EdgeNodes.sol";

/// @title Migrations
/// @notice The lifecycle of one service migration: stored facts plus a derived {state}, as in OpenZeppelin's
/// Governor. Every transition checks the caller's role for that migration and the current state with one guard.
/// Every open migration can always be left: the source may cancel before assignment, either party may fail it
/// after, and anyone may expire it past its (bounded) deadline.
library Migrations {
    using EnumerableSet for EnumerableSet.UintSet;
    using EdgeNodes for EdgeNodes.State;

    uint256 internal constant MAX_OFFERS = 16;
    uint256 internal constant MAX_OPEN_AS_SOURCE = 64;
    uint256 internal constant MAX_BASE_IMAGE_LENGTH = 256;
    uint64 internal constant MAX_DEADLINE_SECONDS = 1 days;
    uint64 internal constant MAX_SNAPSHOT_BYTES = 1 << 40; // 1 TiB
    uint32 internal constant MIN_OFFER_WINDOW = 1;
    uint32 internal constant MAX_OFFER_WINDOW = 1 hours;

    struct State {
        uint256 count;
        uint32 offerWindow;
        mapping(uint256 id => I.Migration) migrations;
        mapping(uint256 id => I.Offer[]) offers;
        mapping(uint256 id => mapping(address node => bool)) offered;
        EnumerableSet.UintSet open;
        mapping(address node => EnumerableSet.UintSet) openOf;
        mapping(address node => uint256) openAsSource;
        /// @dev The newest migration of each service: one open at a time, and where it runs now.
        mapping(bytes32 serviceId => uint256 id) latestOf;
    }

    // ------------------------------------------------------------------ state

    function state(State storage self, uint256 id) internal view returns (I.MigrationState) {
        I.Migration storage m = _get(self, id);
        if (m.outcome != I.MigrationState.None) return m.outcome;
        if (block.timestamp > m.deadline) return I.MigrationState.Expired;
        return _liveState(self, id, m);
    }

    /// @dev Where a service runs by the record: the destination of its latest migration if that completed, else
    /// that migration's source (a failed, cancelled or expired move leaves it where it was); zero before any.
    function holderOf(State storage self, bytes32 serviceId) internal view returns (address) {
        uint256 last = self.latestOf[serviceId];
        if (last == 0) return address(0);
        I.Migration storage m = self.migrations[last];
        return m.outcome == I.MigrationState.Completed ? m.destination : m.source;
    }

    function setOfferWindow(State storage self, uint32 seconds_) internal {
        if (seconds_ < MIN_OFFER_WINDOW || seconds_ > MAX_OFFER_WINDOW) {
            revert I.MigrationRegistryInvalidOfferWindow(seconds_, MIN_OFFER_WINDOW, MAX_OFFER_WINDOW);
        }
        emit I.OfferWindowChanged(self.offerWindow, seconds_);
        self.offerWindow = seconds_;
    }

    // ------------------------------------------------------------ transitions

    function request(State storage self, EdgeNodes.State storage nodes, address source, I.MigrationRequest calldata req)
        internal
        returns (uint256 id)
    {
        _checkRequest(self, nodes, source, req);
        id = ++self.count;
        uint64 windowEnd = uint64(block.timestamp) + self.offerWindow;
        I.Migration storage m = self.migrations[id];
        m.source = source;
        m.requestedAt = uint64(block.timestamp);
        m.offerWindowEnd = windowEnd;
        m.preferredDestination = req.preferredDestination;
        m.deadline = req.deadline;
        m.reason = req.reason;
        m.stateful = req.stateful;
        m.hasClientPosition = req.hasClientPosition;
        m.clientPosition = req.clientPosition;
        m.requirements = req.requirements;
        m.serviceId = req.serviceId;
        m.appType = req.appType;
        m.baseImage = req.baseImage;
        self.open.add(id);
        self.openOf[source].add(id);
        ++self.openAsSource[source];
        self.latestOf[req.serviceId] = id;
        emit I.MigrationRequested(id, source, req.appType, req, windowEnd);
    }

    /// @dev Records an offer; the preferred destination's offer is assigned at once (the client is entering it).
    function offer(State storage self, EdgeNodes.State storage nodes, uint256 id, address node, uint32 score) internal {
        (I.Migration storage m,) = _require(self, id, _bit(I.MigrationState.Requested) | _bit(I.MigrationState.Offered));
        if (node == m.source) revert I.MigrationRegistrySourceCannotOffer(id);
        if (block.timestamp >= m.offerWindowEnd) revert I.MigrationRegistryOfferWindowClosed(id, m.offerWindowEnd);
        if (!nodes.runs[node][m.appType]) revert I.MigrationRegistryUnsupportedAppType(node, m.appType);
        if (!nodes.canReceive(node)) revert I.MigrationRegistryNoRegistryCert(node);
        if (!nodes.canHold(node, m.requirements)) revert I.MigrationRegistryInsufficientCapacity(node, m.requirements);
        if (self.offered[id][node]) revert I.MigrationRegistryAlreadyOffered(id, node);
        I.Offer[] storage list = self.offers[id];
        I.Offer memory o = I.Offer({node: node, score: score, offeredAt: uint64(block.timestamp)});
        if (list.length < MAX_OFFERS) {
            list.push(o);
        } else {
            // Full: the best MAX_OFFERS stay, so a better offer is never locked out by earlier, worse ones.
            uint256 worst = _lowestOffer(list);
            I.Offer memory out = list[worst];
            if (score <= out.score) revert I.MigrationRegistryOfferNotBetter(id, score, out.score);
            list[worst] = o;
            emit I.MigrationOfferDisplaced(id, out.node, out.score);
        }
        self.offered[id][node] = true;
        emit I.MigrationOffered(id, node, m.appType, score);
        if (node == m.preferredDestination) _assign(self, id, m, node, score, true);
    }

    /// @dev After the offer window: the highest score wins; ties go to the earliest offer. Offerers deactivated
    /// since they offered are passed over.
    function finalize(State storage self, EdgeNodes.State storage nodes, uint256 id) internal returns (address winner) {
        (I.Migration storage m,) = _require(self, id, _bit(I.MigrationState.Requested) | _bit(I.MigrationState.Offered));
        if (block.timestamp < m.offerWindowEnd) revert I.MigrationRegistryOfferWindowOpen(id, m.offerWindowEnd);
        I.Offer[] storage list = self.offers[id];
        uint32 best;
        uint64 bestAt;
        for (uint256 i = 0; i < list.length; ++i) {
            I.Offer storage o = list[i];
            // Ties go to the earliest offer by time, not by slot: a displaced slot holds a later offer.
            bool better = winner == address(0) || o.score > best || (o.score == best && o.offeredAt < bestAt);
            if (better && nodes.isActive(o.node)) {
                winner = o.node;
                best = o.score;
                bestAt = o.offeredAt;
            }
        }
        if (winner == address(0)) revert I.MigrationRegistryNoOffers(id);
        _assign(self, id, m, winner, best, false);
    }

    /// @dev The slot of the lowest offer; among equals the latest, so earlier offers keep their place on ties.
    function _lowestOffer(I.Offer[] storage list) private view returns (uint256 slot) {
        for (uint256 i = 1; i < list.length; ++i) {
            I.Offer storage o = list[i];
            I.Offer storage w = list[slot];
            if (o.score < w.score || (o.score == w.score && o.offeredAt >= w.offeredAt)) slot = i;
        }
    }

    function publishSnapshot(State storage self, uint256 id, address caller, bytes32 digest) internal {
        (I.Migration storage m,) = _require(self, id, _bit(I.MigrationState.Assigned));
        if (caller != m.source) revert I.MigrationRegistryNotSource(id, caller);
        if (digest == bytes32(0)) revert I.MigrationRegistryInvalidDigest();
        m.snapshotDigest = digest;
        emit I.MigrationSnapshotPublished(id, m.source, m.destination, digest);
    }

    function complete(State storage self, uint256 id, address caller, I.Timings calldata t) internal {
        (I.Migration storage m,) = _require(self, id, _bit(I.MigrationState.SnapshotPublished));
        if (caller != m.destination) revert I.MigrationRegistryNotDestination(id, caller);
        // Phases may overlap (make-before-break), but none can outlast the whole.
        if (
            t.totalMs == 0 || t.stopMs > t.totalMs || t.snapshotMs > t.totalMs || t.pushMs > t.totalMs
                || t.pullMs > t.totalMs || t.startMs > t.totalMs || t.downtimeMs > t.totalMs
        ) revert I.MigrationRegistryInvalidTimings(t);
        m.timings = t;
        m.outcome = I.MigrationState.Completed;
        _close(self, id, m);
        emit I.MigrationCompleted(id, m.destination, m.serviceId, m.source, m.appType, m.snapshotDigest, t);
    }

    function fail(State storage self, uint256 id, address caller, uint16 code) internal {
        (I.Migration storage m, I.MigrationState current) =
            _require(self, id, _bit(I.MigrationState.Assigned) | _bit(I.MigrationState.SnapshotPublished));
        if (caller != m.source && caller != m.destination) revert I.MigrationRegistryNotParty(id, caller);
        if (code == 0) revert I.MigrationRegistryInvalidFailureCode();
        m.failureCode = code;
        m.outcome = I.MigrationState.Failed;
        _close(self, id, m);
        emit I.MigrationFailed(id, caller, m.serviceId, code, current);
    }

    function cancel(State storage self, uint256 id, address caller) internal {
        (I.Migration storage m,) = _require(self, id, _bit(I.MigrationState.Requested) | _bit(I.MigrationState.Offered));
        if (caller != m.source) revert I.MigrationRegistryNotSource(id, caller);
        m.outcome = I.MigrationState.Cancelled;
        _close(self, id, m);
        emit I.MigrationCancelled(id, m.source, m.serviceId);
    }

    function expire(State storage self, uint256 id, address caller) internal {
        I.Migration storage m = _get(self, id);
        if (m.outcome != I.MigrationState.None) revert I.MigrationRegistryUnexpectedState(id, m.outcome, _openStates());
        if (block.timestamp <= m.deadline) revert I.MigrationRegistryNotExpired(id, m.deadline);
        I.MigrationState atExpiry = _liveState(self, id, m);
        m.outcome = I.MigrationState.Expired;
        _close(self, id, m);
        emit I.MigrationExpired(id, caller, m.serviceId, atExpiry);
    }

    // ------------------------------------------------------------------ views

    function openPage(State storage self, uint256 offset, uint256 limit)
        internal
        view
        returns (uint256[] memory ids, uint256 total)
    {
        total = self.open.length();
        uint256 end = offset >= total ? offset : (limit > total - offset ? total : offset + limit);
        ids = new uint256[](end - offset);
        for (uint256 i = offset; i < end; ++i) {
            ids[i - offset] = self.open.at(i);
        }
    }

    function get(State storage self, uint256 id) internal view returns (I.Migration storage) {
        return _get(self, id);
    }

    // ------------------------------------------------------------- internals

    function _checkRequest(State storage self, EdgeNodes.State storage nodes, address source, I.MigrationRequest calldata req)
        private
        view
    {
        if (req.serviceId == bytes32(0)) revert I.MigrationRegistryInvalidServiceId();
        if (req.appType == bytes32(0)) revert I.MigrationRegistryInvalidAppType(req.appType);
        I.Requirements calldata r = req.requirements;
        if (
            r.cpuMillicores == 0 || r.cpuMillicores > EdgeNodes.MAX_CPU_MILLICORES || r.memoryMiB == 0
                || r.memoryMiB > EdgeNodes.MAX_MEMORY_MIB || r.gpuCount > EdgeNodes.MAX_GPU_COUNT
                || r.gpuMemoryMiB > EdgeNodes.MAX_GPU_MEMORY_MIB || (r.gpuCount == 0 && r.gpuMemoryMiB != 0)
                || r.snapshotSizeBytes == 0 || r.snapshotSizeBytes > MAX_SNAPSHOT_BYTES
        ) revert I.MigrationRegistryInvalidRequirements(r);
        uint64 minDeadline = uint64(block.timestamp) + self.offerWindow;
        uint64 maxDeadline = uint64(block.timestamp) + MAX_DEADLINE_SECONDS;
        if (req.deadline <= minDeadline || req.deadline > maxDeadline) {
            revert I.MigrationRegistryInvalidDeadline(req.deadline, minDeadline + 1, maxDeadline);
        }
        address preferred = req.preferredDestination;
        if (
            preferred != address(0)
                && (preferred == source || !nodes.isActive(preferred) || !nodes.runs[preferred][req.appType]
                    || !nodes.canReceive(preferred) || !nodes.canHold(preferred, req.requirements))
        ) revert I.MigrationRegistryInvalidPreferredDestination(preferred);
        if (bytes(req.baseImage).length > MAX_BASE_IMAGE_LENGTH) {
            revert I.MigrationRegistryInvalidBaseImage(bytes(req.baseImage).length, MAX_BASE_IMAGE_LENGTH);
        }
        if (req.hasClientPosition) EdgeNodes.checkPosition(req.clientPosition);
        if (self.openAsSource[source] >= MAX_OPEN_AS_SOURCE) {
            revert I.MigrationRegistryTooManyOpenMigrations(source, MAX_OPEN_AS_SOURCE);
        }
        _checkService(self, source, req.serviceId);
    }

    /// @dev Exactly one copy: a service has at most one open migration, and only the node it runs on may move it
    /// (the destination of its latest completed migration; before any, the first node to ask).
    function _checkService(State storage self, address source, bytes32 serviceId) private view {
        uint256 last = self.latestOf[serviceId];
        if (last == 0) return;
        I.MigrationState current = state(self, last);
        if (_bit(current) & _openStates() != bytes32(0)) revert I.MigrationRegistryServiceBusy(serviceId, last);
        address holder = holderOf(self, serviceId);
        if (holder != source) revert I.MigrationRegistryNotServiceHolder(serviceId, holder);
    }

    function _assign(State storage self, uint256 id, I.Migration storage m, address node, uint32 score, bool preferred)
        private
    {
        m.destination = node;
        self.openOf[node].add(id);
        emit I.MigrationAssigned(id, m.source, node, m.serviceId, score, preferred);
    }

    function _close(State storage self, uint256 id, I.Migration storage m) private {
        self.open.remove(id);
        self.openOf[m.source].remove(id);
        --self.openAsSource[m.source];
        if (m.destination != address(0)) self.openOf[m.destination].remove(id);
    }

    function _get(State storage self, uint256 id) private view returns (I.Migration storage m) {
        m = self.migrations[id];
        if (m.source == address(0)) revert I.MigrationRegistryUnknownMigration(id);
    }

    /// @dev The state from stored facts alone, ignoring the deadline.
    function _liveState(State storage self, uint256 id, I.Migration storage m) private view returns (I.MigrationState) {
        if (m.snapshotDigest != bytes32(0)) return I.MigrationState.SnapshotPublished;
        if (m.destination != address(0)) return I.MigrationState.Assigned;
        if (self.offers[id].length > 0) return I.MigrationState.Offered;
        return I.MigrationState.Requested;
    }

    /// @dev The one guard: reverts with the current state and the bitmap of the states the call needs.
    function _require(State storage self, uint256 id, bytes32 allowed)
        private
        view
        returns (I.Migration storage m, I.MigrationState current)
    {
        current = state(self, id);
        m = self.migrations[id];
        if (_bit(current) & allowed == bytes32(0)) revert I.MigrationRegistryUnexpectedState(id, current, allowed);
    }

    function _bit(I.MigrationState s) private pure returns (bytes32) {
        return bytes32(uint256(1) << uint8(s));
    }

    function _openStates() private pure returns (bytes32) {
        return _bit(I.MigrationState.Requested) | _bit(I.MigrationState.Offered) | _bit(I.MigrationState.Assigned)
            | _bit(I.MigrationState.SnapshotPublished);
    }
}

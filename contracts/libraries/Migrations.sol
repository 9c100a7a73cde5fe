// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IMigrationRegistry as I} from "../interfaces/IMigrationRegistry.sol";
import {EdgeNodes} from "./EdgeNodes.sol";

/// @title Migrations
/// @notice The lifecycle of one service migration: stored facts plus a derived {state}, as in OpenZeppelin's
/// Governor. Every transition checks the caller's role for that migration and the current state with one guard.
/// Every open migration can always be left: the source may cancel before assignment, either party may fail it
/// after, and anyone may expire it past its (bounded) deadline.
/// @dev Storage keeps only what a later call checks, packed in five slots written once by the request; every
/// other detail is in the events (a block explorer and the workers read them there). No per-node sets: open
/// migrations are found by scanning ids upward from a low-water mark below which every migration has ended.
library Migrations {
    using EdgeNodes for EdgeNodes.State;

    uint256 internal constant MAX_OFFERS = 16;
    uint256 internal constant MAX_OPEN_AS_SOURCE = 64;
    uint256 internal constant MAX_BASE_IMAGE_LENGTH = 256;
    uint64 internal constant MAX_DEADLINE_SECONDS = 1 days;
    uint64 internal constant MAX_SNAPSHOT_BYTES = 1 << 40; // 1 TiB
    uint32 internal constant MIN_OFFER_WINDOW = 1;
    uint32 internal constant MAX_OFFER_WINDOW = 1 hours;
    /// @dev How far one ending moves the low-water mark at most (bounded gas; the next ending goes on).
    uint256 internal constant MAX_MARK_STEPS = 16;

    /// @dev One migration as stored. Field order is the packing: slot 0 is written by the request and rewritten
    /// (warm) when it ends; slot 1 by the request and at assignment; slots 2-4 once; slot 5 when the snapshot is
    /// published. Times are uint32 seconds (good until 2106); the request bounds every value stored here.
    struct Record {
        // slot 0
        address source;
        uint32 requestedBlock;
        uint32 deadline;
        I.MigrationState outcome;
        uint8 offerCount;
        uint16 failureCode;
        // slot 1
        address destination;
        uint32 offerWindowEnd;
        uint16 gpuCount;
        // slot 2
        address preferredDestination;
        uint32 cpuMillicores;
        uint32 memoryMiB;
        uint32 gpuMemoryMiB;
        // slots 3-5
        bytes32 serviceId;
        bytes32 appType;
        bytes32 snapshotDigest;
    }

    struct State {
        // one slot: read and written by every request
        uint64 count;
        uint64 oldestOpen; // every id below it has ended (set to 1 at deployment, so no request pays for it)
        uint32 offerWindow;
        mapping(uint256 id => Record) records;
        mapping(uint256 id => mapping(uint256 slot => I.Offer)) offers;
        /// @dev The newest migration of each service: one open at a time, and where it runs now.
        mapping(bytes32 serviceId => uint256 id) latestOf;
    }

    // ------------------------------------------------------------------ state

    function state(State storage self, uint256 id) internal view returns (I.MigrationState) {
        Record storage m = _get(self, id);
        if (m.outcome != I.MigrationState.None) return m.outcome;
        if (block.timestamp > m.deadline) return I.MigrationState.Expired;
        return _liveState(m);
    }

    /// @dev Where a service runs by the record: the destination of its latest migration if that completed, else
    /// that migration's source (a failed, cancelled or expired move leaves it where it was); zero before any.
    function holderOf(State storage self, bytes32 serviceId) internal view returns (address) {
        uint256 last = self.latestOf[serviceId];
        if (last == 0) return address(0);
        Record storage m = self.records[last];
        return m.outcome == I.MigrationState.Completed ? m.destination : m.source;
    }

    function initialize(State storage self, uint32 offerWindowSeconds) internal {
        self.oldestOpen = 1;
        setOfferWindow(self, offerWindowSeconds);
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
        uint32 windowEnd = uint32(block.timestamp) + self.offerWindow;
        I.Requirements calldata r = req.requirements;
        Record storage m = self.records[id];
        m.source = source;
        m.requestedBlock = uint32(block.number);
        m.deadline = uint32(req.deadline);
        m.offerWindowEnd = windowEnd;
        m.gpuCount = r.gpuCount;
        m.preferredDestination = req.preferredDestination;
        m.cpuMillicores = r.cpuMillicores;
        m.memoryMiB = r.memoryMiB;
        m.gpuMemoryMiB = r.gpuMemoryMiB;
        m.serviceId = req.serviceId;
        m.appType = req.appType;
        nodes.openedAsSource(source);
        self.latestOf[req.serviceId] = id;
        emit I.MigrationRequested(id, source, req.appType, req, windowEnd);
    }

    /// @dev The request just made (`id`) is assigned to its preferred destination, which accepted it before it was
    /// sent (the caller checked the acceptance); as its offer would be, outside the list.
    function assignAccepted(State storage self, uint256 id, uint32 score) internal {
        Record storage m = self.records[id];
        _assign(m, id, m.preferredDestination, score, true);
    }

    /// @dev Records an offer; the preferred destination's offer is assigned at once (the client is entering it),
    /// without taking a place in the list.
    function offer(State storage self, EdgeNodes.State storage nodes, uint256 id, address node, uint32 score) internal {
        (Record storage m,) = _require(self, id, _bit(I.MigrationState.Requested) | _bit(I.MigrationState.Offered));
        if (node == m.source) revert I.MigrationRegistrySourceCannotOffer(id);
        if (!nodes.runs[node][m.appType]) revert I.MigrationRegistryUnsupportedAppType(node, m.appType);
        if (!nodes.canReceive(node)) revert I.MigrationRegistryNoRegistryCert(node);
        I.Capacity memory needs = _needs(m);
        if (!nodes.canHold(node, needs)) revert I.MigrationRegistryInsufficientCapacity(node, needs);
        // The window bounds the offers the source chooses among; the preferred destination is not chosen, so it is
        // assigned whenever its offer lands while the migration is still open (the deadline still ends that).
        if (node == m.preferredDestination) {
            emit I.MigrationOffered(id, node, m.appType, score);
            _assign(m, id, node, score, true);
            return;
        }
        uint256 count = m.offerCount;
        if (block.timestamp >= m.offerWindowEnd) {
            // An open request nobody offered on within the window (candidates on a loaded network are late): there
            // is nothing to choose among, so the first late offer is assigned at once, until the source cancels.
            // With offers kept, or a preferred destination named (its own late offer is taken above), it is shut.
            if (count != 0 || m.preferredDestination != address(0)) {
                revert I.MigrationRegistryOfferWindowClosed(id, m.offerWindowEnd);
            }
            emit I.MigrationOffered(id, node, m.appType, score);
            _assign(m, id, node, score, false);
            return;
        }
        mapping(uint256 => I.Offer) storage list = self.offers[id];
        // One pass over the kept offers finds both a repeat and the lowest (<= MAX_OFFERS reads; a mapping of who
        // offered would cost a fresh slot per offer instead).
        uint256 worst;
        for (uint256 i = 0; i < count; ++i) {
            I.Offer storage o = list[i];
            if (o.node == node) revert I.MigrationRegistryAlreadyOffered(id, node);
            I.Offer storage w = list[worst];
            // Among equals the latest is the lowest, so earlier offers keep their place on ties.
            if (o.score < w.score || (o.score == w.score && o.offeredAt >= w.offeredAt)) worst = i;
        }
        I.Offer memory made = I.Offer({node: node, score: score, offeredAt: uint64(block.timestamp)});
        if (count < MAX_OFFERS) {
            list[count] = made;
            m.offerCount = uint8(count + 1);
        } else {
            // Full: the best MAX_OFFERS stay, so a better offer is never locked out by earlier, worse ones.
            I.Offer memory out = list[worst];
            if (score <= out.score) revert I.MigrationRegistryOfferNotBetter(id, score, out.score);
            list[worst] = made;
            emit I.MigrationOfferDisplaced(id, out.node, out.score);
        }
        emit I.MigrationOffered(id, node, m.appType, score);
    }

    /// @dev After the offer window: the highest score wins; ties go to the earliest offer. Offerers deactivated
    /// since they offered are passed over.
    function finalize(State storage self, EdgeNodes.State storage nodes, uint256 id) internal returns (address winner) {
        (Record storage m,) = _require(self, id, _bit(I.MigrationState.Requested) | _bit(I.MigrationState.Offered));
        if (block.timestamp < m.offerWindowEnd) revert I.MigrationRegistryOfferWindowOpen(id, m.offerWindowEnd);
        mapping(uint256 => I.Offer) storage list = self.offers[id];
        uint32 best;
        uint64 bestAt;
        for (uint256 i = 0; i < m.offerCount; ++i) {
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
        _assign(m, id, winner, best, false);
    }

    function publishSnapshot(State storage self, uint256 id, address caller, bytes32 digest) internal {
        (Record storage m,) = _require(self, id, _bit(I.MigrationState.Assigned));
        if (caller != m.source) revert I.MigrationRegistryNotSource(id, caller);
        if (digest == bytes32(0)) revert I.MigrationRegistryInvalidDigest();
        m.snapshotDigest = digest;
        emit I.MigrationSnapshotPublished(id, m.source, m.destination, digest);
    }

    function complete(State storage self, EdgeNodes.State storage nodes, uint256 id, address caller, I.Timings calldata t)
        internal
    {
        (Record storage m,) = _require(self, id, _bit(I.MigrationState.SnapshotPublished));
        if (caller != m.destination) revert I.MigrationRegistryNotDestination(id, caller);
        // Phases may overlap (make-before-break), but none can outlast the whole.
        if (
            t.totalMs == 0 || t.stopMs > t.totalMs || t.snapshotMs > t.totalMs || t.pushMs > t.totalMs
                || t.pullMs > t.totalMs || t.startMs > t.totalMs || t.downtimeMs > t.totalMs
        ) revert I.MigrationRegistryInvalidTimings(t);
        _close(self, nodes, m, I.MigrationState.Completed);
        emit I.MigrationCompleted(id, m.destination, m.serviceId, m.source, m.snapshotDigest, t);
    }

    function fail(State storage self, EdgeNodes.State storage nodes, uint256 id, address caller, uint16 code) internal {
        (Record storage m, I.MigrationState current) =
            _require(self, id, _bit(I.MigrationState.Assigned) | _bit(I.MigrationState.SnapshotPublished));
        if (caller != m.source && caller != m.destination) revert I.MigrationRegistryNotParty(id, caller);
        if (code == 0) revert I.MigrationRegistryInvalidFailureCode();
        m.failureCode = code;
        _close(self, nodes, m, I.MigrationState.Failed);
        emit I.MigrationFailed(id, caller, m.serviceId, code, current);
    }

    function cancel(State storage self, EdgeNodes.State storage nodes, uint256 id, address caller) internal {
        (Record storage m,) = _require(self, id, _bit(I.MigrationState.Requested) | _bit(I.MigrationState.Offered));
        if (caller != m.source) revert I.MigrationRegistryNotSource(id, caller);
        _close(self, nodes, m, I.MigrationState.Cancelled);
        emit I.MigrationCancelled(id, m.source, m.serviceId);
    }

    function expire(State storage self, EdgeNodes.State storage nodes, uint256 id, address caller) internal {
        Record storage m = _get(self, id);
        if (m.outcome != I.MigrationState.None) revert I.MigrationRegistryUnexpectedState(id, m.outcome, _openStates());
        if (block.timestamp <= m.deadline) revert I.MigrationRegistryNotExpired(id, m.deadline);
        I.MigrationState atExpiry = _liveState(m);
        _close(self, nodes, m, I.MigrationState.Expired);
        emit I.MigrationExpired(id, caller, m.serviceId, atExpiry);
    }

    // ------------------------------------------------------------------ views

    /// @dev Ids in [max(fromId, oldestOpen), +limit) that have not ended and in which `party` is the source or the
    /// destination (any migration if `party` is zero), and the id the next page starts at (0: no more).
    function openPage(State storage self, address party, uint256 fromId, uint256 limit)
        internal
        view
        returns (uint256[] memory ids, uint256 next)
    {
        uint256 count = self.count;
        uint256 start = fromId > self.oldestOpen ? fromId : self.oldestOpen;
        uint256 end = start > count || limit == 0 ? start : (limit > count - start + 1 ? count + 1 : start + limit);
        uint256[] memory found = new uint256[](end - start);
        uint256 n;
        for (uint256 id = start; id < end; ++id) {
            Record storage m = self.records[id];
            if (m.outcome != I.MigrationState.None) continue;
            if (party == address(0) || m.source == party || m.destination == party) found[n++] = id;
        }
        assembly ("memory-safe") {
            mstore(found, n)
        }
        return (found, end <= count ? end : 0);
    }

    function get(State storage self, uint256 id) internal view returns (I.Migration memory) {
        Record storage m = _get(self, id);
        return I.Migration({
            source: m.source,
            requestedBlock: m.requestedBlock,
            destination: m.destination,
            offerWindowEnd: m.offerWindowEnd,
            preferredDestination: m.preferredDestination,
            deadline: m.deadline,
            outcome: m.outcome,
            failureCode: m.failureCode,
            offerCount: m.offerCount,
            needs: _needs(m),
            serviceId: m.serviceId,
            appType: m.appType,
            snapshotDigest: m.snapshotDigest
        });
    }

    function offersOf(State storage self, uint256 id) internal view returns (I.Offer[] memory list) {
        Record storage m = _get(self, id);
        list = new I.Offer[](m.offerCount);
        for (uint256 i = 0; i < list.length; ++i) {
            list[i] = self.offers[id][i];
        }
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
                    || !nodes.canReceive(preferred)
                    || !nodes.canHold(preferred, I.Capacity(r.cpuMillicores, r.memoryMiB, r.gpuCount, r.gpuMemoryMiB)))
        ) revert I.MigrationRegistryInvalidPreferredDestination(preferred);
        if (bytes(req.baseImage).length > MAX_BASE_IMAGE_LENGTH) {
            revert I.MigrationRegistryInvalidBaseImage(bytes(req.baseImage).length, MAX_BASE_IMAGE_LENGTH);
        }
        if (req.hasClientPosition) EdgeNodes.checkPosition(req.clientPosition);
        if (nodes.nodes[source].openAsSource >= MAX_OPEN_AS_SOURCE) {
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

    function _assign(Record storage m, uint256 id, address node, uint32 score, bool preferred) private {
        m.destination = node;
        emit I.MigrationAssigned(id, m.source, node, m.serviceId, score, preferred);
    }

    /// @dev Ends a migration: its outcome, the source's open count, and the low-water mark moved past every ended
    /// id it can reach (at most MAX_MARK_STEPS; a mark held by an open migration waits for that one to end).
    function _close(State storage self, EdgeNodes.State storage nodes, Record storage m, I.MigrationState how)
        private
    {
        m.outcome = how;
        nodes.endedAsSource(m.source);
        // Not only when `id` is the mark: a mark that stopped at the step bound moves on with any later ending.
        uint256 mark = self.oldestOpen;
        uint256 count = self.count;
        uint256 steps;
        while (mark <= count && steps < MAX_MARK_STEPS && self.records[mark].outcome != I.MigrationState.None) {
            ++mark;
            ++steps;
        }
        if (steps > 0) self.oldestOpen = uint64(mark);
    }

    function _get(State storage self, uint256 id) private view returns (Record storage m) {
        m = self.records[id];
        if (m.source == address(0)) revert I.MigrationRegistryUnknownMigration(id);
    }

    function _needs(Record storage m) private view returns (I.Capacity memory) {
        return I.Capacity(m.cpuMillicores, m.memoryMiB, m.gpuCount, m.gpuMemoryMiB);
    }

    /// @dev The state from stored facts alone, ignoring the deadline. Reads slot 1 before slot 5: before assignment (every offer) the digest's slot need not be touched.
    function _liveState(Record storage m) private view returns (I.MigrationState) {
        if (m.destination == address(0)) {
            return m.offerCount > 0 ? I.MigrationState.Offered : I.MigrationState.Requested;
        }
        return m.snapshotDigest != bytes32(0) ? I.MigrationState.SnapshotPublished : I.MigrationState.Assigned;
    }

    /// @dev The one guard: reverts with the current state and the bitmap of the states the call needs.
    function _require(State storage self, uint256 id, bytes32 allowed)
        private
        view
        returns (Record storage m, I.MigrationState current)
    {
        current = state(self, id);
        m = self.records[id];
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

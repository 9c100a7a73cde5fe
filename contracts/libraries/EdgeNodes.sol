// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {IMigrationRegistry as I} from "../interfaces/IMigrationRegistry.sol";

/// @title EdgeNodes
/// @notice The set of edge clusters allowed to take part in migrations: where they are, what they have and
/// which app types they run. Every input is bounded so a registration cannot make later views unbounded.
library EdgeNodes {
    using EnumerableSet for EnumerableSet.AddressSet;

    uint256 internal constant MAX_NODES = 1024;
    uint256 internal constant MAX_ENDPOINT_LENGTH = 256;
    uint256 internal constant MAX_APP_TYPES = 32;
    uint32 internal constant MAX_COVERAGE_RADIUS_M = 1_000_000; // 1000 km
    uint32 internal constant MAX_CPU_MILLICORES = 4_096_000; // 4096 cores
    uint32 internal constant MAX_MEMORY_MIB = 64 * 1024 * 1024; // 64 TiB
    uint16 internal constant MAX_GPU_COUNT = 256;
    uint32 internal constant MAX_GPU_MEMORY_MIB = 256 * 1024 * 256; // 256 GPUs × 256 GiB

    struct State {
        mapping(address operator => I.EdgeNode) nodes;
        mapping(address operator => mapping(bytes32 appType => bool)) runs;
        EnumerableSet.AddressSet operators;
    }

    /// @dev Registers a new node or reactivates a deactivated one with a fresh configuration.
    function register(State storage self, I.NodeRegistration memory reg) internal {
        if (reg.operator == address(0)) revert I.MigrationRegistryInvalidOperator(reg.operator);
        I.EdgeNode storage node = self.nodes[reg.operator];
        if (node.active) revert I.MigrationRegistryNodeAlreadyActive(reg.operator);
        if (node.operator == address(0)) {
            if (self.operators.length() >= MAX_NODES) revert I.MigrationRegistryTooManyNodes(MAX_NODES);
            self.operators.add(reg.operator);
            node.operator = reg.operator;
        }
        _checkEndpoint(reg.endpoint);
        node.active = true;
        node.registeredAt = uint64(block.timestamp);
        node.endpoint = reg.endpoint;
        _configure(self, node, reg.location, reg.coverageRadiusM, reg.total, reg.appTypes);
        // Until the node reports, assume it is empty: free = total.
        node.free = reg.total;
        node.freeReportedAt = uint64(block.timestamp);
        emit I.NodeRegistered(reg.operator, reg.endpoint, reg.location, reg.coverageRadiusM, reg.total, reg.appTypes);
    }

    function update(
        State storage self,
        address operator,
        I.Position memory location,
        uint32 coverageRadiusM,
        I.Capacity memory total,
        bytes32[] memory appTypes
    ) internal {
        I.EdgeNode storage node = requireActive(self, operator);
        _configure(self, node, location, coverageRadiusM, total, appTypes);
        // A shrunk node cannot keep reporting more free capacity than it now has.
        if (!_fits(node.free, total)) node.free = total;
        emit I.NodeUpdated(operator, location, coverageRadiusM, total, appTypes);
    }

    function updateEndpoint(State storage self, address operator, string memory endpoint, bytes32 registryCertSha256) internal {
        I.EdgeNode storage node = requireActive(self, operator);
        _checkEndpoint(endpoint);
        if (registryCertSha256 == bytes32(0)) revert I.MigrationRegistryNoRegistryCert(operator);
        node.endpoint = endpoint;
        node.registryCertSha256 = registryCertSha256;
        emit I.NodeEndpointUpdated(operator, endpoint, registryCertSha256);
    }

    /// @dev Whether snapshots can be sent to the node: it published its registry certificate's hash.
    function canReceive(State storage self, address operator) internal view returns (bool) {
        return self.nodes[operator].registryCertSha256 != bytes32(0);
    }

    function reportCapacity(State storage self, address operator, I.Capacity memory free) internal {
        I.EdgeNode storage node = requireActive(self, operator);
        if (!_fits(free, node.total)) revert I.MigrationRegistryCapacityAboveTotal(free, node.total);
        node.free = free;
        node.freeReportedAt = uint64(block.timestamp);
        emit I.NodeCapacityReported(operator, free);
    }

    function deactivate(State storage self, address operator) internal {
        requireActive(self, operator);
        self.nodes[operator].active = false;
        emit I.NodeDeactivated(operator);
    }

    function requireActive(State storage self, address operator) internal view returns (I.EdgeNode storage node) {
        node = self.nodes[operator];
        if (node.operator == address(0)) revert I.MigrationRegistryUnknownNode(operator);
        if (!node.active) revert I.MigrationRegistryNodeInactive(operator);
    }

    function isActive(State storage self, address operator) internal view returns (bool) {
        return self.nodes[operator].active;
    }

    /// @dev Whether a node's registered total capacity can hold a container's needs at all.
    function canHold(State storage self, address operator, I.Capacity memory needs) internal view returns (bool) {
        return _fits(needs, self.nodes[operator].total);
    }

    /// @dev A migration the node requested opened (the caller bounds the count) or ended.
    function openedAsSource(State storage self, address operator) internal {
        ++self.nodes[operator].openAsSource;
    }

    function endedAsSource(State storage self, address operator) internal {
        --self.nodes[operator].openAsSource;
    }

    function page(State storage self, uint256 offset, uint256 limit)
        internal
        view
        returns (I.EdgeNode[] memory result, uint256 total)
    {
        total = self.operators.length();
        uint256 end = offset >= total ? offset : (limit > total - offset ? total : offset + limit);
        result = new I.EdgeNode[](end - offset);
        for (uint256 i = offset; i < end; ++i) {
            result[i - offset] = self.nodes[self.operators.at(i)];
        }
    }

    // ------------------------------------------------------------- internals

    function _configure(
        State storage self,
        I.EdgeNode storage node,
        I.Position memory location,
        uint32 coverageRadiusM,
        I.Capacity memory total,
        bytes32[] memory appTypes
    ) private {
        checkPosition(location);
        if (coverageRadiusM == 0 || coverageRadiusM > MAX_COVERAGE_RADIUS_M) {
            revert I.MigrationRegistryInvalidCoverage(coverageRadiusM, MAX_COVERAGE_RADIUS_M);
        }
        _checkCapacity(total);
        if (appTypes.length == 0 || appTypes.length > MAX_APP_TYPES) {
            revert I.MigrationRegistryInvalidAppTypes(appTypes.length, MAX_APP_TYPES);
        }
        bytes32[] storage previous = node.appTypes;
        for (uint256 i = 0; i < previous.length; ++i) {
            delete self.runs[node.operator][previous[i]];
        }
        delete node.appTypes;
        for (uint256 i = 0; i < appTypes.length; ++i) {
            bytes32 appType = appTypes[i];
            // Zero or a duplicate would make "supports" ambiguous for readers of the list.
            if (appType == bytes32(0) || self.runs[node.operator][appType]) {
                revert I.MigrationRegistryInvalidAppType(appType);
            }
            self.runs[node.operator][appType] = true;
            node.appTypes.push(appType);
        }
        node.location = location;
        node.coverageRadiusM = coverageRadiusM;
        node.total = total;
    }

    function checkPosition(I.Position memory p) internal pure {
        if (p.latE6 < -90_000_000 || p.latE6 > 90_000_000 || p.lonE6 < -180_000_000 || p.lonE6 > 180_000_000) {
            revert I.MigrationRegistryInvalidPosition(p.latE6, p.lonE6);
        }
    }

    function _checkEndpoint(string memory endpoint) private pure {
        uint256 length = bytes(endpoint).length;
        if (length == 0 || length > MAX_ENDPOINT_LENGTH) {
            revert I.MigrationRegistryInvalidEndpoint(length, MAX_ENDPOINT_LENGTH);
        }
    }

    function _checkCapacity(I.Capacity memory c) private pure {
        bool gpuConsistent = (c.gpuCount == 0) == (c.gpuMemoryMiB == 0);
        if (
            c.cpuMillicores == 0 || c.cpuMillicores > MAX_CPU_MILLICORES || c.memoryMiB == 0
                || c.memoryMiB > MAX_MEMORY_MIB || c.gpuCount > MAX_GPU_COUNT || c.gpuMemoryMiB > MAX_GPU_MEMORY_MIB
                || !gpuConsistent
        ) revert I.MigrationRegistryInvalidCapacity(c);
    }

    function _fits(I.Capacity memory a, I.Capacity memory b) private pure returns (bool) {
        return a.cpuMillicores <= b.cpuMillicores && a.memoryMiB <= b.memoryMiB && a.gpuCount <= b.gpuCount
            && a.gpuMemoryMiB <= b.gpuMemoryMiB;
    }
}

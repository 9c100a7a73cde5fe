// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MigrationRegistry} from "../../../contracts/MigrationRegistry.sol";
import {IMigrationRegistry as I} from "../../../contracts/interfaces/IMigrationRegistry.sol";
import {RegistryHandler} from "./RegistryHandler.sol";
import {vm} from "./Vm.sol";

/// @notice Properties of MigrationRegistry that must hold after any sequence of calls by any parties at any times
/// (the handler plays them). Run by Hardhat's Solidity test runner: `npm run test:invariants` (BLOSM_INVARIANT_RUNS
/// sequences per property, 10 000 there) and a shorter run inside `npm test`.
contract MigrationRegistryInvariants {
    RegistryHandler internal handler;
    MigrationRegistry internal registry;

    /// @dev Thrown by {probeEnd} after ending a migration, so the ending is rolled back and only its possibility kept.
    error Ended(uint256 id, I.MigrationState how);

    function setUp() public {
        handler = new RegistryHandler();
        registry = handler.registry();
    }

    /// @dev The fuzzer calls only the handler; it calls the registry as the parties would.
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// @dev The shape the runner reads from `targetSelectors()` (as forge-std's StdInvariant declares it).
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    /// @dev Only the handler's actions: its getters would spend half the calls of every sequence on nothing.
    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        bytes4[] memory actions = new bytes4[](14);
        actions[0] = RegistryHandler.request.selector;
        actions[1] = RegistryHandler.offer.selector;
        actions[2] = RegistryHandler.offerBurst.selector;
        actions[3] = RegistryHandler.finalize.selector;
        actions[4] = RegistryHandler.publish.selector;
        actions[5] = RegistryHandler.complete.selector;
        actions[6] = RegistryHandler.fail.selector;
        actions[7] = RegistryHandler.cancel.selector;
        actions[8] = RegistryHandler.expire.selector;
        actions[9] = RegistryHandler.toggleNode.selector;
        actions[10] = RegistryHandler.reportCapacity.selector;
        actions[11] = RegistryHandler.stranger.selector;
        actions[12] = RegistryHandler.warp.selector;
        actions[13] = RegistryHandler.requestAccepted.selector;
        targets = new FuzzSelector[](1);
        targets[0] = FuzzSelector(address(handler), actions);
    }

    /// Every call that succeeded was made by a party allowed to make it (source, destination, active node, anyone
    /// where anyone may), and every call a stranger made failed.
    function invariant_onlyThePartiesAct() public view {
        _holds(handler.violation());
    }

    /// Every open migration can be ended by someone, whatever happened to its parties: the source cancels before
    /// assignment, a party fails it after, anyone expires it past its deadline. Tried for real, then rolled back.
    function invariant_everyOpenMigrationCanEnd() public {
        (uint256[] memory open,) = registry.openMigrations(address(0), 0, type(uint256).max);
        for (uint256 i = 0; i < open.length; ++i) {
            try this.probeEnd(open[i]) {
                revert("probeEnd returned without ending the migration");
            } catch (bytes memory reason) {
                require(bytes4(reason) == Ended.selector, "an open migration could not be ended");
            }
        }
    }

    /// States only move forward (Requested → Offered → Assigned → SnapshotPublished → one ended state), and an ended
    /// migration never changes how it ended.
    function invariant_statesOnlyMoveForward() public view {
        _holds(handler.regression());
        uint256 count = registry.migrationCount();
        for (uint256 id = 1; id <= count; ++id) {
            require(handler.rankOf(registry.state(id)) >= (handler.lastRank(id) > 5 ? 5 : handler.lastRank(id)), "a state moved back");
        }
    }

    /// At most one open migration per service; the open list (and each node's open count) is exactly the migrations
    /// not yet ended, and every migration below the low-water mark has ended.
    function invariant_atMostOneOpenMigrationPerService() public view {
        uint256 count = registry.migrationCount();
        for (uint256 s = 0; s < handler.serviceCount(); ++s) {
            bytes32 service = handler.serviceList(s);
            uint256 open;
            for (uint256 id = 1; id <= count; ++id) {
                I.Migration memory m = registry.getMigration(id);
                I.MigrationState st = registry.state(id);
                if (m.serviceId == service && st >= I.MigrationState.Requested && st <= I.MigrationState.SnapshotPublished) ++open;
            }
            require(open <= 1, "two open migrations of one service");
        }
        (uint256[] memory listed,) = registry.openMigrations(address(0), 0, type(uint256).max);
        uint256 mark = registry.oldestOpenMigration();
        uint256 notEnded;
        for (uint256 id = 1; id <= count; ++id) {
            if (registry.getMigration(id).outcome != I.MigrationState.None) continue;
            require(id >= mark, "a migration below the low-water mark has not ended");
            require(notEnded < listed.length && listed[notEnded] == id, "the open list and the migrations not ended disagree");
            ++notEnded;
        }
        require(listed.length == notEnded, "the open list holds an ended migration");
        // Each node's count of open requests (what bounds them) is exactly its migrations not ended.
        for (uint256 i = 0; i < handler.nodeCount(); ++i) {
            address node = handler.nodeList(i);
            (uint256[] memory mine,) = registry.openMigrations(node, 0, type(uint256).max);
            uint256 asSource;
            for (uint256 k = 0; k < mine.length; ++k) {
                if (registry.getMigration(mine[k]).source == node) ++asSource;
            }
            require(registry.getNode(node).openAsSource == asSource, "a node's open count disagrees with its migrations");
        }
    }

    /// Offers stay within maxOffers and are always the best: an offer no longer kept (displaced, or refused as not
    /// better) never scored above one that is, and none is locked out while there is room.
    function invariant_offersAreBoundedAndTheBest() public view {
        uint256 count = registry.migrationCount();
        uint256 max = registry.maxOffers();
        for (uint256 id = 1; id <= count; ++id) {
            I.Offer[] memory kept = registry.getOffers(id);
            require(kept.length <= max, "more offers kept than maxOffers");
            if (!handler.anyLockedOut(id)) continue;
            require(kept.length == max, "an offer was locked out while there was room");
            for (uint256 i = 0; i < kept.length; ++i) {
                require(kept[i].score >= handler.maxLockedOut(id), "a better offer was locked out by a worse one");
            }
        }
    }

    /// The assigned destination is the best offer kept (highest score, earliest among equals) of an active node.
    function invariant_theBestOfferWins() public view {
        _holds(handler.wrongWinner());
    }

    /// A node's reported free capacity never exceeds its total (so nothing can go below zero when it is spent).
    function invariant_freeCapacityWithinTotal() public view {
        for (uint256 i = 0; i < handler.nodeCount(); ++i) {
            I.EdgeNode memory n = registry.getNode(handler.nodeList(i));
            require(
                n.free.cpuMillicores <= n.total.cpuMillicores && n.free.memoryMiB <= n.total.memoryMiB
                    && n.free.gpuCount <= n.total.gpuCount && n.free.gpuMemoryMiB <= n.total.gpuMemoryMiB,
                "free capacity above total"
            );
        }
    }

    /// Ends migration `id` the way its state allows, then reverts with {Ended} so nothing stays changed.
    function probeEnd(uint256 id) external {
        I.MigrationState s = registry.state(id);
        I.Migration memory m = registry.getMigration(id);
        if (s == I.MigrationState.Requested || s == I.MigrationState.Offered) {
            vm.prank(m.source);
            registry.cancel(id);
        } else if (s == I.MigrationState.Assigned || s == I.MigrationState.SnapshotPublished) {
            vm.prank(m.destination);
            registry.fail(id, 1);
        } else if (s == I.MigrationState.Expired) {
            vm.prank(address(0xBAD));
            registry.expire(id);
        }
        I.MigrationState ended = registry.state(id);
        require(ended >= I.MigrationState.Completed, "still open after the ending call");
        revert Ended(id, ended);
    }

    function _holds(string memory violation) internal pure {
        require(bytes(violation).length == 0, violation);
    }
}

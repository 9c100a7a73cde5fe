// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @dev The few cheatcodes the invariant suite uses, served by Hardhat's Solidity test runner at the standard
/// address (forge-std is not a dependency of this project: four functions do not justify one).
interface Vm {
    function prank(address sender) external;
    function warp(uint256 timestamp) external;
}

Vm constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

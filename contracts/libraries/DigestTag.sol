// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice The short form of a result digest kept in a job's one storage slot.
/// @dev A submission stores 32 bits of its digest's hash in the job record (a second slot
/// would cost every job ~22k gas); a dispute compares the verifiers' votes by it. A worker
/// that did not run the job must also publish a result with the honest digest to be upheld
/// (verifiers vote against a result whose content does not give their digest), so the tag's
/// guessing odds (2^-32) are not the guard, only a cheap tie to the full digest in the event.
/// A free function, not a library: nothing to deploy or link, and no artifact of its own.
function tagOf(bytes32 digest) pure returns (uint32) {
    return uint32(uint256(keccak256(abi.encode(digest))) >> 224);
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @dev Fractional bits of the fixed-point log2 behind the draw keys.
uint256 constant DRAW_LOG_FRACTION_BITS = 32;

/// @notice A candidate's key in a stake-weighted draw: the seats of a dispute panel (the court)
/// and of a replicated job (the market) go to the smallest keys among those who applied.
/// @dev Efraimidis-Spirakis key `-log2(U) / stake` with U uniform in (0, 1] from the seed and
/// the candidate: the smallest keys are a stake-weighted sample without replacement. A free
/// function like {tagOf}: nothing to deploy or link.
function drawKey(bytes32 seed, address candidate, uint256 stake) pure returns (uint256) {
    uint256 h = uint256(keccak256(abi.encode(seed, candidate)));
    uint256 u = h == type(uint256).max ? h : h + 1;
    uint256 negLog = (256 << DRAW_LOG_FRACTION_BITS) - _log2(u);
    return (negLog << 128) / stake;
}

/// @dev log2(x) for x > 0 in fixed point with DRAW_LOG_FRACTION_BITS fractional bits: the
/// integer part from the highest set bit, each fractional bit by squaring the mantissa.
function _log2(uint256 x) pure returns (uint256 result) {
    uint256 msb;
    uint256 rest = x;
    for (uint256 step = 128; step > 0; step >>= 1) {
        if (rest >= 1 << step) {
            rest >>= step;
            msb += step;
        }
    }
    result = msb << DRAW_LOG_FRACTION_BITS;
    // The mantissa x / 2^msb in [1, 2), as a number with 127 fractional bits.
    uint256 y = msb >= 127 ? x >> (msb - 127) : x << (127 - msb);
    for (uint256 bit = 1 << (DRAW_LOG_FRACTION_BITS - 1); bit > 0; bit >>= 1) {
        y = (y * y) >> 127;
        if (y >= 1 << 128) {
            y >>= 1;
            result |= bit;
        }
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title A hostile ERC-20 for the market's reentrancy and accounting tests
/// @notice On every transfer it can re-enter a target with a stored payload (recording whether
/// that call went through), skim a fee, or refuse to move tokens at all. It can also act as an
/// account itself (`act`), so it can be a requester or a worker of the market it attacks.
contract HostileToken is ERC20 {
    address public target;
    bytes public payload;
    uint256 public feeBps; // skimmed from every transfer: a fee-on-transfer token
    bool public frozen; // every transfer reverts
    uint256 public reentries; // re-entrant calls attempted
    uint256 public reentriesSucceeded;

    bool private _attacking;

    constructor() ERC20("Hostile", "HOST") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Re-enter `target_` with `payload_` on each later transfer (target 0: stop).
    function arm(address target_, bytes calldata payload_) external {
        target = target_;
        payload = payload_;
    }

    function setFee(uint256 feeBps_) external {
        feeBps = feeBps_;
    }

    function setFrozen(bool frozen_) external {
        frozen = frozen_;
    }

    /// @notice Call `to` as this contract (to post jobs, approve, withdraw...).
    function act(address to, bytes calldata data) external payable returns (bytes memory) {
        (bool ok, bytes memory ret) = to.call{value: msg.value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (frozen && from != address(0)) revert("HostileToken: frozen");
        uint256 fee = from == address(0) ? 0 : value * feeBps / 10_000;
        if (fee > 0) super._update(from, address(0xdead), fee);
        super._update(from, to, value - fee);
        if (target != address(0) && !_attacking && from != address(0)) {
            _attacking = true;
            ++reentries;
            (bool ok,) = target.call(payload);
            if (ok) ++reentriesSucceeded;
            _attacking = false;
        }
    }

    receive() external payable {}
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title A hostile account for the market's reentrancy tests
/// @notice Acts as a requester or worker (`act`); when it receives ETH it either re-enters a
/// target with a stored payload (recording the outcome) or refuses the ETH.
contract HostileReceiver {
    address public target;
    bytes public payload;
    bool public refuse;
    uint256 public reentries;
    uint256 public reentriesSucceeded;

    bool private _attacking;

    function arm(address target_, bytes calldata payload_) external {
        target = target_;
        payload = payload_;
    }

    function setRefuse(bool refuse_) external {
        refuse = refuse_;
    }

    /// @notice Call `to` as this contract, forwarding `msg.value`; bubbles up reverts.
    function act(address to, bytes calldata data) external payable returns (bytes memory) {
        (bool ok, bytes memory ret) = to.call{value: msg.value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }

    receive() external payable {
        if (refuse) revert("HostileReceiver: no ETH");
        if (target != address(0) && !_attacking) {
            _attacking = true;
            ++reentries;
            (bool ok,) = target.call(payload);
            if (ok) ++reentriesSucceeded;
            _attacking = false;
        }
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title Devnet test token: anyone may mint, so requesters on a devnet can pay in ERC-20.
/// @dev Never deploy outside a devnet: minting is open by design.
contract TestToken is ERC20 {
    constructor() ERC20("hepx Test Token", "HEPT") {}

    /// @notice Mint `amount` to `to` (devnet only).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}

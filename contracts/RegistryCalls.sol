// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {IWorkerRegistry} from "./interfaces/IWorkerRegistry.sol";
import {WorkerRegistry} from "./WorkerRegistry.sol";

/// @title The registry's calls, run by the JobMarket in its own storage (delegatecall)
/// @notice See {IWorkerRegistry}: register, stake, kinds, unbond and the registry views. The
/// market deploys this contract and forwards these calls to it, which keeps the market's own
/// code under EIP-170's 24,576 bytes; addresses, events and storage are the market's.
/// @dev Called directly, it works on its own empty storage and holds nothing of the market's.
contract RegistryCalls is WorkerRegistry {
    uint256 private immutable _unbondDelay;

    constructor(uint256 unbondDelay_) {
        _unbondDelay = unbondDelay_;
    }

    /// @inheritdoc IWorkerRegistry
    function register(bytes32[] calldata kinds) external payable {
        Worker storage w = _workers[msg.sender];
        if (w.registered) revert RegistryAlreadyRegistered(msg.sender);
        if (msg.value > type(uint96).max) revert RegistryInvalidAmount(msg.value);
        w.registered = true;
        w.stake = uint96(msg.value);
        if (msg.value > 0) w.stakeSince = uint40(block.number);
        _accountId(msg.sender); // paid once here, not by the worker's first job
        _setKinds(kinds, true);
        emit WorkerRegistered(msg.sender, msg.value, kinds);
        if (msg.value > 0) {
            _stakePayment(msg.value, IJobMarket.PaymentReason.StakeDeposit);
        }
    }

    /// @inheritdoc IWorkerRegistry
    function addStake() external payable {
        Worker storage w = _registered(msg.sender);
        uint256 stake = w.stake + msg.value;
        if (msg.value == 0 || stake > type(uint96).max) revert RegistryInvalidAmount(msg.value);
        w.stake = uint96(stake);
        w.stakeSince = uint40(block.number);
        emit StakeAdded(msg.sender, msg.value, stake);
        _stakePayment(msg.value, IJobMarket.PaymentReason.StakeDeposit);
    }

    /// @inheritdoc IWorkerRegistry
    function setKinds(bytes32[] calldata kinds, bool supported) external {
        _registered(msg.sender);
        _setKinds(kinds, supported);
        emit KindsUpdated(msg.sender, kinds, supported);
    }

    /// @inheritdoc IWorkerRegistry
    function unbond(uint256 amount) external {
        Worker storage w = _registered(msg.sender);
        if (amount == 0) revert RegistryInvalidAmount(amount);
        uint256 available = w.stake - w.locked;
        if (amount > available) revert RegistryInsufficientStake(msg.sender, available, amount);
        uint256 unbondEnd = block.timestamp + _unbondDelay;
        w.stake -= uint96(amount); // amount <= available < 2**96
        w.unbonding += uint96(amount); // stake + unbonding never exceeds what was deposited
        w.unbondEnd = uint40(unbondEnd);
        emit UnbondStarted(msg.sender, amount, unbondEnd);
    }

    /// @inheritdoc IWorkerRegistry
    function withdrawStake() external {
        Worker storage w = _workers[msg.sender];
        uint256 amount = w.unbonding;
        if (amount == 0) revert RegistryNothingUnbonding(msg.sender);
        if (block.timestamp < w.unbondEnd) revert RegistryUnbondNotDue(msg.sender, w.unbondEnd);
        w.unbonding = 0;
        emit StakeWithdrawn(msg.sender, amount);
        _stakePayment(amount, IJobMarket.PaymentReason.StakeWithdrawal);
        (bool ok,) = payable(msg.sender).call{value: amount}("");
        if (!ok) revert RegistryTransferFailed(msg.sender, amount);
    }

    /// @inheritdoc IWorkerRegistry
    function unbondDelay() external view returns (uint256) {
        return _unbondDelay;
    }

    // ---------------------------------------------------------------- internals

    /// @dev The market's Payment event for the caller's stake moving in or out.
    function _stakePayment(uint256 amount, IJobMarket.PaymentReason reason) private {
        IJobMarket.PaymentDirection direction = reason == IJobMarket.PaymentReason.StakeDeposit
            ? IJobMarket.PaymentDirection.In
            : IJobMarket.PaymentDirection.Out;
        emit IJobMarket.Payment(0, msg.sender, amount, reason, direction);
    }

    function _setKinds(bytes32[] calldata kinds, bool supported) private {
        if (kinds.length > MAX_KINDS_PER_CALL) {
            revert RegistryTooManyKinds(kinds.length, MAX_KINDS_PER_CALL);
        }
        mapping(bytes32 => bool) storage declared = _kinds[msg.sender];
        for (uint256 i; i < kinds.length; ++i) {
            declared[kinds[i]] = supported;
        }
    }
}

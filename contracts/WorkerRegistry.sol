// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {IWorkerRegistry} from "./interfaces/IWorkerRegistry.sol";

/// @title Worker stakes and capabilities, inherited by the JobMarket
/// @notice See {IWorkerRegistry}. The market locks a job's minimum stake when a worker takes
/// the job and unlocks or slashes it when the job ends; these hooks are internal, so nothing
/// but the market's own job logic can slash.
abstract contract WorkerRegistry is IWorkerRegistry, IJobMarket {
    /// @notice Most kinds one register/setKinds call may carry (keeps the loop bounded).
    uint256 internal constant MAX_KINDS_PER_CALL = 32;

    uint256 private immutable _unbondDelay;

    mapping(address worker => Worker) private _workers;
    mapping(address worker => mapping(bytes32 kind => bool)) private _kinds;

    constructor(uint256 unbondDelay_) {
        _unbondDelay = unbondDelay_;
    }

    // ---------------------------------------------------------------- calls

    /// @inheritdoc IWorkerRegistry
    function register(bytes32[] calldata kinds) external payable {
        Worker storage w = _workers[msg.sender];
        if (w.registered) revert RegistryAlreadyRegistered(msg.sender);
        if (msg.value > type(uint96).max) revert RegistryInvalidAmount(msg.value);
        w.registered = true;
        w.stake = uint96(msg.value);
        if (msg.value > 0) w.stakeSince = uint40(block.timestamp);
        _accountId(msg.sender); // paid once here, not by the worker's first job
        _setKinds(kinds, true);
        emit WorkerRegistered(msg.sender, msg.value, kinds);
        if (msg.value > 0) {
            emit Payment(0, msg.sender, msg.value, PaymentReason.StakeDeposit, PaymentDirection.In);
        }
    }

    /// @inheritdoc IWorkerRegistry
    function addStake() external payable {
        Worker storage w = _registered(msg.sender);
        uint256 stake = w.stake + msg.value;
        if (msg.value == 0 || stake > type(uint96).max) revert RegistryInvalidAmount(msg.value);
        w.stake = uint96(stake);
        w.stakeSince = uint40(block.timestamp);
        emit StakeAdded(msg.sender, msg.value, stake);
        emit Payment(0, msg.sender, msg.value, PaymentReason.StakeDeposit, PaymentDirection.In);
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
        emit Payment(0, msg.sender, amount, PaymentReason.StakeWithdrawal, PaymentDirection.Out);
        (bool ok,) = payable(msg.sender).call{value: amount}("");
        if (!ok) revert RegistryTransferFailed(msg.sender, amount);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IWorkerRegistry
    function getWorker(address worker) external view returns (Worker memory) {
        return _workers[worker];
    }

    /// @inheritdoc IWorkerRegistry
    function availableStake(address worker) external view returns (uint256) {
        Worker storage w = _workers[worker];
        return w.stake - w.locked;
    }

    /// @inheritdoc IWorkerRegistry
    function hasKind(address worker, bytes32 kind) external view returns (bool) {
        return _kinds[worker][kind];
    }

    /// @inheritdoc IWorkerRegistry
    function unbondDelay() external view returns (uint256) {
        return _unbondDelay;
    }

    // ---------------------------------------------------------------- market hooks

    /// @dev A worker takes a job: it must have declared `kind` (0 = any) and `amount` of
    /// unlocked stake, which stays locked until {_unlockStake} or {_slashStake}.
    function _lockStake(address worker, uint256 amount, bytes32 kind) internal {
        if (amount == 0 && kind == bytes32(0)) return; // open jobs need no registration
        Worker storage w = _registered(worker);
        if (kind != bytes32(0) && !_kinds[worker][kind]) revert RegistryKindNotDeclared(worker, kind);
        if (amount == 0) return;
        uint256 available = w.stake - w.locked;
        if (amount > available) revert RegistryInsufficientStake(worker, available, amount);
        w.locked += uint96(amount); // <= stake, a uint96
    }

    function _unlockStake(uint256 jobId, address worker, uint256 amount) internal {
        if (amount == 0) return;
        _workers[worker].locked -= uint96(amount);
        emit StakeReleased(worker, jobId, amount);
    }

    /// @dev Takes `amount` of the worker's locked stake out of its stake and returns it; the
    /// market decides where it goes (never to whoever could cause the slash).
    function _slashStake(uint256 jobId, address worker, uint256 amount)
        internal
        returns (uint256)
    {
        if (amount == 0) return 0;
        Worker storage w = _workers[worker];
        w.locked -= uint96(amount);
        w.stake -= uint96(amount);
        emit StakeSlashed(worker, jobId, amount);
        return amount;
    }

    /// @dev Adds `amount` wei to `account`'s withdrawable ETH and emits the Payment.
    function _creditEth(uint256 jobId, address account, uint256 amount, PaymentReason reason)
        internal
        virtual;

    /// @dev The market's id for `account` (given on first sight).
    function _accountId(address account) internal virtual returns (uint32);

    // ---------------------------------------------------------------- internals

    function _registered(address worker) private view returns (Worker storage w) {
        w = _workers[worker];
        if (!w.registered) revert RegistryNotRegistered(worker);
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

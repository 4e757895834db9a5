// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {IWorkerRegistry} from "./interfaces/IWorkerRegistry.sol";

/// @title Worker stakes and capabilities, and the market's account book: storage and hooks
/// @notice See {IWorkerRegistry}. The market locks a job's minimum stake when a worker takes
/// the job and unlocks or slashes it when the job ends; these hooks are internal, so nothing
/// but the market's own job logic can slash.
/// @dev Inherited first (through {MarketBook}) by both the JobMarket and {MarketCalls}, so
/// that its state (the workers, and the account ids `register` gives) has the same slots in
/// both: the market runs MarketCalls' code (register, stake, kinds, unbond) in its own
/// storage, because its own code is at EIP-170's size limit.
abstract contract WorkerRegistry is IWorkerRegistry {
    /// @notice Most kinds one register/setKinds call may carry (keeps the loop bounded).
    uint256 internal constant MAX_KINDS_PER_CALL = 32;

    /// @dev An address the market has met (requester, worker or payee) and its ETH credit.
    struct Account {
        address holder;
        uint96 credit; // cannot overflow: more wei than this never existed
    }

    /// @dev Both counters in one slot, starting at 1 (0 means "none"): a post that brings a new
    /// requester pays for one counter write, not two.
    struct Counters {
        uint128 nextJobId;
        uint128 nextAccountId;
    }

    mapping(address worker => Worker) internal _workers;
    mapping(address worker => mapping(bytes32 kind => bool)) internal _kinds;
    Counters internal _counters = Counters(1, 1);
    mapping(address account => uint32 id) internal _accountIds;
    mapping(uint256 id => Account) internal _accounts;

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

    // ---------------------------------------------------------------- internals

    /// @dev The account id of `account`, given it on first sight (ids start at 1).
    function _accountId(address account) internal returns (uint32 id) {
        id = _accountIds[account];
        if (id != 0) return id;
        uint256 next = _counters.nextAccountId;
        if (next > type(uint32).max) revert IJobMarket.JobMarketTooManyAccounts();
        id = uint32(next);
        _counters.nextAccountId = uint128(next + 1);
        _accountIds[account] = id;
        _accounts[id].holder = account;
    }

    function _registered(address worker) internal view returns (Worker storage w) {
        w = _workers[worker];
        if (!w.registered) revert RegistryNotRegistered(worker);
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title hepx worker registry
/// @notice Workers register with an ETH stake and the job kinds they run. A job may demand a
/// minimum stake: taking it locks that much of the worker's stake until the job ends; a missed
/// deadline, a losing replica result or a result a dispute refuted slashes the locked amount
/// (to the honest replicas or verifiers, or burned; never to the requester).
/// Unlocked stake can be unbonded and withdrawn after `unbondDelay()` seconds.
/// @dev Implemented by the JobMarket itself (it inherits WorkerRegistry), so locking and
/// slashing are internal calls: only the market can slash, and no cross-contract trust exists.
/// Money movements also emit IJobMarket.Payment (reasons StakeDeposit, StakeWithdrawal, Slash).
interface IWorkerRegistry {
    /// @notice A worker's stake as stored.
    struct Worker {
        bool registered;
        uint96 stake; // bonded wei, including `locked`; excludes `unbonding`
        uint96 locked; // part of `stake` held by jobs the worker took
        uint40 unbondEnd; // when `unbonding` becomes withdrawable
        uint96 unbonding; // wei on its way out
        uint40 stakeSince; // block in which stake was last added: draws count only older stake
    }

    /// @notice A worker registered with `stake` wei and the job kinds it runs.
    event WorkerRegistered(address indexed worker, uint256 stake, bytes32[] kinds);
    /// @notice A worker added `amount` wei to its stake (now `stake`).
    event StakeAdded(address indexed worker, uint256 amount, uint256 stake);
    /// @notice A worker declared (`supported`) or withdrew the given job kinds.
    event KindsUpdated(address indexed worker, bytes32[] kinds, bool supported);
    /// @notice A worker started unbonding `amount` wei, withdrawable from `unbondEnd`.
    event UnbondStarted(address indexed worker, uint256 amount, uint256 unbondEnd);
    /// @notice A worker withdrew `amount` wei of unbonded stake.
    event StakeWithdrawn(address indexed worker, uint256 amount);
    /// @notice Job `jobId` released the `amount` of the worker's stake it had locked (paid,
    /// outbid, or the job ended without the worker's fault).
    event StakeReleased(address indexed worker, uint256 indexed jobId, uint256 amount);
    /// @notice The market slashed `amount` wei of a worker's stake for job `jobId`. Where it
    /// went follows as `Payment`s with reason Slash: to the job's honest replicas, or burned
    /// (payee 0); never to the requester or to whoever called.
    event StakeSlashed(address indexed worker, uint256 indexed jobId, uint256 amount);

    /// @notice The caller is already registered (use addStake / setKinds).
    error RegistryAlreadyRegistered(address worker);
    /// @notice The account is not a registered worker.
    error RegistryNotRegistered(address worker);
    /// @notice A deposit or unbond amount must be above zero and fit in 96 bits.
    error RegistryInvalidAmount(uint256 amount);
    /// @notice Too many kinds in one call (`max`).
    error RegistryTooManyKinds(uint256 count, uint256 max);
    /// @notice The worker's unlocked stake is below what is asked.
    error RegistryInsufficientStake(address worker, uint256 available, uint256 required);
    /// @notice The worker did not declare the job's kind.
    error RegistryKindNotDeclared(address worker, bytes32 kind);
    /// @notice Nothing is unbonding for this worker.
    error RegistryNothingUnbonding(address worker);
    /// @notice The unbond delay has not passed yet.
    error RegistryUnbondNotDue(address worker, uint256 unbondEnd);
    /// @notice Sending ETH to the worker failed.
    error RegistryTransferFailed(address worker, uint256 amount);

    /// @notice Register the caller with `msg.value` wei of stake (may be 0) and its job kinds.
    /// @param kinds job kind ids, `keccak256(bytes(kindName))`, e.g. keccak256("hep.pythia").
    function register(bytes32[] calldata kinds) external payable;

    /// @notice Add `msg.value` wei to the caller's stake.
    function addStake() external payable;

    /// @notice Declare (`supported` true) or withdraw job kinds.
    function setKinds(bytes32[] calldata kinds, bool supported) external;

    /// @notice Start unbonding `amount` wei of unlocked stake; it becomes withdrawable after
    /// `unbondDelay()`. A second call adds to the amount and restarts the delay.
    function unbond(uint256 amount) external;

    /// @notice Send the caller its unbonded stake once the delay has passed.
    function withdrawStake() external;

    /// @notice The stored worker record (all zero for an unknown account).
    function getWorker(address worker) external view returns (Worker memory);

    /// @notice Stake the worker can still lock for new jobs or unbond (`stake - locked`).
    function availableStake(address worker) external view returns (uint256);

    /// @notice Whether the worker declared job kind `kind`.
    function hasKind(address worker, bytes32 kind) external view returns (bool);

    /// @notice Seconds between `unbond` and `withdrawStake`.
    function unbondDelay() external view returns (uint256);
}

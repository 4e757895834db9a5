// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {ISweepCalls} from "./interfaces/ISweepCalls.sol";
import {WorkerRegistry} from "./WorkerRegistry.sol";

/// @title The market's books: jobs, their terms and replicas, credits, and the rules that move
/// money between them
/// @notice Storage and internal rules shared by the JobMarket, {MarketCalls} and {SweepCalls},
/// whose code the market runs in its own storage (delegatecall) for the registry's calls,
/// replicated jobs' results and sweeps: the market's own code is at EIP-170's size limit.
/// @dev Inherited first (after {WorkerRegistry}) by both, so every slot is the same in both.
abstract contract MarketBook is WorkerRegistry {
    /// @dev Storage form of {IJobMarket-Job}, one slot (248 bits).
    struct JobRecord {
        uint32 requester; // account id
        uint32 worker; // account id of a single-replica job's worker; 0 until assigned
        IJobMarket.JobState state;
        uint40 deadline;
        // The run window until a single worker submits; then the tag of its result's digest
        // (tagOf), which a dispute needs and the run window no longer is.
        uint32 runWindowOrTag;
        bool hasTerms;
        // What the job holds: the whole escrow, until a single worker is assigned at its price
        // (the rest is refunded then); from that moment on the price.
        uint96 escrow;
    }

    /// @dev Storage form of {ISweepCalls-Sweep}, one slot (256 bits).
    struct SweepRecord {
        uint32 requester; // account id
        uint24 count;
        uint24 taken;
        uint40 claimDeadline;
        uint32 runWindow;
        uint88 price;
    }

    /// @dev Storage form of {ISweepCalls-Lot} but its digests' hash (a second slot, written
    /// at submission), one slot (248 bits).
    struct LotRecord {
        uint32 worker; // account id
        uint32 requester; // account id (the sweep's, kept here so a lot never reads its sweep)
        uint24 count;
        uint24 opened;
        ISweepCalls.LotState state;
        uint40 deadline;
        uint88 price;
    }

    /// @notice Longest claim, run, reveal or challenge window, in seconds.
    uint256 internal constant MAX_WINDOW = 365 days;

    uint256 internal immutable _stakeFreeLimit;

    mapping(uint256 jobId => JobRecord) internal _jobs;
    mapping(uint256 jobId => IJobMarket.JobTerms) internal _terms;
    mapping(uint256 jobId => mapping(uint256 index => IJobMarket.Assignment)) internal _slots;
    mapping(uint256 jobId => mapping(address worker => uint256 indexPlusOne)) internal _slotOf;
    mapping(address token => mapping(address account => uint256)) internal _tokenCredits;
    /// @dev Slashed stake that went to nobody: see {IJobMarket-burned}.
    uint256 internal _burned;
    /// @dev ETH credits of addresses that could not be given an account id (ids ran out), so
    /// that paying them never reverts and no job is frozen by it.
    mapping(address account => uint256) internal _creditsWithoutId;
    mapping(uint256 sweepId => SweepRecord) internal _sweeps;
    mapping(uint256 lotId => LotRecord) internal _lots;
    mapping(uint256 lotId => bytes32) internal _lotDigests;

    /// @param stakeFreeLimit_ see {IJobMarket-stakeFreeLimit}.
    constructor(uint256 stakeFreeLimit_) {
        _stakeFreeLimit = stakeFreeLimit_;
    }

    /// @dev The stake taking a job with `minStake` at `price` locks (see stakeRequired).
    function _stakeFor(uint256 minStake, uint256 price) internal view returns (uint256) {
        return price > _stakeFreeLimit && price > minStake ? price : minStake;
    }


    /// @dev Takes `amount` wei of slashed stake out of the books for ever.
    function _burn(uint256 jobId, uint256 amount) internal {
        if (amount == 0) return;
        _burned += amount;
        emit IJobMarket.Payment(jobId, address(0), amount, IJobMarket.PaymentReason.Slash, IJobMarket.PaymentDirection.Out);
    }


    function _commitment(uint256 jobId, address worker, bytes32 digest, bytes32 salt)
        internal
        view
        returns (bytes32)
    {
        return keccak256(abi.encode(block.chainid, address(this), jobId, worker, digest, salt));
    }


    /// @dev Credits `amount` of `token` (0 = ETH) to account `id`; returns its address.
    function _credit(
        uint256 jobId,
        address token,
        uint256 id,
        uint256 amount,
        IJobMarket.PaymentReason reason
    ) internal returns (address account) {
        Account storage credited = _accounts[id];
        account = credited.holder;
        if (token == address(0)) {
            credited.credit += uint96(amount); // amount <= an escrow or a stake, both uint96
        } else {
            _tokenCredits[token][account] += amount;
        }
        emit IJobMarket.Payment(jobId, account, amount, reason, IJobMarket.PaymentDirection.Credit);
    }


    function _creditEth(uint256 jobId, address account, uint256 amount, IJobMarket.PaymentReason reason)
        internal
    {
        _creditTo(jobId, address(0), account, amount, reason);
    }


    /// @dev Credits `account` by its id, given one if it has none; when ids have run out, by
    /// address instead: a payee without an id must not freeze the job that pays it.
    function _creditTo(
        uint256 jobId,
        address token,
        address account,
        uint256 amount,
        IJobMarket.PaymentReason reason
    ) internal {
        uint32 id = _accountIds[account];
        if (id != 0 || _counters.nextAccountId <= type(uint32).max) {
            _credit(jobId, token, id != 0 ? id : _accountId(account), amount, reason);
            return;
        }
        if (token == address(0)) {
            _creditsWithoutId[account] += amount;
        } else {
            _tokenCredits[token][account] += amount;
        }
        emit IJobMarket.Payment(jobId, account, amount, reason, IJobMarket.PaymentDirection.Credit);
    }


    function _slotOfCaller(uint256 jobId, IJobMarket.AssignmentStatus expected)
        internal
        view
        returns (IJobMarket.Assignment storage slot)
    {
        uint256 indexPlusOne = _slotOf[jobId][msg.sender];
        if (indexPlusOne == 0) revert IJobMarket.JobMarketNotAssigned(jobId, msg.sender);
        slot = _slots[jobId][indexPlusOne - 1];
        if (slot.status != expected) revert IJobMarket.JobMarketNotAssigned(jobId, msg.sender);
    }


    function _existingJob(uint256 jobId) internal view returns (JobRecord storage job) {
        job = _jobs[jobId];
        if (job.state == IJobMarket.JobState.None) revert IJobMarket.JobMarketUnknownJob(jobId);
    }


    function _checkWindow(uint256 window) internal pure {
        if (window == 0 || window > MAX_WINDOW) {
            revert IJobMarket.JobMarketInvalidWindow(window, MAX_WINDOW);
        }
    }


    function _checkState(uint256 jobId, IJobMarket.JobState actual, IJobMarket.JobState expected) internal pure {
        if (actual != expected) revert IJobMarket.JobMarketWrongState(jobId, actual);
    }
}

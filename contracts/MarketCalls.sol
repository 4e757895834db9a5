// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {IWorkerRegistry} from "./interfaces/IWorkerRegistry.sol";
import {MarketBook} from "./MarketBook.sol";
import {SweepCalls} from "./SweepCalls.sol";

/// @title The market's calls that run from a second code contract, in the market's storage
/// @notice Deployed before the JobMarket, which is given its address (and checks it was built
/// for the market's challenge window and stake-free limit) and forwards these calls to it
/// (delegatecall), which keeps the market's own code under EIP-170's 24,576 bytes and its
/// init code under EIP-3860's 49,152; addresses, events and storage are the market's. They
/// are the registry's calls (see {IWorkerRegistry}: register, stake, kinds, unbond), a
/// worker's setup, replicated jobs' results (commitResult, revealResult, and finalize's tally
/// of a replicated job; see {IJobMarket}) and sweeps (see {ISweepCalls}, the fallback's).
/// @dev Called directly, it works on its own empty storage and holds nothing of the market's.
contract MarketCalls is SweepCalls {
    constructor(uint256 challengeWindow_, uint256 stakeFreeLimit_)
        MarketBook(stakeFreeLimit_)
        SweepCalls(challengeWindow_)
    {}

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
        uint256 unbondEnd = block.timestamp + _challengeWindow;
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
        return _challengeWindow;
    }

    // ---------------------------------------------------------------- replicated jobs' results

    /// @notice {IJobMarket-finalize} of a replicated job: the market settles a single worker's
    /// submission itself and forwards every other state here.
    function finalize(uint256 jobId) external {
        JobRecord storage job = _existingJob(jobId);
        IJobMarket.JobState state = job.state;
        uint256 deadline = job.deadline;
        IJobMarket.JobTerms storage t = _terms[jobId];
        // Past the commit deadline with the quorum out of reach, the job ends at once; the
        // replicas that committed never had their reveal window, so they are released.
        bool revealWindowRan = true;
        if (state == IJobMarket.JobState.Committing) {
            if (t.committed >= t.quorum) deadline += t.revealWindow;
            else revealWindowRan = false;
        } else if (state == IJobMarket.JobState.Revealing) {
            if (t.revealed == t.assigned) deadline = 0;
        } else {
            revert IJobMarket.JobMarketWrongState(jobId, state);
        }
        if (block.timestamp <= deadline) {
            revert IJobMarket.JobMarketDeadlineNotReached(jobId, deadline);
        }
        _tally(jobId, job, t, revealWindowRan);
    }

    /// @notice See {IJobMarket-commitResult}.
    function commitResult(uint256 jobId, bytes32 commitment) external {
        JobRecord storage job = _existingJob(jobId);
        _checkState(jobId, job.state, IJobMarket.JobState.Committing);
        if (block.timestamp > job.deadline) revert IJobMarket.JobMarketDeadlinePassed(jobId, job.deadline);
        IJobMarket.Assignment storage slot = _slotOfCaller(jobId, IJobMarket.AssignmentStatus.Assigned);

        slot.commitment = commitment;
        slot.status = IJobMarket.AssignmentStatus.Committed;
        IJobMarket.JobTerms storage t = _terms[jobId];
        uint256 committed = t.committed + 1;
        t.committed = uint8(committed);
        emit IJobMarket.ResultCommitted(jobId, msg.sender, commitment);
        if (committed == t.assigned) {
            uint256 revealDeadline = block.timestamp + t.revealWindow;
            job.state = IJobMarket.JobState.Revealing;
            job.deadline = uint40(revealDeadline);
            emit IJobMarket.RevealPhaseStarted(jobId, revealDeadline);
        }
    }


    /// @notice See {IJobMarket-revealResult}.
    function revealResult(uint256 jobId, bytes32 digest, bytes32 salt, string calldata resultCid)
        external
    {
        JobRecord storage job = _existingJob(jobId);
        IJobMarket.JobTerms storage t = _terms[jobId];
        if (job.state == IJobMarket.JobState.Committing) {
            // Reveals open at the commit deadline even if some replicas never committed.
            if (block.timestamp <= job.deadline) {
                revert IJobMarket.JobMarketRevealNotOpen(jobId, job.deadline);
            }
            uint256 revealDeadline = job.deadline + t.revealWindow;
            job.state = IJobMarket.JobState.Revealing;
            job.deadline = uint40(revealDeadline);
            emit IJobMarket.RevealPhaseStarted(jobId, revealDeadline);
        }
        _checkState(jobId, job.state, IJobMarket.JobState.Revealing);
        if (block.timestamp > job.deadline) revert IJobMarket.JobMarketDeadlinePassed(jobId, job.deadline);
        if (bytes(resultCid).length == 0) revert IJobMarket.JobMarketEmptyCid();
        IJobMarket.Assignment storage slot = _slotOfCaller(jobId, IJobMarket.AssignmentStatus.Committed);
        if (_commitment(jobId, msg.sender, digest, salt) != slot.commitment) {
            revert IJobMarket.JobMarketCommitmentMismatch(jobId, msg.sender);
        }

        slot.digest = digest;
        slot.status = IJobMarket.AssignmentStatus.Revealed;
        t.revealed += 1;
        emit IJobMarket.ResultRevealed(jobId, msg.sender, digest, resultCid);
    }


    /// @dev Replicated jobs: pays the replicas that revealed the quorum digest, slashes the
    /// minority and the no-shows (committers too, but only once their reveal window ran) and
    /// splits the slashed stake among the paid replicas (none: burned); refunds the rest.
    /// Loops are bounded by MAX_REPLICAS.
    function _tally(uint256 jobId, JobRecord storage job, IJobMarket.JobTerms storage t, bool revealWindowRan)
        internal
    {
        uint256 count = t.assigned;
        bool agreed;
        bytes32 winner;
        for (uint256 i; i < count && !agreed; ++i) {
            IJobMarket.Assignment storage a = _slots[jobId][i];
            if (a.status != IJobMarket.AssignmentStatus.Revealed) continue;
            uint256 votes;
            for (uint256 j; j < count; ++j) {
                IJobMarket.Assignment storage b = _slots[jobId][j];
                if (b.status == IJobMarket.AssignmentStatus.Revealed && b.digest == a.digest) ++votes;
            }
            if (votes >= t.quorum) (agreed, winner) = (true, a.digest);
        }

        job.state = agreed ? IJobMarket.JobState.Settled : IJobMarket.JobState.NoQuorum;
        (uint256 paid, uint256 paidWorkers, uint256 slashed) =
            _payReplicas(jobId, t, agreed, winner, revealWindowRan);
        if (slashed > 0) _shareSlash(jobId, slashed, paidWorkers);
        uint256 refund = job.escrow - paid;
        if (refund > 0) _credit(jobId, t.token, job.requester, refund, IJobMarket.PaymentReason.Refund);
        if (agreed) {
            emit IJobMarket.ReplicasSettled(jobId, winner, paidWorkers, paid, refund);
        } else {
            emit IJobMarket.JobNoQuorum(jobId, refund);
        }
    }


    /// @dev The tally's verdict on each replica: paid (in the quorum), released (revealed
    /// without a quorum, or committed before its reveal window could run) or slashed.
    function _payReplicas(
        uint256 jobId,
        IJobMarket.JobTerms storage t,
        bool agreed,
        bytes32 winner,
        bool revealWindowRan
    ) internal returns (uint256 paid, uint256 paidWorkers, uint256 slashed) {
        uint256 count = t.assigned;
        uint256 minStake = t.minStake;
        for (uint256 i; i < count; ++i) {
            IJobMarket.Assignment storage a = _slots[jobId][i];
            IJobMarket.AssignmentStatus status = a.status;
            bool revealed = status == IJobMarket.AssignmentStatus.Revealed;
            if (agreed && revealed && a.digest == winner) {
                a.status = IJobMarket.AssignmentStatus.Paid;
                _unlockStake(jobId, a.worker, _stakeFor(minStake, a.price));
                _creditTo(jobId, t.token, a.worker, a.price, IJobMarket.PaymentReason.WorkerPayment);
                paid += a.price;
                ++paidWorkers;
            } else if (
                (revealed && !agreed)
                    || (status == IJobMarket.AssignmentStatus.Committed && !revealWindowRan)
            ) {
                a.status = IJobMarket.AssignmentStatus.Released;
                _unlockStake(jobId, a.worker, _stakeFor(minStake, a.price));
            } else {
                a.status = IJobMarket.AssignmentStatus.Slashed;
                slashed += _slashStake(jobId, a.worker, _stakeFor(minStake, a.price));
            }
        }
    }


    /// @dev Splits `amount` of slashed stake (ETH) evenly among the job's paid replicas; the
    /// remainder of the division, or all of it when nobody was paid, is burned.
    function _shareSlash(uint256 jobId, uint256 amount, uint256 paidWorkers) internal {
        uint256 share = paidWorkers == 0 ? 0 : amount / paidWorkers;
        if (share > 0) {
            uint256 count = _terms[jobId].assigned;
            for (uint256 i; i < count; ++i) {
                IJobMarket.Assignment storage a = _slots[jobId][i];
                if (a.status == IJobMarket.AssignmentStatus.Paid) {
                    _creditEth(jobId, a.worker, share, IJobMarket.PaymentReason.Slash);
                }
            }
        }
        _burn(jobId, amount - share * paidWorkers);
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

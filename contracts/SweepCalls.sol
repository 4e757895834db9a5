// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {ISweepCalls} from "./interfaces/ISweepCalls.sol";
import {MarketBook} from "./MarketBook.sol";
import {tagOf} from "./libraries/DigestTag.sol";

/// @title Sweeps: the market's calls for many jobs under one record (see {ISweepCalls})
/// @notice Part of {MarketCalls}, whose code the market's fallback runs in the market's
/// storage, so the market holds the escrow and stakes and emits the events.
/// @dev Gas: a sweep, a lot and a lot's digests are one slot each, whatever their number of
/// jobs; a job costs its calldata and its share of the events (docs/scale.md).
abstract contract SweepCalls is MarketBook, ISweepCalls {
    /// @notice Most jobs in one sweep (lot and sweep counters are 24-bit; a sweep of this
    /// many is already several blocks' worth of calldata).
    uint256 internal constant MAX_SWEEP_JOBS = 10_000;

    /// @dev The market's challenge window (also the workers' unbond delay).
    uint256 internal immutable _challengeWindow;

    constructor(uint256 challengeWindow_) {
        _checkWindow(challengeWindow_);
        _challengeWindow = challengeWindow_;
    }

    /// @inheritdoc ISweepCalls
    function postSweep(
        string[] calldata specCids,
        uint256 price,
        uint256 claimWindow,
        uint256 runWindow
    ) external payable returns (uint256 sweepId) {
        uint256 n = specCids.length;
        if (n == 0 || n > MAX_SWEEP_JOBS) revert SweepInvalidSize(n, MAX_SWEEP_JOBS);
        if (price == 0 || price > type(uint88).max) revert IJobMarket.JobMarketInvalidAmount(price);
        if (msg.value != price * n) revert IJobMarket.JobMarketInvalidEscrow(msg.value);
        _checkWindow(claimWindow);
        _checkWindow(runWindow);
        for (uint256 i; i < n; ++i) {
            if (bytes(specCids[i]).length == 0) revert IJobMarket.JobMarketEmptyCid();
        }
        uint32 requester = _accountId(msg.sender);
        sweepId = _counters.nextJobId;
        _counters.nextJobId = uint128(sweepId + n);
        uint256 claimDeadline = block.timestamp + claimWindow;
        // Casts are safe: n, windows and price were bounded above.
        _sweeps[sweepId] = SweepRecord(
            requester, uint24(n), 0, uint40(claimDeadline), uint32(runWindow), uint88(price)
        );
        emit SweepPosted(sweepId, msg.sender, price, claimDeadline, runWindow, specCids);
        emit IJobMarket.Payment(
            sweepId, msg.sender, msg.value, IJobMarket.PaymentReason.Escrow, IJobMarket.PaymentDirection.In
        );
    }

    /// @inheritdoc ISweepCalls
    function claimLot(uint256 sweepId, uint256 firstJob, uint256 maxCount)
        external
        returns (uint256 lotId, uint256 count)
    {
        SweepRecord storage s = _sweeps[sweepId];
        uint256 total = s.count;
        if (total == 0) revert SweepUnknown(sweepId);
        if (maxCount == 0) revert IJobMarket.JobMarketInvalidAmount(0);
        uint256 taken = s.taken;
        // Only the jobs the worker read the specs of: another claim that moved the cursor
        // first leaves this one nothing, rather than jobs it never looked at.
        bool stale = sweepId + taken != firstJob;
        uint256 left = stale || block.timestamp > s.claimDeadline ? 0 : total - taken;
        count = maxCount < left ? maxCount : left;
        if (count == 0) {
            emit SweepClaimSkipped(sweepId, msg.sender);
            return (0, 0);
        }
        uint256 price = s.price;
        _lockStake(msg.sender, count * _stakeFor(0, price), bytes32(0));
        lotId = sweepId + taken;
        s.taken = uint24(taken + count);
        uint256 runDeadline = block.timestamp + s.runWindow;
        _lots[lotId] = LotRecord(
            _accountId(msg.sender), s.requester, uint24(count), 0, LotState.Claimed,
            uint40(runDeadline), uint88(price)
        );
        emit LotClaimed(lotId, sweepId, msg.sender, count, runDeadline);
    }

    /// @inheritdoc ISweepCalls
    function submitLot(
        uint256 lotId,
        string[] calldata resultCids,
        bytes32[] calldata digests,
        uint256[] calldata matured
    ) external returns (uint256 settled) {
        LotRecord storage lot = _lots[lotId];
        if (lot.state != LotState.Claimed) revert LotWrongState(lotId, lot.state);
        if (_accounts[lot.worker].holder != msg.sender) revert LotNotWorker(lotId, msg.sender);
        if (block.timestamp > lot.deadline) revert LotDeadlinePassed(lotId, lot.deadline);
        uint256 n = lot.count;
        if (resultCids.length != n || digests.length != n) {
            revert LotResultsMismatch(lotId, n, resultCids.length, digests.length);
        }
        for (uint256 i; i < n; ++i) {
            if (bytes(resultCids[i]).length == 0) revert IJobMarket.JobMarketEmptyCid();
        }
        uint256 challengeEnd = block.timestamp + _challengeWindow;
        lot.state = LotState.Submitted;
        lot.deadline = uint40(challengeEnd);
        _lotDigests[lotId] = keccak256(abi.encodePacked(digests));
        emit LotSubmitted(lotId, msg.sender, resultCids, digests, challengeEnd);
        settled = _settleLots(matured);
    }

    /// @inheritdoc ISweepCalls
    function settleLots(uint256[] calldata lotIds) external returns (uint256 settled) {
        return _settleLots(lotIds);
    }

    /// @inheritdoc ISweepCalls
    function expireLot(uint256 lotId) external {
        LotRecord storage lot = _lots[lotId];
        if (lot.state != LotState.Claimed) revert LotWrongState(lotId, lot.state);
        if (block.timestamp <= lot.deadline) revert LotDeadlineNotReached(lotId, lot.deadline);
        lot.state = LotState.Expired;
        uint256 n = lot.count;
        uint256 price = lot.price;
        // Burned, as a single job's missed deadline is: the requester gains nothing from it.
        uint256 stake = n * _stakeFor(0, price);
        _burn(lotId, _slashStake(lotId, _accounts[lot.worker].holder, stake));
        uint256 refund = n * price;
        _credit(lotId, address(0), lot.requester, refund, IJobMarket.PaymentReason.Refund);
        emit LotExpired(lotId, refund);
    }

    /// @inheritdoc ISweepCalls
    function refundSweep(uint256 sweepId) external {
        SweepRecord storage s = _sweeps[sweepId];
        uint256 total = s.count;
        if (total == 0) revert SweepUnknown(sweepId);
        if (block.timestamp <= s.claimDeadline && msg.sender != _accounts[s.requester].holder) {
            revert IJobMarket.JobMarketNotRequester(sweepId, msg.sender);
        }
        uint256 jobs = total - s.taken;
        if (jobs == 0) revert SweepNothingToRefund(sweepId);
        s.taken = uint24(total);
        uint256 refund = jobs * s.price;
        _credit(sweepId, address(0), s.requester, refund, IJobMarket.PaymentReason.Refund);
        emit SweepRefunded(sweepId, jobs, refund);
    }

    /// @inheritdoc ISweepCalls
    function openLotJob(uint256 lotId, uint256 jobId, bytes32[] calldata digests) external {
        LotRecord storage lot = _lots[lotId];
        if (lot.state != LotState.Submitted) revert LotWrongState(lotId, lot.state);
        uint256 deadline = lot.deadline;
        if (block.timestamp > deadline) revert LotDeadlinePassed(lotId, deadline);
        if (jobId < lotId || jobId >= lotId + lot.count) revert LotJobNotInLot(lotId, jobId);
        if (keccak256(abi.encodePacked(digests)) != _lotDigests[lotId]) {
            revert LotDigestsMismatch(lotId);
        }
        JobRecord storage job = _jobs[jobId];
        if (job.state != IJobMarket.JobState.None) {
            revert IJobMarket.JobMarketWrongState(jobId, job.state);
        }
        bytes32 digest = digests[jobId - lotId];
        // A submitted fast-path job with the same challenge end: the court and finalize treat
        // it as any other; its stake stays locked from the lot's.
        _jobs[jobId] = JobRecord(
            lot.requester, lot.worker, IJobMarket.JobState.Submitted, uint40(deadline),
            tagOf(digest), false, lot.price
        );
        lot.opened += 1;
        emit LotJobOpened(lotId, jobId, digest);
    }

    /// @inheritdoc ISweepCalls
    function getSweep(uint256 sweepId) external view returns (Sweep memory) {
        SweepRecord storage s = _sweeps[sweepId];
        return Sweep(
            _accounts[s.requester].holder, s.count, s.taken, s.price, s.claimDeadline, s.runWindow
        );
    }

    /// @inheritdoc ISweepCalls
    function getLot(uint256 lotId) external view returns (Lot memory) {
        LotRecord storage lot = _lots[lotId];
        return Lot(
            _accounts[lot.worker].holder,
            _accounts[lot.requester].holder,
            lot.count,
            lot.opened,
            lot.state,
            lot.deadline,
            lot.price,
            _lotDigests[lotId]
        );
    }

    /// @inheritdoc ISweepCalls
    function builtFor() external view returns (uint256, uint256) {
        return (_challengeWindow, _stakeFreeLimit);
    }

    /// @dev Pays each submitted lot whose challenge window has passed for its jobs not opened
    /// to a dispute, and unlocks their stake; skips the rest with LotSettleSkipped.
    function _settleLots(uint256[] calldata lotIds) private returns (uint256 settled) {
        for (uint256 i; i < lotIds.length; ++i) {
            uint256 lotId = lotIds[i];
            LotRecord storage lot = _lots[lotId];
            if (lot.state != LotState.Submitted || block.timestamp <= lot.deadline) {
                emit LotSettleSkipped(lotId, msg.sender, lot.state);
                continue;
            }
            lot.state = LotState.Settled;
            uint256 jobs = uint256(lot.count) - lot.opened;
            uint256 price = lot.price;
            uint256 payment = jobs * price;
            address worker = _credit(
                lotId, address(0), lot.worker, payment, IJobMarket.PaymentReason.WorkerPayment
            );
            _unlockStake(lotId, worker, jobs * _stakeFor(0, price));
            emit LotSettled(lotId, worker, jobs, payment);
            ++settled;
        }
    }
}

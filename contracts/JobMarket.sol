// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IJobMarket} from "./interfaces/IJobMarket.sol";

/// @title hepx job market (single replica, ETH escrow, first valid claim wins)
/// @notice See {IJobMarket}. Money only leaves through {withdraw}; every other call moves
/// escrow into credits, so no call but that one can be re-entered or blocked by a payee.
contract JobMarket is IJobMarket {
    /// @notice Longest claim, run or challenge window, in seconds.
    uint256 public constant MAX_WINDOW = 365 days;

    uint256 private immutable _challengeWindow;

    /// @dev Starts at 1 so the first post rewrites a warm-priced slot instead of creating one.
    uint256 private _nextJobId = 1;

    mapping(uint256 jobId => Job) private _jobs;
    mapping(address account => uint256) private _withdrawable;

    /// @param challengeWindow_ seconds after a submission before anyone may finalize
    /// (1 to MAX_WINDOW, else JobMarketInvalidWindow).
    constructor(uint256 challengeWindow_) {
        _checkWindow(challengeWindow_);
        _challengeWindow = challengeWindow_;
    }

    // ---------------------------------------------------------------- calls

    /// @inheritdoc IJobMarket
    function postJob(string calldata specCid, uint256 claimWindow, uint256 runWindow)
        external
        payable
        returns (uint256 jobId)
    {
        if (msg.value == 0 || msg.value > type(uint96).max) {
            revert JobMarketInvalidEscrow(msg.value);
        }
        if (bytes(specCid).length == 0) revert JobMarketEmptyCid();
        _checkWindow(claimWindow);
        _checkWindow(runWindow);

        jobId = _nextJobId++;
        // Casts are safe: windows are capped at MAX_WINDOW and escrow was checked above.
        uint256 claimDeadline = block.timestamp + claimWindow;
        // Field by field: a struct literal would also write the still-empty worker slot.
        Job storage job = _jobs[jobId];
        job.requester = msg.sender;
        job.state = JobState.Open;
        job.deadline = uint40(claimDeadline);
        job.runWindow = uint32(runWindow);
        job.escrow = uint96(msg.value);
        emit JobPosted(jobId, msg.sender, specCid, msg.value, claimDeadline, runWindow);
        emit Payment(jobId, msg.sender, msg.value, PaymentReason.Escrow, PaymentDirection.In);
    }

    /// @inheritdoc IJobMarket
    function claim(uint256 jobId, uint256 price) external {
        Job storage job = _existingJob(jobId);
        _checkState(jobId, job.state, JobState.Open);
        if (block.timestamp > job.deadline) revert JobMarketDeadlinePassed(jobId, job.deadline);
        if (price > job.escrow) revert JobMarketPriceAboveMax(jobId, price, job.escrow);

        uint256 runDeadline = block.timestamp + job.runWindow;
        job.state = JobState.Claimed;
        job.deadline = uint40(runDeadline);
        job.worker = msg.sender;
        job.price = uint96(price); // <= escrow, which fits in 96 bits
        emit JobClaimed(jobId, msg.sender, price, runDeadline);
    }

    /// @inheritdoc IJobMarket
    function submitResult(uint256 jobId, string calldata resultCid) external {
        Job storage job = _existingJob(jobId);
        if (msg.sender != job.worker) revert JobMarketNotWorker(jobId, msg.sender);
        _checkState(jobId, job.state, JobState.Claimed);
        if (block.timestamp > job.deadline) revert JobMarketDeadlinePassed(jobId, job.deadline);
        if (bytes(resultCid).length == 0) revert JobMarketEmptyCid();

        uint256 challengeEnd = block.timestamp + _challengeWindow;
        job.state = JobState.Submitted;
        job.deadline = uint40(challengeEnd);
        emit ResultSubmitted(jobId, msg.sender, resultCid, challengeEnd);
    }

    /// @inheritdoc IJobMarket
    function accept(uint256 jobId) external {
        Job storage job = _existingJob(jobId);
        if (msg.sender != job.requester) revert JobMarketNotRequester(jobId, msg.sender);
        _checkState(jobId, job.state, JobState.Submitted);
        _settle(jobId, job);
    }

    /// @inheritdoc IJobMarket
    function finalize(uint256 jobId) external {
        Job storage job = _existingJob(jobId);
        _checkState(jobId, job.state, JobState.Submitted);
        if (block.timestamp <= job.deadline) {
            revert JobMarketDeadlineNotReached(jobId, job.deadline);
        }
        _settle(jobId, job);
    }

    /// @inheritdoc IJobMarket
    function cancel(uint256 jobId) external {
        Job storage job = _existingJob(jobId);
        if (msg.sender != job.requester) revert JobMarketNotRequester(jobId, msg.sender);
        _checkState(jobId, job.state, JobState.Open);

        job.state = JobState.Cancelled;
        uint256 refund = _refundEscrow(jobId, job);
        emit JobCancelled(jobId, refund);
    }

    /// @inheritdoc IJobMarket
    function expire(uint256 jobId) external {
        Job storage job = _existingJob(jobId);
        JobState fromState = job.state;
        if (fromState != JobState.Open && fromState != JobState.Claimed) {
            revert JobMarketWrongState(jobId, fromState);
        }
        if (block.timestamp <= job.deadline) {
            revert JobMarketDeadlineNotReached(jobId, job.deadline);
        }

        job.state = JobState.Expired;
        uint256 refund = _refundEscrow(jobId, job);
        emit JobExpired(jobId, fromState, refund);
    }

    /// @inheritdoc IJobMarket
    function withdraw() external {
        uint256 amount = _withdrawable[msg.sender];
        if (amount == 0) revert JobMarketNothingToWithdraw(msg.sender);

        _withdrawable[msg.sender] = 0;
        emit Payment(0, msg.sender, amount, PaymentReason.Withdrawal, PaymentDirection.Out);
        (bool ok,) = payable(msg.sender).call{value: amount}("");
        if (!ok) revert JobMarketTransferFailed(msg.sender, amount);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IJobMarket
    function getJob(uint256 jobId) external view returns (Job memory) {
        return _jobs[jobId];
    }

    /// @inheritdoc IJobMarket
    function withdrawable(address account) external view returns (uint256) {
        return _withdrawable[account];
    }

    /// @inheritdoc IJobMarket
    function jobCount() external view returns (uint256) {
        return _nextJobId - 1;
    }

    /// @inheritdoc IJobMarket
    function challengeWindow() external view returns (uint256) {
        return _challengeWindow;
    }

    // ---------------------------------------------------------------- internals

    /// @dev Pays the worker its price and credits the requester what the job did not spend.
    function _settle(uint256 jobId, Job storage job) private {
        job.state = JobState.Settled;
        address worker = job.worker;
        uint256 payment = job.price;
        uint256 refund = job.escrow - payment;

        _withdrawable[worker] += payment;
        emit Payment(jobId, worker, payment, PaymentReason.WorkerPayment, PaymentDirection.Credit);
        if (refund > 0) {
            address requester = job.requester;
            _withdrawable[requester] += refund;
            emit Payment(jobId, requester, refund, PaymentReason.Refund, PaymentDirection.Credit);
        }
        emit JobSettled(jobId, worker, payment, refund);
    }

    /// @dev Credits the whole escrow back to the requester; returns it.
    function _refundEscrow(uint256 jobId, Job storage job) private returns (uint256 refund) {
        refund = job.escrow;
        address requester = job.requester;
        _withdrawable[requester] += refund;
        emit Payment(jobId, requester, refund, PaymentReason.Refund, PaymentDirection.Credit);
    }

    function _existingJob(uint256 jobId) private view returns (Job storage job) {
        job = _jobs[jobId];
        if (job.state == JobState.None) revert JobMarketUnknownJob(jobId);
    }

    function _checkState(uint256 jobId, JobState actual, JobState expected) private pure {
        if (actual != expected) revert JobMarketWrongState(jobId, actual);
    }

    function _checkWindow(uint256 window) private pure {
        if (window == 0 || window > MAX_WINDOW) revert JobMarketInvalidWindow(window, MAX_WINDOW);
    }
}

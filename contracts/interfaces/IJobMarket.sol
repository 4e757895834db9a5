// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title hepx job market
/// @notice A thin message bus with escrow: requesters post jobs (by the CID of their spec) with
/// ETH in escrow, workers claim them, run them off chain and submit the CID of the result; the
/// market pays the worker and refunds the requester. Every job ends settled, cancelled or
/// expired, and anyone may move an expired job on.
/// @dev CIDs travel in events, not storage: the contract never needs to read them back.
interface IJobMarket {
    /// @notice Where a job is in its life. `None` is a job id that was never posted.
    enum JobState {
        None,
        Open,
        Claimed,
        Submitted,
        Settled,
        Cancelled,
        Expired
    }

    /// @notice Why money moved, for `Payment`.
    enum PaymentReason {
        Escrow, // requester paid the job's max price in
        WorkerPayment, // worker credited its price on settlement
        Refund, // requester credited what the job did not spend
        Withdrawal // an account's credit sent to it
    }

    /// @notice Which way money moved relative to the market.
    enum PaymentDirection {
        In, // into the market's escrow
        Credit, // from escrow to an account's withdrawable credit
        Out // from the market to an account
    }

    /// @notice A job as stored. Packed into three slots.
    struct Job {
        address requester;
        JobState state;
        uint40 deadline; // the current phase's deadline: claim, run or challenge end
        uint32 runWindow; // seconds a worker has from its claim to submit a result
        address worker;
        uint96 price; // the worker's ask, set on claim
        uint96 escrow; // the max price the requester paid in
    }

    // ---------------------------------------------------------------- events

    /// @notice A requester posted a job; `maxPrice` wei are held in escrow.
    event JobPosted(
        uint256 indexed jobId,
        address indexed requester,
        string specCid,
        uint256 maxPrice,
        uint256 claimDeadline,
        uint256 runWindow
    );

    /// @notice A worker claimed an open job at `price` (at most the max price).
    event JobClaimed(uint256 indexed jobId, address indexed worker, uint256 price, uint256 runDeadline);

    /// @notice The worker submitted the CID of the job's result.
    event ResultSubmitted(
        uint256 indexed jobId, address indexed worker, string resultCid, uint256 challengeEnd
    );

    /// @notice The job was settled (accepted by its requester or finalized after the challenge
    /// window): `payment` credited to the worker, `refund` to the requester.
    event JobSettled(uint256 indexed jobId, address indexed worker, uint256 payment, uint256 refund);

    /// @notice The requester cancelled the job before any claim; its escrow is refunded.
    event JobCancelled(uint256 indexed jobId, uint256 refund);

    /// @notice A deadline passed (`fromState` tells which: Open = no claim, Claimed = no
    /// result); the escrow is refunded to the requester.
    event JobExpired(uint256 indexed jobId, JobState fromState, uint256 refund);

    /// @notice Every movement of money, so an explorer can show where every wei went.
    event Payment(
        uint256 indexed jobId,
        address indexed payee,
        uint256 amount,
        PaymentReason reason,
        PaymentDirection direction
    );

    // ---------------------------------------------------------------- errors

    /// @notice No job has this id.
    error JobMarketUnknownJob(uint256 jobId);
    /// @notice The job is not in a state that allows this call.
    error JobMarketWrongState(uint256 jobId, JobState state);
    /// @notice Only the job's requester may do this.
    error JobMarketNotRequester(uint256 jobId, address caller);
    /// @notice Only the job's worker may do this.
    error JobMarketNotWorker(uint256 jobId, address caller);
    /// @notice Too late: the phase's deadline has passed.
    error JobMarketDeadlinePassed(uint256 jobId, uint256 deadline);
    /// @notice Too early: the phase's deadline has not passed yet.
    error JobMarketDeadlineNotReached(uint256 jobId, uint256 deadline);
    /// @notice A job must carry escrow (msg.value > 0) that fits in 96 bits.
    error JobMarketInvalidEscrow(uint256 value);
    /// @notice The worker's ask exceeds the job's max price.
    error JobMarketPriceAboveMax(uint256 jobId, uint256 price, uint256 maxPrice);
    /// @notice A CID must not be empty.
    error JobMarketEmptyCid();
    /// @notice A time window is zero or too long (`max` seconds).
    error JobMarketInvalidWindow(uint256 window, uint256 max);
    /// @notice The account has nothing to withdraw.
    error JobMarketNothingToWithdraw(address account);
    /// @notice Sending ETH to the account failed.
    error JobMarketTransferFailed(address account, uint256 amount);

    // ---------------------------------------------------------------- calls

    /// @notice Post a job with `msg.value` as its max price, held in escrow.
    /// @param specCid CID of the job spec in the content store.
    /// @param claimWindow seconds from now during which a worker may claim.
    /// @param runWindow seconds a worker has from its claim to submit a result.
    /// @return jobId the new job's id (ids start at 1).
    function postJob(string calldata specCid, uint256 claimWindow, uint256 runWindow)
        external
        payable
        returns (uint256 jobId);

    /// @notice Claim an open job at `price` (at most its max price); the first valid claim wins.
    function claim(uint256 jobId, uint256 price) external;

    /// @notice The claiming worker submits the CID of the result before the run deadline.
    function submitResult(uint256 jobId, string calldata resultCid) external;

    /// @notice The requester accepts a submitted result: settles at once.
    function accept(uint256 jobId) external;

    /// @notice Anyone settles a submitted job once its challenge window has passed.
    function finalize(uint256 jobId) external;

    /// @notice The requester cancels a job nobody has claimed; the escrow is refunded.
    function cancel(uint256 jobId) external;

    /// @notice Anyone expires a job whose claim or run deadline passed; the escrow is refunded.
    function expire(uint256 jobId) external;

    /// @notice Send the caller all its credit (payments and refunds).
    function withdraw() external;

    /// @notice The stored job (state `None` for an unknown id).
    function getJob(uint256 jobId) external view returns (Job memory);

    /// @notice Wei `account` can withdraw.
    function withdrawable(address account) external view returns (uint256);

    /// @notice Number of jobs posted so far (the last job id).
    function jobCount() external view returns (uint256);

    /// @notice Seconds after a result's submission during which only the requester may settle.
    function challengeWindow() external view returns (uint256);
}

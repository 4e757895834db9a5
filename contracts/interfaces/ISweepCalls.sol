// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Sweeps: many fast-path jobs under one record, taken and paid in lots
/// @notice A sweep is N jobs of one price posted in one transaction (`postSweep`); its jobs
/// have the ids `sweepId .. sweepId + N - 1`, reserved from the market's job counter, but no
/// storage of their own. Workers take the next jobs of a sweep in lots (`claimLot`: one record
/// per lot, the lot's id is its first job's id; no two workers can race for a job, since each
/// claim takes the next unclaimed ones), submit a lot's results in one call (the CIDs and
/// digests are in the event; storage keeps one hash of the digests) and are paid per lot once
/// the challenge window has passed. A job of a submitted lot can be opened to a dispute
/// (`openLotJob`, with the lot's digests): it becomes an ordinary submitted job of the market,
/// which the dispute court re-executes and which settles or is overturned on its own; its
/// lot pays the rest. The rules of docs/protocol.md ("Sweeps") hold: the stake a lot locks is
/// its jobs' stakes, a lot not submitted by its run deadline burns that stake and refunds the
/// requester, unclaimed jobs are refunded to the requester.
/// @dev These calls reach the market's fallback, which runs {MarketCalls}' code in the
/// market's storage (delegatecall): the market's own code is at EIP-170's size limit. Call
/// them on the market's address with this interface's ABI.
interface ISweepCalls {
    /// @notice How far a lot got.
    enum LotState {
        None,
        Claimed, // taken by one worker, running until the run deadline
        Submitted, // results submitted, challenge window running
        Settled, // final: the worker paid for its jobs not opened to a dispute
        Expired // final: no results by the run deadline; stake burned, requester refunded
    }

    struct Sweep {
        address requester;
        uint256 count; // jobs in the sweep
        uint256 taken; // jobs claimed in lots or refunded; the next lot starts here
        uint256 price; // every job's escrow and price, wei
        uint256 claimDeadline;
        uint256 runWindow; // seconds from a lot's claim to its run deadline
    }

    struct Lot {
        address worker;
        address requester;
        uint256 count;
        uint256 opened; // jobs opened to a dispute: paid or refunded on their own
        LotState state;
        uint256 deadline; // the run deadline, then the end of the challenge window
        uint256 price;
        bytes32 digestsHash; // keccak256(abi.encodePacked(digests)) once submitted
    }

    /// @notice A sweep was posted; `specCids[i]` is the spec of job `sweepId + i`.
    event SweepPosted(
        uint256 indexed sweepId,
        address indexed requester,
        uint256 price,
        uint256 claimDeadline,
        uint256 runWindow,
        string[] specCids
    );
    /// @notice `worker` took jobs `lotId .. lotId + count - 1` of the sweep.
    event LotClaimed(
        uint256 indexed lotId,
        uint256 indexed sweepId,
        address indexed worker,
        uint256 count,
        uint256 runDeadline
    );
    /// @notice A claim found no job left (all taken, refunded, or past the claim deadline), or
    /// the sweep's next job was not the one it named: nothing changed and nothing reverted.
    event SweepClaimSkipped(uint256 indexed sweepId, address indexed worker);
    /// @notice The lot's results: `resultCids[i]` and `digests[i]` are job `lotId + i`'s.
    event LotSubmitted(
        uint256 indexed lotId,
        address indexed worker,
        string[] resultCids,
        bytes32[] digests,
        uint256 challengeEnd
    );
    /// @notice The worker was paid `payment` for `jobs` jobs of the lot.
    event LotSettled(uint256 indexed lotId, address indexed worker, uint256 jobs, uint256 payment);
    /// @notice A settlement skipped the lot: not submitted, or its challenge window not over.
    event LotSettleSkipped(uint256 indexed lotId, address indexed caller, LotState state);
    /// @notice Nobody submitted the lot by its run deadline: its stake was burned and the
    /// requester refunded.
    event LotExpired(uint256 indexed lotId, uint256 refund);
    /// @notice The sweep's unclaimed jobs were refunded (cancelled by the requester, or left
    /// at the claim deadline).
    event SweepRefunded(uint256 indexed sweepId, uint256 jobs, uint256 refund);
    /// @notice A job of a submitted lot became an ordinary submitted job (with `digest`), so
    /// it can be disputed; its lot no longer pays for it.
    event LotJobOpened(uint256 indexed lotId, uint256 indexed jobId, bytes32 digest);

    error SweepUnknown(uint256 sweepId);
    error SweepInvalidSize(uint256 count, uint256 max);
    error SweepNothingToRefund(uint256 sweepId);
    error LotWrongState(uint256 lotId, LotState state);
    error LotNotWorker(uint256 lotId, address caller);
    error LotDeadlinePassed(uint256 lotId, uint256 deadline);
    error LotDeadlineNotReached(uint256 lotId, uint256 deadline);
    error LotResultsMismatch(uint256 lotId, uint256 jobs, uint256 cids, uint256 digests);
    error LotDigestsMismatch(uint256 lotId);
    error LotJobNotInLot(uint256 lotId, uint256 jobId);

    /// @notice Posts `specCids.length` jobs at `price` each; msg.value must be their sum.
    /// The caller is the requester (sweeps are not relayed by the request desk).
    function postSweep(
        string[] calldata specCids,
        uint256 price,
        uint256 claimWindow,
        uint256 runWindow
    ) external payable returns (uint256 sweepId);

    /// @notice Takes the sweep's next jobs from job `firstJob` on, at most `maxCount`, at the
    /// sweep's price, and locks their stake (the stake-free limit applies per job). With no
    /// job left, or when the sweep's next job is no longer `firstJob` (another lot took it
    /// first), it emits `SweepClaimSkipped` and returns (0, 0): a worker gets only jobs whose
    /// specs it read, and a lost race costs no reverted transaction.
    function claimLot(uint256 sweepId, uint256 firstJob, uint256 maxCount)
        external
        returns (uint256 lotId, uint256 count);

    /// @notice The lot's worker submits one result CID and digest per job, within the run
    /// deadline, and settles its lots in `matured` whose challenge window has passed (others
    /// are skipped with `LotSettleSkipped`).
    function submitLot(
        uint256 lotId,
        string[] calldata resultCids,
        bytes32[] calldata digests,
        uint256[] calldata matured
    ) external returns (uint256 settled);

    /// @notice Anyone settles submitted lots whose challenge window has passed; others are
    /// skipped with `LotSettleSkipped`.
    function settleLots(uint256[] calldata lotIds) external returns (uint256 settled);

    /// @notice Anyone ends a lot nobody submitted by its run deadline.
    function expireLot(uint256 lotId) external;

    /// @notice Refunds the sweep's unclaimed jobs: the requester at any time (a cancel),
    /// anyone after the claim deadline.
    function refundSweep(uint256 sweepId) external;

    /// @notice Anyone, within the lot's challenge window, makes job `jobId` of a submitted
    /// lot an ordinary submitted job (so the dispute court can take it), given the lot's
    /// digests as submitted.
    function openLotJob(uint256 lotId, uint256 jobId, bytes32[] calldata digests) external;

    function getSweep(uint256 sweepId) external view returns (Sweep memory);

    function getLot(uint256 lotId) external view returns (Lot memory);

    /// @notice The challenge window and stake-free limit this code (the market's
    /// MarketCalls) was built with: the market checks they are its own when it is deployed.
    function builtFor() external view returns (uint256 challengeWindow, uint256 stakeFreeLimit);
}

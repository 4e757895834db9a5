// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title hepx job market
/// @notice A thin message bus with escrow: requesters post jobs (by the CID of their spec) with
/// ETH in escrow, workers claim them, run them off chain and submit the CID of the result; the
/// market pays the worker and refunds the requester. Every job ends settled, cancelled or
/// expired, and anyone may move an expired job on.
/// @dev CIDs travel in events, not storage: the contract never needs to read them back.
/// `postJob` is the fast path (claim mode, one replica, ETH, no stake, no allowlist);
/// `postJobWithTerms` adds auctions, k-of-n replication with commit-reveal, a minimum worker
/// stake (see IWorkerRegistry), an allowlist of workers and ERC-20 payment. docs/protocol.md
/// describes every state, deadline and who may call what.
interface IJobMarket {
    /// @notice Where a job is in its life. `None` is a job id that was never posted. Values
    /// after `Expired` belong to replicated jobs (appended so old decoders keep working).
    enum JobState {
        None,
        Open, // taking claims or bids until the match deadline
        Claimed, // one worker assigned, running until the run deadline
        Submitted, // result CID submitted, challenge window running
        Settled, // final: worker(s) paid, rest refunded
        Cancelled, // final: requester cancelled before any claim or bid
        Expired, // final: a deadline passed with nobody to pay; escrow refunded
        Committing, // replicas assigned; each commits keccak256(abi.encode(digest, salt))
        Revealing, // replicas reveal digest, salt and result CID
        NoQuorum, // final: no digest reached the quorum; escrow refunded
        Disputed, // a submitted result is being re-executed by a panel (see IDisputeCourt)
        Overturned // final: a dispute refuted the result; worker slashed, requester refunded
    }

    /// @notice How workers get a job.
    enum MatchMode {
        Claim, // one replica: the first valid claim wins; replicated: claims apply to a draw
        Auction // sealed by time, not by value: lowest bids when the bid window closes win
    }

    /// @notice How far one replica's worker got.
    enum AssignmentStatus {
        None,
        Bid, // holding a seat until matching closes: an auction's best bid, a draw's best key
        Assigned, // must commit before the commit deadline
        Committed, // must reveal before the reveal deadline
        Revealed, // waiting for settlement
        Paid, // in the quorum, paid its price
        Slashed, // no-show or minority: its locked stake was split among the quorum or burned
        Released // outbid, or revealed when no quorum formed: stake unlocked, nothing paid
    }

    /// @notice Why money moved, for `Payment`.
    enum PaymentReason {
        Escrow, // requester paid the job's max price in
        WorkerPayment, // worker credited its price on settlement
        Refund, // requester credited what the job did not spend
        Withdrawal, // an account's credit sent to it
        Slash, // a worker's slashed stake: split among the honest replicas, or burned (payee 0)
        StakeDeposit, // a worker bonded stake (register, addStake)
        StakeWithdrawal, // a worker's unbonded stake sent to it
        VerifierReward, // a dispute's majority verifier: its share of the bond and the slashes
        DisputeBond // a dispute's bond paid in, or credited back to the disputer
    }

    /// @notice Which way money moved relative to the market.
    enum PaymentDirection {
        In, // into the market's escrow
        Credit, // from escrow to an account's withdrawable credit
        Out // from the market to an account
    }

    /// @notice A job as `getJob` reports it (stored in one slot; see JobMarket).
    struct Job {
        address requester;
        JobState state;
        uint40 deadline; // the current phase's deadline: claim, run or challenge end
        uint32 runWindow; // seconds a worker has from its claim to submit; 0 once submitted
        address worker; // single-replica jobs, once a worker is assigned
        uint96 price; // that worker's ask; 0 before
        // What the market holds for the job now: the whole escrow while Open (and for
        // replicated jobs until they end), the worker's price once one worker is assigned
        // (the rest is refunded then), 0 once the job is final.
        uint96 escrow;
    }

    /// @notice What a requester asks of a job beyond its spec (input of `postJobWithTerms`).
    struct Terms {
        MatchMode mode;
        uint8 replicas; // n workers run the job (1..MAX_REPLICAS)
        uint8 quorum; // k equal digests settle it; 2k > n; 1 when replicas == 1
        address token; // ERC-20 paid in; address(0) = ETH (msg.value)
        uint256 maxPrice; // per replica; escrow = maxPrice * replicas
        uint256 minStake; // wei of stake each worker locks (0 = anyone, registered or not)
        uint256 matchWindow; // seconds from posting for claims or bids
        uint256 runWindow; // seconds from assignment to submit (n=1) or commit (n>1)
        uint256 revealWindow; // n>1: seconds after the commit phase to reveal; else 0
        bytes32 kind; // keccak256 of the spec's kind the worker must declare; 0 = any
        bytes32 allowlistRoot; // Merkle root of allowed workers; 0 = anyone
    }

    /// @notice A job's terms as stored (`getTerms`). Fast-path jobs report the defaults.
    struct JobTerms {
        MatchMode mode;
        uint8 replicas;
        uint8 quorum;
        uint8 assigned; // bids held (auction, Open) or workers assigned
        uint8 committed;
        uint8 revealed;
        uint32 revealWindow;
        address token;
        uint96 maxPrice;
        uint96 minStake;
        uint40 postedBlock; // stake bonded in it or later does not count in the draw
        bytes32 kind;
        bytes32 allowlistRoot;
        bytes32 drawSeed; // replicated jobs: set by the first claim in a block after posting
    }

    /// @notice One replica of a job (or one held bid of an auction).
    struct Assignment {
        address worker;
        uint88 price;
        AssignmentStatus status;
        bytes32 commitment;
        bytes32 digest;
        uint256 drawKey; // replicated jobs: the seat's key in the draw (drawKey), smaller wins
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

    /// @notice A worker claimed an open job at `price` (at most the max price); the rest of the
    /// escrow is credited back to the requester at once (a Payment with reason Refund).
    event JobClaimed(uint256 indexed jobId, address indexed worker, uint256 price, uint256 runDeadline);
    /// @notice A batch call of `caller` (claimJobs, submitResults, finalizeJobs) skipped job
    /// `jobId`, which was in `state` (for a claim, Open means its match deadline had passed;
    /// for a submission, Claimed means by another worker or past its run deadline; for a
    /// finalize, Submitted means its challenge window had not; None: no such job).
    event BatchItemSkipped(uint256 indexed jobId, address indexed caller, JobState state);

    /// @notice The worker submitted the CID of the job's result and its canonical digest (the
    /// job kind's digest of the result, which a dispute's verifiers recompute).
    event ResultSubmitted(
        uint256 indexed jobId,
        address indexed worker,
        string resultCid,
        bytes32 digest,
        uint256 challengeEnd
    );

    /// @notice The job was settled (accepted by its requester or finalized after the challenge
    /// window): `payment` credited to the worker. The requester's refund of the unspent escrow
    /// happened when the worker was assigned.
    event JobSettled(uint256 indexed jobId, address indexed worker, uint256 payment);

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

    /// @notice A job posted with `postJobWithTerms` (after its JobPosted, whose `maxPrice` is
    /// the whole escrow in `token` units and whose `claimDeadline` is the match deadline).
    event JobTermsSet(
        uint256 indexed jobId,
        MatchMode mode,
        uint256 replicas,
        uint256 quorum,
        address token,
        uint256 maxPrice,
        uint256 minStake,
        uint256 revealWindow,
        bytes32 kind,
        bytes32 allowlistRoot
    );

    /// @notice An auction bid is now among the best `replicas` bids.
    event BidPlaced(uint256 indexed jobId, address indexed worker, uint256 price);

    /// @notice A lower bid pushed this worker's bid out; its stake is unlocked.
    event BidOutbid(uint256 indexed jobId, address indexed worker);

    /// @notice A worker's claim on a replicated job holds a seat of its draw so far: its key
    /// is among the `replicas` smallest. Its stake for the job is locked.
    event ReplicaDrawn(uint256 indexed jobId, address indexed worker, uint256 price, uint256 key);

    /// @notice A smaller key took this worker's seat in a replicated job's draw; its stake is
    /// unlocked.
    event ReplicaDisplaced(uint256 indexed jobId, address indexed worker);

    /// @notice Matching closed on a replicated job: `workers` replicas must commit by
    /// `commitDeadline`, then reveal by `commitDeadline + revealWindow`.
    event CommitPhaseStarted(uint256 indexed jobId, uint256 workers, uint256 commitDeadline);

    /// @notice A replica committed `keccak256(abi.encode(digest, salt))`.
    event ResultCommitted(uint256 indexed jobId, address indexed worker, bytes32 commitment);

    /// @notice Every replica committed early: reveals are due by `revealDeadline`.
    event RevealPhaseStarted(uint256 indexed jobId, uint256 revealDeadline);

    /// @notice A replica revealed its digest and the CID of its result.
    event ResultRevealed(
        uint256 indexed jobId, address indexed worker, bytes32 digest, string resultCid
    );

    /// @notice A quorum agreed on `digest`: `paidWorkers` were paid `payment` in total, the
    /// requester was refunded `refund` (minority and no-shows were slashed).
    event ReplicasSettled(
        uint256 indexed jobId, bytes32 digest, uint256 paidWorkers, uint256 payment, uint256 refund
    );

    /// @notice No digest reached the quorum: the escrow is refunded (no-shows were slashed).
    event JobNoQuorum(uint256 indexed jobId, uint256 refund);

    /// @notice `disputer` disputed the job's result; the market's dispute court decides.
    event JobDisputed(uint256 indexed jobId, address indexed disputer);

    /// @notice A dispute refuted the job's result: the worker's stake was slashed and the
    /// requester refunded `refund` (the Payments say where the stake went).
    event JobOverturned(uint256 indexed jobId, uint256 refund);

    /// @notice `amount` of ERC-20 `token` sent to `account` (with a Payment Withdrawal event).
    event TokenWithdrawn(address indexed token, address indexed account, uint256 amount);

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
    /// @notice The call does not fit the job's matching mode (claim vs bid).
    error JobMarketWrongMode(uint256 jobId, MatchMode mode);
    /// @notice Replicas must be 1..max and the quorum k must satisfy 2k > n (k = 1 for n = 1).
    error JobMarketInvalidReplicas(uint256 replicas, uint256 quorum, uint256 max);
    /// @notice A price or stake does not fit in 88 bits.
    error JobMarketInvalidAmount(uint256 amount);
    /// @notice The caller is not on the job's allowlist (bad or missing Merkle proof).
    error JobMarketNotAllowed(uint256 jobId, address worker);
    /// @notice The worker already holds a bid or replica of this job.
    error JobMarketAlreadyAssigned(uint256 jobId, address worker);
    /// @notice The bid does not beat the worst of the bids held (`worst`).
    error JobMarketBidTooHigh(uint256 jobId, uint256 price, uint256 worst);
    /// @notice Fewer workers than the quorum: `expire` the job instead.
    error JobMarketNotEnoughWorkers(uint256 jobId, uint256 workers, uint256 quorum);
    /// @notice Enough bids or claims are in: call `award`, not `expire` (until `awardEnd`).
    error JobMarketAwardDue(uint256 jobId, uint256 awardEnd);
    /// @notice The caller holds no replica of this job in the state the call needs.
    error JobMarketNotAssigned(uint256 jobId, address caller);
    /// @notice The revealed digest and salt do not hash to the commitment.
    error JobMarketCommitmentMismatch(uint256 jobId, address worker);
    /// @notice Reveals open when every replica committed or the commit deadline passed.
    error JobMarketRevealNotOpen(uint256 jobId, uint256 commitDeadline);
    /// @notice ERC-20 jobs take no ETH.
    error JobMarketUnexpectedValue(uint256 value);
    /// @notice The token moved fewer units than the escrow (fee-on-transfer tokens refused).
    error JobMarketTokenShortfall(address token, uint256 expected, uint256 received);
    /// @notice All 2**32 - 1 account ids are taken: no new address can post, work or be paid.
    error JobMarketTooManyAccounts();
    /// @notice Only the market's dispute court may call this.
    error JobMarketOnlyCourt(address caller);
    /// @notice The MarketCalls named at deployment was built for another challenge window or
    /// stake-free limit than the market's.
    error JobMarketCallsMismatch(address marketCalls, uint256 challengeWindow, uint256 stakeFreeLimit);
    /// @notice Only single-replica ETH jobs can be disputed (replicated jobs have their quorum).
    error JobMarketNotDisputable(uint256 jobId);
    /// @notice A batch call's arrays differ in length.
    error JobMarketBatchMismatch(uint256 jobs, uint256 values);
    /// @notice A replicated job's draw is seeded by a block after its post: claim in a later one.
    error JobMarketSeedNotReady(uint256 jobId, uint256 postedBlock);
    /// @notice Stake bonded in the post's block or later does not count in the job's draw.
    error JobMarketStakeTooRecent(address worker, uint256 stakeSince, uint256 postedBlock);
    /// @notice Every seat of the draw is held by a key smaller than (or as small as) this one.
    error JobMarketNotDrawn(uint256 jobId, address worker, uint256 key, uint256 worstKey);

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

    /// @notice Post one fast-path job per spec CID, as {postJob} does, job i holding
    /// `escrows[i]` (a sweep in one transaction: one counter write, one requester lookup);
    /// `msg.value` must be their sum. Ids are consecutive from the returned one.
    /// @return firstJobId the id of the first job (the i-th is firstJobId + i).
    function postJobs(
        string[] calldata specCids,
        uint256[] calldata escrows,
        uint256 claimWindow,
        uint256 runWindow
    ) external payable returns (uint256 firstJobId);

    /// @notice Claim an open job at `price` (at most its max price); the first valid claim wins.
    /// The requester is credited the max price minus `price` at once.
    function claim(uint256 jobId, uint256 price) external;

    /// @notice Claim each of `jobIds` at `prices[i]` as {claim} does, in one transaction. A job
    /// that is no longer open (another worker was first, it ended, or a reorg orphaned its
    /// post) or past its match deadline is skipped with `BatchItemSkipped` instead of reverting
    /// the batch, so a lost race never costs a reverted transaction; a price above the max,
    /// a missing stake or kind, or an allowlist still revert (use claimWithProof for those).
    /// @return claimed how many of the jobs the caller now holds.
    function claimJobs(uint256[] calldata jobIds, uint256[] calldata prices)
        external
        returns (uint256 claimed);

    /// @notice The claiming worker submits the CID of the result and its canonical digest
    /// before the run deadline; the challenge window starts (see IDisputeCourt).
    function submitResult(uint256 jobId, string calldata resultCid, bytes32 digest) external;

    /// @notice Submit several of the caller's results in one transaction, as {submitResult}
    /// does, and settle its `matured` jobs (as {finalizeJobs} does: a worker's settlements ride
    /// on its next submission, no separate finalize needed). A job that is not (or no longer)
    /// the caller's claimed job within its run deadline is skipped with `BatchItemSkipped`;
    /// an empty result CID reverts the batch.
    /// @return submitted how many results this call submitted.
    /// @return settled how many of `matured` it settled.
    function submitResults(
        uint256[] calldata jobIds,
        string[] calldata resultCids,
        bytes32[] calldata digests,
        uint256[] calldata matured
    ) external returns (uint256 submitted, uint256 settled);

    /// @notice The requester accepts a submitted result: settles at once.
    function accept(uint256 jobId) external;

    /// @notice Anyone settles a submitted job once its challenge window has passed. For a
    /// replicated job: anyone tallies it once every replica revealed, the reveal deadline
    /// passed, or the commit deadline passed with fewer commits than the quorum (then the
    /// replicas that committed are released, not slashed: their reveal window never ran).
    function finalize(uint256 jobId) external;

    /// @notice Finalize each of `jobIds` whose single worker's result has passed its challenge
    /// window, in one transaction (the worker's settlements of a round, say). Any other job
    /// (not Submitted, still in its challenge window, replicated, disputed) is skipped with
    /// `BatchItemSkipped` instead of reverting the batch.
    /// @return settled how many of the jobs this call settled.
    function finalizeJobs(uint256[] calldata jobIds) external returns (uint256 settled);

    /// @notice The requester cancels a job nobody has claimed or bid on; the escrow is refunded.
    function cancel(uint256 jobId) external;

    /// @notice Anyone expires a job whose claim or run deadline passed; the escrow is refunded.
    /// Open: fewer than `quorum` claims or bids came in, or enough came in but nobody awarded
    /// them within a run window after the match deadline (they are released). Claimed: the
    /// worker missed its run deadline and its locked stake is slashed and burned.
    function expire(uint256 jobId) external;

    /// @notice Send the caller all its ETH credit (payments, refunds, slashed stakes).
    function withdraw() external;

    /// @notice Post a job with terms. ETH jobs send `maxPrice * replicas` as `msg.value`; ERC-20
    /// jobs approve that much first and send no ETH.
    /// @return jobId the new job's id.
    function postJobWithTerms(string calldata specCid, Terms calldata terms)
        external
        payable
        returns (uint256 jobId);

    /// @notice `claim` for jobs with an allowlist: `proof` shows the caller's leaf
    /// `keccak256(bytes.concat(keccak256(abi.encode(worker))))` is under the root.
    /// On a replicated job a claim applies to its draw (docs/protocol.md, "Draws"): registered
    /// workers with stake bonded before the post's block apply until the match deadline; the
    /// `replicas` smallest keys `drawKey(seed, worker, stake)` hold the seats (a smaller key
    /// displaces the largest; ties: the earlier keeps it); `award` assigns them.
    function claimWithProof(uint256 jobId, uint256 price, bytes32[] calldata proof) external;

    /// @notice Bid `price` (at most the max price) on an auction job before its match deadline.
    /// Auctions have one replica (replicated jobs are drawn). Prices start at 1 wei; the lowest
    /// bid is held (ties: earlier wins); an outbid worker is released.
    function bid(uint256 jobId, uint256 price, bytes32[] calldata proof) external;

    /// @notice Anyone closes matching after the match deadline when at least `quorum` bids or
    /// claims are in: one replica -> Claimed (the rest of the escrow refunded, as on a claim);
    /// replicated -> Committing.
    function award(uint256 jobId) external;

    /// @notice An assigned replica commits `commitmentOf(jobId, itself, digest, salt)` before
    /// the commit deadline.
    function commitResult(uint256 jobId, bytes32 commitment) external;

    /// @notice A committed replica reveals before the reveal deadline; reveals open once all
    /// replicas committed or the commit deadline passed.
    function revealResult(uint256 jobId, bytes32 digest, bytes32 salt, string calldata resultCid)
        external;

    /// @notice Send the caller all its credit in ERC-20 `token`.
    function withdrawToken(address token) external;

    /// @notice The job, its account ids resolved to addresses (state `None` for an unknown id).
    function getJob(uint256 jobId) external view returns (Job memory);

    /// @notice The job's terms (all zero for an unknown id). Fast-path jobs report the defaults
    /// and, while Open, their escrow as `maxPrice` (afterwards their JobPosted event has it).
    function getTerms(uint256 jobId) external view returns (JobTerms memory);

    /// @notice The job's held bids (Open auction) or replicas, in slot order.
    function getAssignments(uint256 jobId) external view returns (Assignment[] memory);

    /// @notice Units of ERC-20 `token` `account` can withdraw.
    function tokenWithdrawable(address token, address account) external view returns (uint256);

    /// @notice The commitment `worker` sends for job `jobId` of this market:
    /// `keccak256(abi.encode(block.chainid, address(this), jobId, worker, digest, salt))`.
    /// Bound to the chain, the market, the job and the worker, so a copied commitment opens
    /// for nobody but its author.
    function commitmentOf(uint256 jobId, address worker, bytes32 digest, bytes32 salt)
        external
        view
        returns (bytes32);

    /// @notice Wei of slashed stake that went to nobody (no honest party to pay): held by the
    /// market for ever, so that no one, least of all whoever triggered the slash, gains it.
    function burned() external view returns (uint256);

    /// @notice Wei `account` can withdraw.
    function withdrawable(address account) external view returns (uint256);

    /// @notice Number of jobs posted so far (the last job id).
    function jobCount() external view returns (uint256);

    /// @notice Seconds after a result's submission during which only the requester may settle.
    function challengeWindow() external view returns (uint256);

    /// @notice The highest price a worker may take a job (or a replica, or win a bid) at with
    /// no stake beyond the job's own `minStake`; above it the worker locks at least that price
    /// in stake, slashed (and burned) if it misses its deadline. Set at deployment: 0 on a
    /// public chain (every paid job is staked), higher on a devnet.
    function stakeFreeLimit() external view returns (uint256);

    /// @notice The stake a worker locks to take a job with `minStake` at `price`:
    /// `price > stakeFreeLimit() ? max(minStake, price) : minStake`.
    function stakeRequired(uint256 minStake, uint256 price) external view returns (uint256);

    /// @notice The request desk this market deployed (see IRequestDesk): jobs it posts are
    /// the requester's who signed them, not the desk's.
    function requestDesk() external view returns (address);

    // ---------------------------------------------------------------- dispute court hooks

    /// @notice The dispute court this market deployed (see IDisputeCourt); only it may call
    /// the hooks below.
    function disputeCourt() external view returns (address);

    /// @notice A dispute opens: job `jobId` must be Submitted within its challenge window;
    /// it becomes Disputed. Returns what the court needs of it.
    function openDispute(uint256 jobId, address disputer)
        external
        returns (
            address worker,
            address requester,
            uint256 price,
            uint256 stake,
            bytes32 kind,
            uint32 digestTag
        );

    /// @notice Locks `amount` of a verifier's stake for job `jobId` (it must have declared
    /// `kind`, 0 = any), or unlocks it (`lock` false: a better key took its seat).
    function lockVerifierStake(
        uint256 jobId,
        address verifier,
        uint256 amount,
        bytes32 kind,
        bool lock
    ) external;

    /// @notice Applies a verdict (msg.value is the bond). Upheld or without a majority
    /// (`refuted` false): the worker is paid and settled. Refuted: the worker's stake is
    /// slashed (half to the `majority`, half burned), the requester refunded, the job
    /// Overturned. The bond pays the majority when the worker was upheld, else it goes back to
    /// `disputer`; `slashed` verifiers lose `verifierStake` to the majority (burned if none);
    /// `majority` and `released` verifiers get theirs unlocked.
    function closeDispute(
        uint256 jobId,
        bool refuted,
        address disputer,
        address[] calldata majority,
        address[] calldata slashed,
        address[] calldata released,
        uint256 verifierStake
    ) external payable;
}

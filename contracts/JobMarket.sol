// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {DisputeCourt} from "./DisputeCourt.sol";
import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {IWorkerRegistry} from "./interfaces/IWorkerRegistry.sol";
import {RegistryCalls} from "./RegistryCalls.sol";
import {RequestDesk} from "./RequestDesk.sol";
import {tagOf} from "./libraries/DigestTag.sol";
import {drawKey} from "./libraries/DrawKey.sol";
import {WorkerRegistry} from "./WorkerRegistry.sol";

/// @title hepx job market: claim or auction, one replica or k-of-n, ETH or ERC-20
/// @notice See {IJobMarket} and docs/protocol.md. Money only leaves through the withdraw
/// calls; every other call moves escrow or stake into credits, so no payee can block a job.
/// @dev A job is one storage slot (`JobRecord`): its parties are account ids, not addresses,
/// and a single-replica job's unspent escrow is refunded when its worker is assigned, so the
/// amount field holds the escrow, then the price. An account id's slot also holds its ETH
/// credit, so crediting a party costs one slot write. Fast-path jobs (`postJob`) touch only
/// their record and their parties' accounts; `hasTerms` (in the record) says whether `_terms`
/// and the assignment slots are to be read at all.
contract JobMarket is WorkerRegistry, IJobMarket, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Longest claim, run, reveal or challenge window, in seconds.
    uint256 internal constant MAX_WINDOW = 365 days;
    /// @notice Most replicas (and held bids) a job may have; bounds every loop.
    uint256 internal constant MAX_REPLICAS = 8;

    /// @dev Storage form of {IJobMarket-Job}, one slot (248 bits).
    struct JobRecord {
        uint32 requester; // account id
        uint32 worker; // account id of a single-replica job's worker; 0 until assigned
        JobState state;
        uint40 deadline;
        // The run window until a single worker submits; then the tag of its result's digest
        // (tagOf), which a dispute needs and the run window no longer is.
        uint32 runWindowOrTag;
        bool hasTerms;
        // What the job holds: the whole escrow, until a single worker is assigned at its price
        // (the rest is refunded then); from that moment on the price.
        uint96 escrow;
    }

    /// @inheritdoc IJobMarket
    address public immutable disputeCourt;
    /// @inheritdoc IJobMarket
    address public immutable requestDesk;
    /// @notice The code the registry's calls run (in this contract's storage): see
    /// {RegistryCalls}.
    address public immutable registryCalls;

    uint256 private immutable _challengeWindow;
    uint256 private immutable _stakeFreeLimit;

    mapping(uint256 jobId => JobRecord) private _jobs;
    mapping(uint256 jobId => JobTerms) private _terms;
    mapping(uint256 jobId => mapping(uint256 index => Assignment)) private _slots;
    mapping(uint256 jobId => mapping(address worker => uint256 indexPlusOne)) private _slotOf;
    mapping(address token => mapping(address account => uint256)) private _tokenCredits;

    /// @inheritdoc IJobMarket
    uint256 public burned;

    /// @dev ETH credits of addresses that could not be given an account id (ids ran out), so
    /// that paying them never reverts and no job is frozen by it.
    mapping(address account => uint256) private _creditsWithoutId;

    /// @param challengeWindow_ seconds after a submission before anyone may finalize
    /// (1 to MAX_WINDOW, else JobMarketInvalidWindow); also the workers' unbond delay.
    /// @param stakeFreeLimit_ see {IJobMarket-stakeFreeLimit}.
    constructor(uint256 challengeWindow_, uint256 stakeFreeLimit_) {
        _checkWindow(challengeWindow_);
        _challengeWindow = challengeWindow_;
        _stakeFreeLimit = stakeFreeLimit_;
        disputeCourt = address(new DisputeCourt(challengeWindow_));
        requestDesk = address(new RequestDesk());
        registryCalls = address(new RegistryCalls(challengeWindow_));
    }

    modifier onlyCourt() {
        if (msg.sender != disputeCourt) revert JobMarketOnlyCourt(msg.sender);
        _;
    }

    // ---------------------------------------------------------------- registry calls

    // The registry's calls run RegistryCalls' code in this contract's storage: they are rare
    // (a worker's setup), and the market's own code is at EIP-170's size limit. The registry's
    // views are WorkerRegistry's own; its unbond delay is the challenge window.

    /// @inheritdoc IWorkerRegistry
    function register(bytes32[] calldata) external payable {
        _runRegistryCall();
    }

    /// @inheritdoc IWorkerRegistry
    function addStake() external payable {
        _runRegistryCall();
    }

    /// @inheritdoc IWorkerRegistry
    function setKinds(bytes32[] calldata, bool) external {
        _runRegistryCall();
    }

    /// @inheritdoc IWorkerRegistry
    function unbond(uint256) external {
        _runRegistryCall();
    }

    /// @inheritdoc IWorkerRegistry
    function withdrawStake() external {
        _runRegistryCall();
    }

    /// @inheritdoc IWorkerRegistry
    function unbondDelay() external view returns (uint256) {
        return _challengeWindow;
    }

    // ---------------------------------------------------------------- posting

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

        address requesterAddress = _requester();
        uint32 requester = _accountId(requesterAddress);
        jobId = _counters.nextJobId++;
        // Casts are safe: windows are capped at MAX_WINDOW and escrow was checked above.
        uint256 claimDeadline = block.timestamp + claimWindow;
        _jobs[jobId] = JobRecord(
            requester, 0, JobState.Open, uint40(claimDeadline), uint32(runWindow), false,
            uint96(msg.value)
        );
        emit JobPosted(jobId, requesterAddress, specCid, msg.value, claimDeadline, runWindow);
        emit Payment(
            jobId, requesterAddress, msg.value, PaymentReason.Escrow, PaymentDirection.In
        );
    }

    /// @inheritdoc IJobMarket
    function postJobWithTerms(string calldata specCid, Terms calldata terms)
        external
        payable
        nonReentrant
        returns (uint256 jobId)
    {
        if (bytes(specCid).length == 0) revert JobMarketEmptyCid();
        _checkWindow(terms.matchWindow);
        _checkWindow(terms.runWindow);
        uint256 n = terms.replicas;
        uint256 k = terms.quorum;
        // Replicas are drawn, not bid for: the lowest bids would be a Sybil cluster's.
        uint256 most = terms.mode == MatchMode.Auction ? 1 : MAX_REPLICAS;
        if (n == 0 || n > most || k > n || 2 * k <= n || (n == 1) != (k == 1)) {
            revert JobMarketInvalidReplicas(n, k, most);
        }
        if (n == 1) {
            if (terms.revealWindow != 0) revert JobMarketInvalidWindow(terms.revealWindow, 0);
        } else {
            _checkWindow(terms.revealWindow);
        }
        if (terms.maxPrice == 0 || terms.maxPrice > type(uint88).max) {
            revert JobMarketInvalidAmount(terms.maxPrice);
        }
        if (terms.minStake > type(uint96).max) revert JobMarketInvalidAmount(terms.minStake);
        uint256 escrow = terms.maxPrice * n; // < 2**91
        if (terms.token == address(0)) {
            if (msg.value != escrow) revert JobMarketInvalidEscrow(msg.value);
        } else {
            if (msg.value != 0) revert JobMarketUnexpectedValue(msg.value);
            _pullToken(IERC20(terms.token), escrow);
        }

        address requesterAddress = _requester();
        uint32 requester = _accountId(requesterAddress);
        jobId = _counters.nextJobId++;
        uint256 matchDeadline = block.timestamp + terms.matchWindow;
        _jobs[jobId] = JobRecord(
            requester, 0, JobState.Open, uint40(matchDeadline), uint32(terms.runWindow), true,
            uint96(escrow)
        );
        emit JobPosted(jobId, requesterAddress, specCid, escrow, matchDeadline, terms.runWindow);
        _storeTerms(jobId, terms);
        emit Payment(jobId, requesterAddress, escrow, PaymentReason.Escrow, PaymentDirection.In);
    }

    // ---------------------------------------------------------------- matching

    /// @inheritdoc IJobMarket
    function claim(uint256 jobId, uint256 price) external {
        _claim(jobId, _openJob(jobId), price);
    }

    /// @inheritdoc IJobMarket
    function claimJobs(uint256[] calldata jobIds, uint256[] calldata prices)
        external
        returns (uint256 claimed)
    {
        if (jobIds.length != prices.length) {
            revert JobMarketBatchMismatch(jobIds.length, prices.length);
        }
        for (uint256 i; i < jobIds.length; ++i) {
            uint256 jobId = jobIds[i];
            JobRecord storage job = _jobs[jobId];
            // Taken, ended or never posted (a reorg can orphan a post): what a lost race looks
            // like, so skipped; a price or stake the caller got wrong still reverts.
            if (job.state != JobState.Open || block.timestamp > job.deadline) {
                emit BatchItemSkipped(jobId, msg.sender, job.state);
                continue;
            }
            _claim(jobId, job, prices[i]);
            ++claimed;
        }
    }

    /// @inheritdoc IJobMarket
    function claimWithProof(uint256 jobId, uint256 price, bytes32[] calldata proof) external {
        JobRecord storage job = _openJob(jobId);
        if (!job.hasTerms) {
            _claimFast(jobId, job, price); // no allowlist here
            return;
        }
        _claimWithTerms(jobId, job, price, proof);
    }

    /// @inheritdoc IJobMarket
    function bid(uint256 jobId, uint256 price, bytes32[] calldata proof) external {
        JobRecord storage job = _openJob(jobId);
        if (!job.hasTerms) revert JobMarketWrongMode(jobId, MatchMode.Claim);
        JobTerms storage t = _terms[jobId];
        if (t.mode != MatchMode.Auction) revert JobMarketWrongMode(jobId, t.mode);
        // A zero bid could never be beaten (a new bid must be strictly lower): refused.
        if (price == 0) revert JobMarketInvalidAmount(0);
        _admit(jobId, t, price, proof);
        if (t.assigned != 0) {
            // One held bid (auctions have one replica): a strictly lower one replaces it, so
            // among equal prices the earlier bid stays.
            Assignment storage held = _slots[jobId][0];
            if (price >= held.price) revert JobMarketBidTooHigh(jobId, price, held.price);
            address loser = held.worker;
            delete _slotOf[jobId][loser];
            _unlockStake(jobId, loser, _stakeFor(t.minStake, held.price));
            emit BidOutbid(jobId, loser);
        }
        t.assigned = 1;
        _slots[jobId][0] = Assignment(msg.sender, uint88(price), AssignmentStatus.Bid, 0, 0, 0);
        _slotOf[jobId][msg.sender] = 1;
        emit BidPlaced(jobId, msg.sender, price);
    }

    /// @inheritdoc IJobMarket
    function award(uint256 jobId) external {
        JobRecord storage job = _existingJob(jobId);
        _checkState(jobId, job.state, JobState.Open);
        JobTerms storage t = _terms[jobId];
        if (!job.hasTerms || (t.mode == MatchMode.Claim && t.replicas == 1)) {
            revert JobMarketWrongMode(jobId, MatchMode.Claim);
        }
        if (block.timestamp <= job.deadline) {
            revert JobMarketDeadlineNotReached(jobId, job.deadline);
        }
        uint256 count = t.assigned;
        if (count < t.quorum) revert JobMarketNotEnoughWorkers(jobId, count, t.quorum);

        if (t.replicas == 1) {
            Assignment storage winner = _slots[jobId][0];
            winner.status = AssignmentStatus.Assigned;
            _assignSingle(jobId, job, winner.worker, winner.price, t.token);
            return;
        }
        for (uint256 i; i < count; ++i) {
            _slots[jobId][i].status = AssignmentStatus.Assigned;
        }
        _startCommitPhase(jobId, job, count);
    }

    // ---------------------------------------------------------------- results

    /// @inheritdoc IJobMarket
    function submitResult(uint256 jobId, string calldata resultCid, bytes32 digest) external {
        JobRecord storage job = _existingJob(jobId);
        if (msg.sender != _accounts[job.worker].holder) {
            revert JobMarketNotWorker(jobId, msg.sender);
        }
        _checkState(jobId, job.state, JobState.Claimed);
        if (block.timestamp > job.deadline) revert JobMarketDeadlinePassed(jobId, job.deadline);
        if (bytes(resultCid).length == 0) revert JobMarketEmptyCid();

        uint256 challengeEnd = block.timestamp + _challengeWindow;
        job.state = JobState.Submitted;
        job.deadline = uint40(challengeEnd);
        job.runWindowOrTag = tagOf(digest);
        emit ResultSubmitted(jobId, msg.sender, resultCid, digest, challengeEnd);
    }

    /// @inheritdoc IJobMarket
    function commitResult(uint256 jobId, bytes32 commitment) external {
        JobRecord storage job = _existingJob(jobId);
        _checkState(jobId, job.state, JobState.Committing);
        if (block.timestamp > job.deadline) revert JobMarketDeadlinePassed(jobId, job.deadline);
        Assignment storage slot = _slotOfCaller(jobId, AssignmentStatus.Assigned);

        slot.commitment = commitment;
        slot.status = AssignmentStatus.Committed;
        JobTerms storage t = _terms[jobId];
        uint256 committed = t.committed + 1;
        t.committed = uint8(committed);
        emit ResultCommitted(jobId, msg.sender, commitment);
        if (committed == t.assigned) {
            uint256 revealDeadline = block.timestamp + t.revealWindow;
            job.state = JobState.Revealing;
            job.deadline = uint40(revealDeadline);
            emit RevealPhaseStarted(jobId, revealDeadline);
        }
    }

    /// @inheritdoc IJobMarket
    function revealResult(uint256 jobId, bytes32 digest, bytes32 salt, string calldata resultCid)
        external
    {
        JobRecord storage job = _existingJob(jobId);
        JobTerms storage t = _terms[jobId];
        if (job.state == JobState.Committing) {
            // Reveals open at the commit deadline even if some replicas never committed.
            if (block.timestamp <= job.deadline) {
                revert JobMarketRevealNotOpen(jobId, job.deadline);
            }
            uint256 revealDeadline = job.deadline + t.revealWindow;
            job.state = JobState.Revealing;
            job.deadline = uint40(revealDeadline);
            emit RevealPhaseStarted(jobId, revealDeadline);
        }
        _checkState(jobId, job.state, JobState.Revealing);
        if (block.timestamp > job.deadline) revert JobMarketDeadlinePassed(jobId, job.deadline);
        if (bytes(resultCid).length == 0) revert JobMarketEmptyCid();
        Assignment storage slot = _slotOfCaller(jobId, AssignmentStatus.Committed);
        if (_commitment(jobId, msg.sender, digest, salt) != slot.commitment) {
            revert JobMarketCommitmentMismatch(jobId, msg.sender);
        }

        slot.digest = digest;
        slot.status = AssignmentStatus.Revealed;
        t.revealed += 1;
        emit ResultRevealed(jobId, msg.sender, digest, resultCid);
    }

    // ---------------------------------------------------------------- settlement

    /// @inheritdoc IJobMarket
    function accept(uint256 jobId) external {
        JobRecord storage job = _existingJob(jobId);
        if (msg.sender != _accounts[job.requester].holder) {
            revert JobMarketNotRequester(jobId, msg.sender);
        }
        _checkState(jobId, job.state, JobState.Submitted);
        _settle(jobId, job);
    }

    /// @inheritdoc IJobMarket
    function finalize(uint256 jobId) external {
        JobRecord storage job = _existingJob(jobId);
        JobState state = job.state;
        uint256 deadline = job.deadline;
        if (state == JobState.Submitted) {
            if (block.timestamp <= deadline) revert JobMarketDeadlineNotReached(jobId, deadline);
            _settle(jobId, job);
            return;
        }
        JobTerms storage t = _terms[jobId];
        // Past the commit deadline with the quorum out of reach, the job ends at once; the
        // replicas that committed never had their reveal window, so they are released.
        bool revealWindowRan = true;
        if (state == JobState.Committing) {
            if (t.committed >= t.quorum) deadline += t.revealWindow;
            else revealWindowRan = false;
        } else if (state == JobState.Revealing) {
            if (t.revealed == t.assigned) deadline = 0;
        } else {
            revert JobMarketWrongState(jobId, state);
        }
        if (block.timestamp <= deadline) revert JobMarketDeadlineNotReached(jobId, deadline);
        _tally(jobId, job, t, revealWindowRan);
    }

    /// @inheritdoc IJobMarket
    function finalizeJobs(uint256[] calldata jobIds) external returns (uint256 settled) {
        for (uint256 i; i < jobIds.length; ++i) {
            uint256 jobId = jobIds[i];
            JobRecord storage job = _jobs[jobId];
            if (job.state != JobState.Submitted || block.timestamp <= job.deadline) {
                emit BatchItemSkipped(jobId, msg.sender, job.state);
                continue;
            }
            _settle(jobId, job);
            ++settled;
        }
    }

    /// @inheritdoc IJobMarket
    function cancel(uint256 jobId) external {
        JobRecord storage job = _existingJob(jobId);
        if (msg.sender != _accounts[job.requester].holder) {
            revert JobMarketNotRequester(jobId, msg.sender);
        }
        _checkState(jobId, job.state, JobState.Open);
        if (job.hasTerms && _terms[jobId].assigned != 0) {
            revert JobMarketAlreadyAssigned(jobId, _slots[jobId][0].worker);
        }

        job.state = JobState.Cancelled;
        uint256 refund = _refundEscrow(jobId, job);
        emit JobCancelled(jobId, refund);
    }

    /// @inheritdoc IJobMarket
    function expire(uint256 jobId) external {
        JobRecord storage job = _existingJob(jobId);
        JobState fromState = job.state;
        if (fromState != JobState.Open && fromState != JobState.Claimed) {
            revert JobMarketWrongState(jobId, fromState);
        }
        if (block.timestamp <= job.deadline) {
            revert JobMarketDeadlineNotReached(jobId, job.deadline);
        }

        uint256 minStake = job.hasTerms ? _terms[jobId].minStake : 0;
        if (fromState == JobState.Open && job.hasTerms) {
            JobTerms storage t = _terms[jobId];
            uint256 count = t.assigned;
            // Enough bids are in: award is due until a run window past the match deadline;
            // after that nobody can keep the held bidders' stakes locked by not awarding.
            uint256 awardEnd = job.deadline + job.runWindowOrTag;
            if (count != 0 && count >= t.quorum && block.timestamp <= awardEnd) {
                revert JobMarketAwardDue(jobId, awardEnd);
            }
            // Too few claims or bids, or an award nobody made: release them.
            for (uint256 i; i < count; ++i) {
                Assignment storage slot = _slots[jobId][i];
                slot.status = AssignmentStatus.Released;
                _unlockStake(jobId, slot.worker, _stakeFor(minStake, slot.price));
            }
        } else if (fromState == JobState.Claimed) {
            // Nobody honest to pay: burned, so the requester (who may call this) gains
            // nothing from a worker's missed deadline it might have caused.
            uint256 stake = _stakeFor(minStake, job.escrow); // the escrow is the price now
            _burn(jobId, _slashStake(jobId, _accounts[job.worker].holder, stake));
        }
        job.state = JobState.Expired;
        uint256 refund = _refundEscrow(jobId, job);
        emit JobExpired(jobId, fromState, refund);
    }

    // ---------------------------------------------------------------- withdrawals

    /// @inheritdoc IJobMarket
    function withdraw() external {
        uint32 id = _accountIds[msg.sender];
        Account storage account = _accounts[id];
        uint256 withoutId = id == 0 ? _creditsWithoutId[msg.sender] : 0;
        uint256 amount = account.credit + withoutId;
        if (amount == 0) revert JobMarketNothingToWithdraw(msg.sender);

        if (id != 0) account.credit = 0;
        if (withoutId != 0) _creditsWithoutId[msg.sender] = 0;
        emit Payment(0, msg.sender, amount, PaymentReason.Withdrawal, PaymentDirection.Out);
        (bool ok,) = payable(msg.sender).call{value: amount}("");
        if (!ok) revert JobMarketTransferFailed(msg.sender, amount);
    }

    /// @inheritdoc IJobMarket
    function withdrawToken(address token) external nonReentrant {
        uint256 amount = _tokenCredits[token][msg.sender];
        if (amount == 0) revert JobMarketNothingToWithdraw(msg.sender);

        _tokenCredits[token][msg.sender] = 0;
        emit Payment(0, msg.sender, amount, PaymentReason.Withdrawal, PaymentDirection.Out);
        emit TokenWithdrawn(token, msg.sender, amount);
        IERC20(token).safeTransfer(msg.sender, amount);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IJobMarket
    function getJob(uint256 jobId) external view returns (Job memory) {
        JobRecord storage job = _jobs[jobId];
        JobState state = job.state;
        bool isFinal = state == JobState.Settled || state == JobState.Cancelled
            || state == JobState.Expired || state == JobState.NoQuorum
            || state == JobState.Overturned;
        // A single worker's submission replaced the run window with its digest's tag.
        bool submitted = job.worker != 0 && state != JobState.Claimed
            && state != JobState.Expired;
        return Job(
            _accounts[job.requester].holder,
            state,
            job.deadline,
            submitted ? 0 : job.runWindowOrTag,
            _accounts[job.worker].holder,
            job.worker == 0 ? 0 : job.escrow,
            isFinal ? 0 : job.escrow
        );
    }

    /// @inheritdoc IJobMarket
    function getTerms(uint256 jobId) external view returns (JobTerms memory terms) {
        JobRecord storage job = _jobs[jobId];
        if (job.hasTerms) return _terms[jobId];
        if (job.state == JobState.None) return terms;
        terms.replicas = 1;
        terms.quorum = 1;
        if (job.state == JobState.Open) terms.maxPrice = job.escrow;
    }

    /// @inheritdoc IJobMarket
    function getAssignments(uint256 jobId) external view returns (Assignment[] memory slots) {
        uint256 count = _terms[jobId].assigned;
        slots = new Assignment[](count);
        for (uint256 i; i < count; ++i) {
            slots[i] = _slots[jobId][i];
        }
    }

    /// @inheritdoc IJobMarket
    function withdrawable(address account) external view returns (uint256) {
        uint32 id = _accountIds[account];
        return id == 0 ? _creditsWithoutId[account] : _accounts[id].credit;
    }

    /// @inheritdoc IJobMarket
    function tokenWithdrawable(address token, address account) external view returns (uint256) {
        return _tokenCredits[token][account];
    }

    /// @inheritdoc IJobMarket
    function jobCount() external view returns (uint256) {
        return _counters.nextJobId - 1;
    }

    /// @inheritdoc IJobMarket
    function challengeWindow() external view returns (uint256) {
        return _challengeWindow;
    }

    /// @inheritdoc IJobMarket
    function stakeFreeLimit() external view returns (uint256) {
        return _stakeFreeLimit;
    }

    /// @inheritdoc IJobMarket
    function stakeRequired(uint256 minStake, uint256 price) external view returns (uint256) {
        return _stakeFor(minStake, price);
    }

    /// @inheritdoc IJobMarket
    function commitmentOf(uint256 jobId, address worker, bytes32 digest, bytes32 salt)
        external
        view
        returns (bytes32)
    {
        return _commitment(jobId, worker, digest, salt);
    }

    // ---------------------------------------------------------------- dispute court hooks

    /// @inheritdoc IJobMarket
    function openDispute(uint256 jobId, address disputer)
        external
        onlyCourt
        returns (
            address worker,
            address requester,
            uint256 price,
            uint256 stake,
            bytes32 kind,
            uint32 digestTag
        )
    {
        JobRecord storage job = _existingJob(jobId);
        _checkState(jobId, job.state, JobState.Submitted);
        if (block.timestamp > job.deadline) revert JobMarketDeadlinePassed(jobId, job.deadline);
        uint256 minStake;
        if (job.hasTerms) {
            JobTerms storage t = _terms[jobId];
            if (t.token != address(0)) revert JobMarketNotDisputable(jobId);
            (minStake, kind) = (t.minStake, t.kind);
        }
        job.state = JobState.Disputed;
        emit JobDisputed(jobId, disputer);
        price = job.escrow;
        return (
            _accounts[job.worker].holder,
            _accounts[job.requester].holder,
            price,
            _stakeFor(minStake, price),
            kind,
            job.runWindowOrTag
        );
    }

    /// @inheritdoc IJobMarket
    function lockVerifierStake(
        uint256 jobId,
        address verifier,
        uint256 amount,
        bytes32 kind,
        bool lock
    ) external onlyCourt {
        if (lock) _lockStake(verifier, amount, kind);
        else _unlockStake(jobId, verifier, amount);
    }

    /// @inheritdoc IJobMarket
    function closeDispute(
        uint256 jobId,
        bool refuted,
        address disputer,
        address[] calldata majority,
        address[] calldata slashed,
        address[] calldata released,
        uint256 verifierStake
    ) external payable onlyCourt {
        JobRecord storage job = _existingJob(jobId);
        _checkState(jobId, job.state, JobState.Disputed);
        if (msg.value != 0) {
            // The court held the bond until now, so the market's books stay whole meanwhile.
            emit Payment(jobId, disputer, msg.value, PaymentReason.DisputeBond, PaymentDirection.In);
        }
        uint256 pool = _closeDisputedJob(jobId, job, refuted);
        // The bond pays the verifiers who upheld honest work; otherwise it goes back.
        if (!refuted && majority.length != 0) {
            pool += msg.value;
        } else if (msg.value != 0) {
            _creditTo(jobId, address(0), disputer, msg.value, PaymentReason.DisputeBond);
        }
        _payVerifiers(jobId, pool, majority, slashed, released, verifierStake);
    }

    // ---------------------------------------------------------------- internals

    /// @dev Apart from postJobWithTerms only to keep its stack shallow. Casts were checked there.
    function _storeTerms(uint256 jobId, Terms calldata terms) private {
        JobTerms storage t = _terms[jobId];
        t.mode = terms.mode;
        t.replicas = terms.replicas;
        t.quorum = terms.quorum;
        t.revealWindow = uint32(terms.revealWindow);
        t.token = terms.token;
        t.maxPrice = uint96(terms.maxPrice);
        t.minStake = uint96(terms.minStake);
        t.postedBlock = uint40(block.number);
        if (terms.kind != bytes32(0)) t.kind = terms.kind;
        if (terms.allowlistRoot != bytes32(0)) t.allowlistRoot = terms.allowlistRoot;
        emit JobTermsSet(
            jobId,
            terms.mode,
            terms.replicas,
            terms.quorum,
            terms.token,
            terms.maxPrice,
            terms.minStake,
            terms.revealWindow,
            terms.kind,
            terms.allowlistRoot
        );
    }

    function _claimWithTerms(
        uint256 jobId,
        JobRecord storage job,
        uint256 price,
        bytes32[] memory proof
    ) private {
        JobTerms storage t = _terms[jobId];
        if (t.mode != MatchMode.Claim) revert JobMarketWrongMode(jobId, t.mode);
        _admit(jobId, t, price, proof);
        if (t.replicas == 1) {
            _assignSingle(jobId, job, msg.sender, price, t.token);
            return;
        }
        _draw(jobId, t, price);
    }

    /// @dev A replicated job's seats go to the `replicas` smallest draw keys among the claims
    /// (a stake-weighted sample: docs/protocol.md, "Draws"), not to the first claims, which
    /// a Sybil cluster would win by being fast. `award` assigns them after the match deadline.
    function _draw(uint256 jobId, JobTerms storage t, uint256 price) private {
        Worker storage w = _workers[msg.sender];
        uint256 posted = t.postedBlock;
        // Stake moved in once the job (and soon the seed) was known could be aimed at it.
        if (w.stakeSince >= posted) revert JobMarketStakeTooRecent(msg.sender, w.stakeSince, posted);
        if (w.stake == 0) revert RegistryInsufficientStake(msg.sender, 0, 1);
        bytes32 seed = t.drawSeed;
        if (seed == bytes32(0)) {
            // prevrandao of a block after the post: unknown when the job was posted.
            if (block.number <= posted) revert JobMarketSeedNotReady(jobId, posted);
            seed = keccak256(abi.encode(jobId, block.prevrandao));
            t.drawSeed = seed;
        }
        uint256 key = drawKey(seed, msg.sender, w.stake);

        uint256 index = t.assigned;
        if (index < t.replicas) {
            t.assigned = uint8(index + 1);
        } else {
            // Full: a smaller key takes the largest one's seat (ties: the earlier keeps it).
            uint256 worst;
            for (uint256 i = 1; i < index; ++i) {
                if (_slots[jobId][i].drawKey > _slots[jobId][worst].drawKey) worst = i;
            }
            Assignment storage out = _slots[jobId][worst];
            if (key >= out.drawKey) revert JobMarketNotDrawn(jobId, msg.sender, key, out.drawKey);
            address displaced = out.worker;
            delete _slotOf[jobId][displaced];
            _unlockStake(jobId, displaced, _stakeFor(t.minStake, out.price));
            emit ReplicaDisplaced(jobId, displaced);
            index = worst;
        }
        _slots[jobId][index] = Assignment(msg.sender, uint88(price), AssignmentStatus.Bid, 0, 0, key);
        _slotOf[jobId][msg.sender] = index + 1;
        emit ReplicaDrawn(jobId, msg.sender, price, key);
    }

    function _claim(uint256 jobId, JobRecord storage job, uint256 price) private {
        if (job.hasTerms) _claimWithTerms(jobId, job, price, new bytes32[](0));
        else _claimFast(jobId, job, price);
    }

    /// @dev A fast-path claim: no terms, so only the stake-free limit can ask for a stake.
    function _claimFast(uint256 jobId, JobRecord storage job, uint256 price) private {
        if (price > job.escrow) revert JobMarketPriceAboveMax(jobId, price, job.escrow);
        _lockStake(msg.sender, _stakeFor(0, price), bytes32(0));
        _assignSingle(jobId, job, msg.sender, price, address(0));
    }

    /// @dev The stake taking a job with `minStake` at `price` locks (see stakeRequired).
    function _stakeFor(uint256 minStake, uint256 price) private view returns (uint256) {
        return price > _stakeFreeLimit && price > minStake ? price : minStake;
    }

    /// @dev Checks a worker may take (a replica of) the job at `price`, and locks its stake.
    function _admit(uint256 jobId, JobTerms storage t, uint256 price, bytes32[] memory proof)
        private
    {
        if (price > t.maxPrice) revert JobMarketPriceAboveMax(jobId, price, t.maxPrice);
        bytes32 root = t.allowlistRoot;
        if (root != bytes32(0)) {
            bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(msg.sender))));
            if (!MerkleProof.verify(proof, root, leaf)) {
                revert JobMarketNotAllowed(jobId, msg.sender);
            }
        }
        if (_slotOf[jobId][msg.sender] != 0) revert JobMarketAlreadyAssigned(jobId, msg.sender);
        _lockStake(msg.sender, _stakeFor(t.minStake, price), t.kind);
    }

    /// @dev Assigns the job's one worker at `price` and refunds the rest of the escrow now.
    function _assignSingle(
        uint256 jobId,
        JobRecord storage job,
        address worker,
        uint256 price,
        address token
    ) private {
        uint256 escrow = job.escrow;
        uint256 runDeadline = block.timestamp + job.runWindowOrTag;
        job.state = JobState.Claimed;
        job.deadline = uint40(runDeadline);
        job.worker = _accountId(worker);
        job.escrow = uint96(price); // <= escrow, a uint96
        emit JobClaimed(jobId, worker, price, runDeadline);
        if (price < escrow) {
            _credit(jobId, token, job.requester, escrow - price, PaymentReason.Refund);
        }
    }

    function _startCommitPhase(uint256 jobId, JobRecord storage job, uint256 workers) private {
        uint256 commitDeadline = block.timestamp + job.runWindowOrTag;
        job.state = JobState.Committing;
        job.deadline = uint40(commitDeadline);
        emit CommitPhaseStarted(jobId, workers, commitDeadline);
    }

    /// @dev Pays the worker its price (the rest was refunded when it was assigned).
    function _settle(uint256 jobId, JobRecord storage job) private {
        job.state = JobState.Settled;
        uint256 payment = job.escrow;
        address token;
        uint256 minStake;
        if (job.hasTerms) {
            JobTerms storage t = _terms[jobId];
            (token, minStake) = (t.token, t.minStake);
        }

        address worker = _credit(jobId, token, job.worker, payment, PaymentReason.WorkerPayment);
        _unlockStake(jobId, worker, _stakeFor(minStake, payment));
        emit JobSettled(jobId, worker, payment);
    }

    /// @dev A disputed job's end: the worker paid (upheld, or no majority) or slashed and the
    /// requester refunded (refuted). Returns the half of the slash the verifiers share.
    function _closeDisputedJob(uint256 jobId, JobRecord storage job, bool refuted)
        private
        returns (uint256 verifiersShare)
    {
        if (!refuted) {
            _settle(jobId, job);
            return 0;
        }
        uint256 price = job.escrow;
        uint256 stake = _stakeFor(job.hasTerms ? _terms[jobId].minStake : 0, price);
        job.state = JobState.Overturned;
        uint256 taken = _slashStake(jobId, _accounts[job.worker].holder, stake);
        verifiersShare = taken / 2;
        _burn(jobId, taken - verifiersShare);
        _credit(jobId, address(0), job.requester, price, PaymentReason.Refund);
        emit JobOverturned(jobId, price);
    }

    /// @dev The panel's side of a verdict: the slashed verifiers' stakes join `pool`, which is
    /// split evenly among the majority (the remainder, or all with no majority, burned).
    function _payVerifiers(
        uint256 jobId,
        uint256 pool,
        address[] calldata majority,
        address[] calldata slashed,
        address[] calldata released,
        uint256 verifierStake
    ) private {
        for (uint256 i; i < slashed.length; ++i) {
            pool += _slashStake(jobId, slashed[i], verifierStake);
        }
        for (uint256 i; i < released.length; ++i) {
            _unlockStake(jobId, released[i], verifierStake);
        }
        uint256 share = majority.length == 0 ? 0 : pool / majority.length;
        for (uint256 i; i < majority.length; ++i) {
            _unlockStake(jobId, majority[i], verifierStake);
            if (share != 0) {
                _creditTo(jobId, address(0), majority[i], share, PaymentReason.VerifierReward);
            }
        }
        _burn(jobId, pool - share * majority.length);
    }

    /// @dev Replicated jobs: pays the replicas that revealed the quorum digest, slashes the
    /// minority and the no-shows (committers too, but only once their reveal window ran) and
    /// splits the slashed stake among the paid replicas (none: burned); refunds the rest.
    /// Loops are bounded by MAX_REPLICAS.
    function _tally(uint256 jobId, JobRecord storage job, JobTerms storage t, bool revealWindowRan)
        private
    {
        uint256 count = t.assigned;
        bool agreed;
        bytes32 winner;
        for (uint256 i; i < count && !agreed; ++i) {
            Assignment storage a = _slots[jobId][i];
            if (a.status != AssignmentStatus.Revealed) continue;
            uint256 votes;
            for (uint256 j; j < count; ++j) {
                Assignment storage b = _slots[jobId][j];
                if (b.status == AssignmentStatus.Revealed && b.digest == a.digest) ++votes;
            }
            if (votes >= t.quorum) (agreed, winner) = (true, a.digest);
        }

        job.state = agreed ? JobState.Settled : JobState.NoQuorum;
        (uint256 paid, uint256 paidWorkers, uint256 slashed) =
            _payReplicas(jobId, t, agreed, winner, revealWindowRan);
        if (slashed > 0) _shareSlash(jobId, slashed, paidWorkers);
        uint256 refund = job.escrow - paid;
        if (refund > 0) _credit(jobId, t.token, job.requester, refund, PaymentReason.Refund);
        if (agreed) {
            emit ReplicasSettled(jobId, winner, paidWorkers, paid, refund);
        } else {
            emit JobNoQuorum(jobId, refund);
        }
    }

    /// @dev The tally's verdict on each replica: paid (in the quorum), released (revealed
    /// without a quorum, or committed before its reveal window could run) or slashed.
    function _payReplicas(
        uint256 jobId,
        JobTerms storage t,
        bool agreed,
        bytes32 winner,
        bool revealWindowRan
    ) private returns (uint256 paid, uint256 paidWorkers, uint256 slashed) {
        uint256 count = t.assigned;
        uint256 minStake = t.minStake;
        for (uint256 i; i < count; ++i) {
            Assignment storage a = _slots[jobId][i];
            AssignmentStatus status = a.status;
            bool revealed = status == AssignmentStatus.Revealed;
            if (agreed && revealed && a.digest == winner) {
                a.status = AssignmentStatus.Paid;
                _unlockStake(jobId, a.worker, _stakeFor(minStake, a.price));
                _creditTo(jobId, t.token, a.worker, a.price, PaymentReason.WorkerPayment);
                paid += a.price;
                ++paidWorkers;
            } else if (
                (revealed && !agreed)
                    || (status == AssignmentStatus.Committed && !revealWindowRan)
            ) {
                a.status = AssignmentStatus.Released;
                _unlockStake(jobId, a.worker, _stakeFor(minStake, a.price));
            } else {
                a.status = AssignmentStatus.Slashed;
                slashed += _slashStake(jobId, a.worker, _stakeFor(minStake, a.price));
            }
        }
    }

    /// @dev Splits `amount` of slashed stake (ETH) evenly among the job's paid replicas; the
    /// remainder of the division, or all of it when nobody was paid, is burned.
    function _shareSlash(uint256 jobId, uint256 amount, uint256 paidWorkers) private {
        uint256 share = paidWorkers == 0 ? 0 : amount / paidWorkers;
        if (share > 0) {
            uint256 count = _terms[jobId].assigned;
            for (uint256 i; i < count; ++i) {
                Assignment storage a = _slots[jobId][i];
                if (a.status == AssignmentStatus.Paid) {
                    _creditEth(jobId, a.worker, share, PaymentReason.Slash);
                }
            }
        }
        _burn(jobId, amount - share * paidWorkers);
    }

    /// @dev Takes `amount` wei of slashed stake out of the books for ever.
    function _burn(uint256 jobId, uint256 amount) private {
        if (amount == 0) return;
        burned += amount;
        emit Payment(jobId, address(0), amount, PaymentReason.Slash, PaymentDirection.Out);
    }

    function _commitment(uint256 jobId, address worker, bytes32 digest, bytes32 salt)
        private
        view
        returns (bytes32)
    {
        return keccak256(abi.encode(block.chainid, address(this), jobId, worker, digest, salt));
    }

    /// @dev Credits the whole escrow back to the requester; returns it.
    function _refundEscrow(uint256 jobId, JobRecord storage job) private returns (uint256 refund) {
        refund = job.escrow;
        address token = job.hasTerms ? _terms[jobId].token : address(0);
        _credit(jobId, token, job.requester, refund, PaymentReason.Refund);
    }

    /// @dev Credits `amount` of `token` (0 = ETH) to account `id`; returns its address.
    function _credit(
        uint256 jobId,
        address token,
        uint256 id,
        uint256 amount,
        PaymentReason reason
    ) private returns (address account) {
        Account storage credited = _accounts[id];
        account = credited.holder;
        if (token == address(0)) {
            credited.credit += uint96(amount); // amount <= an escrow or a stake, both uint96
        } else {
            _tokenCredits[token][account] += amount;
        }
        emit Payment(jobId, account, amount, reason, PaymentDirection.Credit);
    }

    function _creditEth(uint256 jobId, address account, uint256 amount, PaymentReason reason)
        private
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
        PaymentReason reason
    ) private {
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
        emit Payment(jobId, account, amount, reason, PaymentDirection.Credit);
    }

    /// @dev Runs this call's data in RegistryCalls' code and ends the call with its answer
    /// (returned or reverted as is).
    function _runRegistryCall() private {
        address code = registryCalls;
        assembly {
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), code, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            if iszero(ok) { revert(0, returndatasize()) }
            return(0, returndatasize())
        }
    }

    /// @dev Takes `amount` of `token` from the caller; refuses tokens that deliver less.
    function _pullToken(IERC20 token, uint256 amount) private {
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != amount) {
            revert JobMarketTokenShortfall(address(token), amount, received);
        }
    }

    /// @dev Who posts: the caller, or for a call from the request desk the requester whose
    /// signature the desk checked, which it appends to the call data (ERC-2771's convention).
    function _requester() private view returns (address requester) {
        if (msg.sender != requestDesk) return msg.sender;
        assembly ("memory-safe") {
            requester := shr(96, calldataload(sub(calldatasize(), 20)))
        }
    }

    function _openJob(uint256 jobId) private view returns (JobRecord storage job) {
        job = _existingJob(jobId);
        _checkState(jobId, job.state, JobState.Open);
        if (block.timestamp > job.deadline) revert JobMarketDeadlinePassed(jobId, job.deadline);
    }

    function _slotOfCaller(uint256 jobId, AssignmentStatus expected)
        private
        view
        returns (Assignment storage slot)
    {
        uint256 indexPlusOne = _slotOf[jobId][msg.sender];
        if (indexPlusOne == 0) revert JobMarketNotAssigned(jobId, msg.sender);
        slot = _slots[jobId][indexPlusOne - 1];
        if (slot.status != expected) revert JobMarketNotAssigned(jobId, msg.sender);
    }

    function _existingJob(uint256 jobId) private view returns (JobRecord storage job) {
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

// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {DisputeCourt} from "./DisputeCourt.sol";
import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {ISweepCalls} from "./interfaces/ISweepCalls.sol";
import {IWorkerRegistry} from "./interfaces/IWorkerRegistry.sol";
import {MarketBook} from "./MarketBook.sol";
import {RequestDesk} from "./RequestDesk.sol";
import {tagOf} from "./libraries/DigestTag.sol";
import {drawKey} from "./libraries/DrawKey.sol";

/// @title hepx job market: claim or auction, one replica or k-of-n, ETH or ERC-20
/// @notice See {IJobMarket} and docs/protocol.md. Money only leaves through the withdraw
/// calls; every other call moves escrow or stake into credits, so no payee can block a job.
/// @dev A job is one storage slot (`JobRecord`): its parties are account ids, not addresses,
/// and a single-replica job's unspent escrow is refunded when its worker is assigned, so the
/// amount field holds the escrow, then the price. An account id's slot also holds its ETH
/// credit, so crediting a party costs one slot write. Fast-path jobs (`postJob`) touch only
/// their record and their parties' accounts; `hasTerms` (in the record) says whether `_terms`
/// and the assignment slots are to be read at all.
contract JobMarket is MarketBook, IJobMarket, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Most replicas (and held bids) a job may have; bounds every loop.
    uint256 internal constant MAX_REPLICAS = 8;

    /// @inheritdoc IJobMarket
    address public immutable disputeCourt;
    /// @inheritdoc IJobMarket
    address public immutable requestDesk;
    /// @notice The code the registry's calls, replicated jobs' results and sweeps run (in
    /// this contract's storage): see {MarketCalls}. Deployed before the market.
    address public immutable marketCalls;

    uint256 private immutable _challengeWindow;

    /// @param challengeWindow_ seconds after a submission before anyone may finalize
    /// (1 to MAX_WINDOW, else JobMarketInvalidWindow); also the workers' unbond delay.
    /// @param stakeFreeLimit_ see {IJobMarket-stakeFreeLimit}.
    /// @param marketCalls_ a {MarketCalls} built with the same window and limit (else
    /// JobMarketCallsMismatch).
    constructor(uint256 challengeWindow_, uint256 stakeFreeLimit_, address marketCalls_)
        MarketBook(stakeFreeLimit_)
    {
        _checkWindow(challengeWindow_);
        _challengeWindow = challengeWindow_;
        disputeCourt = address(new DisputeCourt(challengeWindow_));
        requestDesk = address(new RequestDesk());
        (uint256 window, uint256 limit) = ISweepCalls(marketCalls_).builtFor();
        if (window != challengeWindow_ || limit != stakeFreeLimit_) {
            revert JobMarketCallsMismatch(marketCalls_, window, limit);
        }
        marketCalls = marketCalls_;
    }

    /// @notice Sweeps' calls ({ISweepCalls}) run MarketCalls' code in this contract's storage.
    fallback() external payable {
        _runCode(marketCalls);
    }

    modifier onlyCourt() {
        if (msg.sender != disputeCourt) revert JobMarketOnlyCourt(msg.sender);
        _;
    }

    // ---------------------------------------------------------------- registry calls

    // The registry's calls run MarketCalls' code in this contract's storage: they are rare
    // (a worker's setup), and the market's own code is at EIP-170's size limit. The registry's
    // views are WorkerRegistry's own; its unbond delay is the challenge window. The stubs
    // name their parameters (unused here) because the ABI takes its argument names from them:
    // explorers and decoders read a call's arguments by name.

    /// @inheritdoc IWorkerRegistry
    function register(bytes32[] calldata kinds) external payable {
        _runCode(marketCalls);
    }

    /// @inheritdoc IWorkerRegistry
    function addStake() external payable {
        _runCode(marketCalls);
    }

    /// @inheritdoc IWorkerRegistry
    function setKinds(bytes32[] calldata kinds, bool supported) external {
        _runCode(marketCalls);
    }

    /// @inheritdoc IWorkerRegistry
    function unbond(uint256 amount) external {
        _runCode(marketCalls);
    }

    /// @inheritdoc IWorkerRegistry
    function withdrawStake() external {
        _runCode(marketCalls);
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

        uint32 requester = _accountId(_requester());
        jobId = _counters.nextJobId++;
        _postFast(jobId, requester, specCid, msg.value, block.timestamp + claimWindow, runWindow);
    }

    /// @inheritdoc IJobMarket
    function postJobs(
        string[] calldata specCids,
        uint256[] calldata escrows,
        uint256 claimWindow,
        uint256 runWindow
    ) external payable returns (uint256 firstJobId) {
        if (specCids.length == 0 || specCids.length != escrows.length) {
            revert JobMarketBatchMismatch(specCids.length, escrows.length);
        }
        _checkWindow(claimWindow);
        _checkWindow(runWindow);
        uint256 total;
        for (uint256 i; i < escrows.length; ++i) {
            if (escrows[i] == 0 || escrows[i] > type(uint96).max) {
                revert JobMarketInvalidEscrow(escrows[i]);
            }
            total += escrows[i];
        }
        if (total != msg.value) revert JobMarketInvalidEscrow(msg.value);
        uint32 requester = _accountId(_requester());
        firstJobId = _counters.nextJobId;
        uint256 claimDeadline = block.timestamp + claimWindow;
        for (uint256 i; i < specCids.length; ++i) {
            if (bytes(specCids[i]).length == 0) revert JobMarketEmptyCid();
            _postFast(firstJobId + i, requester, specCids[i], escrows[i], claimDeadline, runWindow);
        }
        _counters.nextJobId = uint128(firstJobId + specCids.length); // one write for the batch
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
        _submit(jobId, job, resultCid, digest);
    }

    /// @inheritdoc IJobMarket
    function submitResults(
        uint256[] calldata jobIds,
        string[] calldata resultCids,
        bytes32[] calldata digests,
        uint256[] calldata matured
    ) external returns (uint256 submitted, uint256 settled) {
        if (jobIds.length != resultCids.length || jobIds.length != digests.length) {
            revert JobMarketBatchMismatch(jobIds.length, resultCids.length);
        }
        for (uint256 i; i < jobIds.length; ++i) {
            JobRecord storage job = _jobs[jobIds[i]];
            // Not (or no longer) the caller's running job: a reorg took the claim, the run
            // deadline passed, or it was submitted already. Skipped, as in claimJobs.
            if (
                job.state != JobState.Claimed || _accounts[job.worker].holder != msg.sender
                    || block.timestamp > job.deadline
            ) {
                emit BatchItemSkipped(jobIds[i], msg.sender, job.state);
                continue;
            }
            if (bytes(resultCids[i]).length == 0) revert JobMarketEmptyCid();
            _submit(jobIds[i], job, resultCids[i], digests[i]);
            ++submitted;
        }
        settled = _settleMatured(matured);
    }

    /// @inheritdoc IJobMarket
    function commitResult(uint256 jobId, bytes32 commitment) external {
        _runCode(marketCalls);
    }

    /// @inheritdoc IJobMarket
    function revealResult(uint256 jobId, bytes32 digest, bytes32 salt, string calldata resultCid)
        external
    {
        _runCode(marketCalls);
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
        if (job.state != JobState.Submitted) _runCode(marketCalls); // a replicated job's tally
        uint256 deadline = job.deadline;
        if (block.timestamp <= deadline) revert JobMarketDeadlineNotReached(jobId, deadline);
        _settle(jobId, job);
    }

    /// @inheritdoc IJobMarket
    function finalizeJobs(uint256[] calldata jobIds) external returns (uint256 settled) {
        return _settleMatured(jobIds);
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
    function burned() external view returns (uint256) {
        return _burned;
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

    /// @dev Writes a fast-path job's record and announces it; the caller checked the escrow
    /// and the CID, and moves the job counter.
    function _postFast(
        uint256 jobId,
        uint32 requester,
        string calldata specCid,
        uint256 escrow,
        uint256 claimDeadline,
        uint256 runWindow
    ) private {
        // Casts are safe: windows are capped at MAX_WINDOW and escrow was checked.
        address requesterAddress = _requester();
        _jobs[jobId] = JobRecord(
            requester, 0, JobState.Open, uint40(claimDeadline), uint32(runWindow), false,
            uint96(escrow)
        );
        emit JobPosted(jobId, requesterAddress, specCid, escrow, claimDeadline, runWindow);
        emit Payment(jobId, requesterAddress, escrow, PaymentReason.Escrow, PaymentDirection.In);
    }

    /// @dev A single worker's result: the challenge window starts, the record keeps the
    /// digest's tag (the run window is spent).
    function _submit(
        uint256 jobId,
        JobRecord storage job,
        string calldata resultCid,
        bytes32 digest
    ) private {
        uint256 challengeEnd = block.timestamp + _challengeWindow;
        job.state = JobState.Submitted;
        job.deadline = uint40(challengeEnd);
        job.runWindowOrTag = tagOf(digest);
        emit ResultSubmitted(jobId, msg.sender, resultCid, digest, challengeEnd);
    }

    /// @dev Settles each of `jobIds` whose single worker's challenge window has passed; skips
    /// the rest with BatchItemSkipped (what finalizeJobs and submitResults' `matured` do).
    function _settleMatured(uint256[] calldata jobIds) private returns (uint256 settled) {
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

    /// @dev Credits the whole escrow back to the requester; returns it.
    function _refundEscrow(uint256 jobId, JobRecord storage job) private returns (uint256 refund) {
        refund = job.escrow;
        address token = job.hasTerms ? _terms[jobId].token : address(0);
        _credit(jobId, token, job.requester, refund, PaymentReason.Refund);
    }

    /// @dev Runs this call's data in `code` (MarketCalls) in this contract's
    /// storage and ends the call with its answer (returned or reverted as is).
    function _runCode(address code) private {
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
}

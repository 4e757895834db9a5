// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IDisputeCourt} from "./interfaces/IDisputeCourt.sol";
import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {IWorkerRegistry} from "./interfaces/IWorkerRegistry.sol";
import {tagOf} from "./libraries/DigestTag.sol";
import {drawKey} from "./libraries/DrawKey.sol";

/// @title hepx dispute court: verifier panels drawn by stake and a verdict by re-execution
/// @notice See {IDisputeCourt} and docs/protocol.md ("Disputes by re-execution").
/// @dev The market deploys the court and is the only contract it calls or trusts; stakes,
/// escrow and credits never leave the market, the court holds only a dispute's bond until the
/// verdict hands it over. Every loop is bounded by MAX_PANEL.
contract DisputeCourt is IDisputeCourt {
    /// @notice Most seats a panel may have.
    uint256 public constant MAX_PANEL = 9;

    /// @inheritdoc IDisputeCourt
    address public immutable market;
    /// @dev Length of each phase (draw, commit, reveal): the market's challenge window, which
    /// a requester that rechecks before disputing also needs to re-run the job.
    uint256 private immutable _phaseWindow;

    mapping(uint256 jobId => Dispute) private _disputes;
    mapping(uint256 jobId => mapping(uint256 index => Seat)) private _seats;
    mapping(uint256 jobId => mapping(address verifier => uint256 indexPlusOne)) private _seatOf;
    mapping(uint256 jobId => mapping(address verifier => bool)) private _volunteered;

    constructor(uint256 phaseWindow) {
        market = msg.sender;
        _phaseWindow = phaseWindow;
    }

    /// @inheritdoc IDisputeCourt
    function dispute(uint256 jobId, uint256 panel) external payable {
        if (panel < 3 || panel > MAX_PANEL || panel % 2 == 0) {
            revert CourtInvalidPanel(panel, MAX_PANEL);
        }
        Dispute storage d = _disputes[jobId];
        if (d.state != DisputeState.None) revert CourtWrongState(jobId, d.state);
        // The market is this court's deployer and is trusted: its answer comes first.
        (
            address worker,
            address requester,
            uint256 price,
            uint256 stake,
            bytes32 kind,
            uint32 tag
        ) = IJobMarket(market).openDispute(jobId, msg.sender);
        uint256 bond = panel * price;
        if (msg.value != bond) revert CourtInvalidBond(msg.value, bond);

        uint256 drawDeadline = block.timestamp + _phaseWindow;
        d.disputer = msg.sender;
        d.bond = uint96(bond); // price < 2**96 and panel <= 9: the market's escrow bounds it
        d.requester = requester;
        d.worker = worker;
        d.price = uint96(price);
        d.state = DisputeState.Drawing;
        d.panel = uint8(panel);
        d.digestTag = tag;
        d.openedAt = uint40(block.timestamp);
        d.drawDeadline = uint40(drawDeadline);
        d.commitDeadline = uint40(drawDeadline + _phaseWindow);
        d.revealDeadline = uint40(drawDeadline + 2 * _phaseWindow);
        d.openedBlock = uint64(block.number);
        d.verifierStake = uint96(stake);
        d.kind = kind;
        emit DisputeOpened(
            jobId, msg.sender, bond, panel, drawDeadline, d.commitDeadline, d.revealDeadline
        );
    }

    /// @inheritdoc IDisputeCourt
    function volunteer(uint256 jobId) external {
        Dispute storage d = _existing(jobId);
        _checkState(jobId, d.state, DisputeState.Drawing);
        if (block.timestamp > d.drawDeadline) revert CourtDeadlinePassed(jobId, d.drawDeadline);
        if (msg.sender == d.worker || msg.sender == d.requester || msg.sender == d.disputer) {
            revert CourtPartyCannotVerify(jobId, msg.sender);
        }
        if (_volunteered[jobId][msg.sender]) revert CourtAlreadyVolunteered(jobId, msg.sender);
        IWorkerRegistry.Worker memory w = IWorkerRegistry(market).getWorker(msg.sender);
        if (!w.registered || w.stake == 0) revert CourtNoStake(msg.sender);
        // Stake that arrived once the dispute was known could be placed where the seed favours.
        if (w.stakeSince >= d.openedBlock) {
            revert CourtStakeTooRecent(msg.sender, w.stakeSince, d.openedBlock);
        }
        bytes32 seed = d.seed;
        if (seed == bytes32(0)) {
            // prevrandao of a block after the dispute: unknown when the dispute was opened.
            if (block.number <= d.openedBlock) revert CourtSeedNotReady(jobId, d.openedBlock);
            seed = keccak256(abi.encode(jobId, block.prevrandao));
            d.seed = seed;
            emit DisputeSeeded(jobId, seed);
        }
        uint256 key = drawKey(seed, msg.sender, w.stake);
        _volunteered[jobId][msg.sender] = true;

        uint256 index = d.drawn;
        if (index < d.panel) {
            d.drawn = uint8(index + 1);
        } else {
            // Full: a better key takes the worst seat (ties: the earlier volunteer keeps it).
            uint256 worst;
            for (uint256 i = 1; i < index; ++i) {
                if (_seats[jobId][i].key > _seats[jobId][worst].key) worst = i;
            }
            Seat storage out = _seats[jobId][worst];
            if (key >= out.key) revert CourtNotDrawn(jobId, msg.sender, key, out.key);
            address displaced = out.verifier;
            delete _seatOf[jobId][displaced];
            IJobMarket(market).lockVerifierStake(jobId, displaced, d.verifierStake, 0, false);
            emit VerifierDisplaced(jobId, displaced);
            index = worst;
        }
        _seats[jobId][index] = Seat(msg.sender, VerifierStatus.Drawn, key, 0, 0);
        _seatOf[jobId][msg.sender] = index + 1;
        IJobMarket(market).lockVerifierStake(jobId, msg.sender, d.verifierStake, d.kind, true);
        emit VerifierDrawn(jobId, msg.sender, key);
    }

    /// @inheritdoc IDisputeCourt
    function commitVote(uint256 jobId, bytes32 commitment) external {
        Dispute storage d = _voting(jobId);
        if (block.timestamp > d.commitDeadline) {
            revert CourtDeadlinePassed(jobId, d.commitDeadline);
        }
        Seat storage seat = _seatOfCaller(jobId, VerifierStatus.Drawn);
        seat.commitment = commitment;
        seat.status = VerifierStatus.Committed;
        d.committed += 1;
        emit VoteCommitted(jobId, msg.sender, commitment);
    }

    /// @inheritdoc IDisputeCourt
    function revealVote(uint256 jobId, bytes32 vote, bytes32 salt) external {
        Dispute storage d = _voting(jobId);
        if (block.timestamp > d.revealDeadline) {
            revert CourtDeadlinePassed(jobId, d.revealDeadline);
        }
        if (d.committed < d.drawn && block.timestamp <= d.commitDeadline) {
            revert CourtDeadlineNotReached(jobId, d.commitDeadline);
        }
        Seat storage seat = _seatOfCaller(jobId, VerifierStatus.Committed);
        if (_commitment(jobId, msg.sender, vote, salt) != seat.commitment) {
            revert CourtCommitmentMismatch(jobId, msg.sender);
        }
        seat.vote = vote;
        seat.status = VerifierStatus.Revealed;
        d.revealed += 1;
        emit VoteRevealed(jobId, msg.sender, vote);
    }

    /// @inheritdoc IDisputeCourt
    function resolve(uint256 jobId) external {
        Dispute storage d = _existing(jobId);
        DisputeState state = d.state;
        if (state != DisputeState.Drawing && state != DisputeState.Voting) {
            revert CourtWrongState(jobId, state);
        }
        uint256 drawn = d.drawn;
        uint256 needed = d.panel / 2 + 1;
        // The panel is fixed at the draw deadline; with too few seats there is nothing to
        // wait for, with every vote in neither.
        bool early = block.timestamp > d.drawDeadline && (drawn < needed || d.revealed == drawn);
        if (!early && block.timestamp <= d.revealDeadline) {
            revert CourtDeadlineNotReached(jobId, d.revealDeadline);
        }

        (bytes32 winner, uint256 votes) = drawn < needed ? (bytes32(0), 0) : _count(jobId, drawn);
        Verdict verdict = votes < needed
            ? Verdict.NoMajority
            : tagOf(winner) == d.digestTag
                ? Verdict.WorkerUpheld
                : Verdict.WorkerRefuted;
        d.state = DisputeState.Resolved;
        d.verdict = verdict;
        emit DisputeResolved(jobId, verdict, winner, votes);
        _close(jobId, d, verdict, winner, drawn < needed);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IDisputeCourt
    function getDispute(uint256 jobId) external view returns (Dispute memory) {
        return _disputes[jobId];
    }

    /// @inheritdoc IDisputeCourt
    function getSeats(uint256 jobId) external view returns (Seat[] memory seats) {
        uint256 count = _disputes[jobId].drawn;
        seats = new Seat[](count);
        for (uint256 i; i < count; ++i) {
            seats[i] = _seats[jobId][i];
        }
    }

    /// @inheritdoc IDisputeCourt
    function keyOf(uint256 jobId, address verifier) external view returns (uint256) {
        bytes32 seed = _disputes[jobId].seed;
        uint256 stake = IWorkerRegistry(market).getWorker(verifier).stake;
        return seed == bytes32(0) || stake == 0 ? 0 : drawKey(seed, verifier, stake);
    }

    /// @inheritdoc IDisputeCourt
    function commitmentOf(uint256 jobId, address verifier, bytes32 vote, bytes32 salt)
        external
        view
        returns (bytes32)
    {
        return _commitment(jobId, verifier, vote, salt);
    }

    /// @inheritdoc IDisputeCourt
    function digestTag(bytes32 digest) external pure returns (uint32) {
        return tagOf(digest);
    }

    // ---------------------------------------------------------------- internals

    /// @dev Hands the verdict, each seat's fate and the bond to the market.
    function _close(uint256 jobId, Dispute storage d, Verdict verdict, bytes32 winner, bool tooFew)
        private
    {
        (address[] memory majority, address[] memory slashed, address[] memory released) =
            _judgeSeats(jobId, d.drawn, verdict != Verdict.NoMajority, winner, tooFew);
        IJobMarket(market).closeDispute{value: d.bond}(
            jobId,
            verdict == Verdict.WorkerRefuted,
            d.disputer,
            majority,
            slashed,
            released,
            d.verifierStake
        );
    }

    /// @dev The vote most revealed seats agree on, and how many do (first one on a tie).
    function _count(uint256 jobId, uint256 drawn)
        private
        view
        returns (bytes32 winner, uint256 best)
    {
        for (uint256 i; i < drawn; ++i) {
            Seat storage a = _seats[jobId][i];
            if (a.status != VerifierStatus.Revealed) continue;
            uint256 votes;
            for (uint256 j; j < drawn; ++j) {
                Seat storage b = _seats[jobId][j];
                if (b.status == VerifierStatus.Revealed && b.vote == a.vote) ++votes;
            }
            if (votes > best) (winner, best) = (a.vote, votes);
        }
    }

    /// @dev Each seat's fate: with a majority, its members are paid and everyone else on the
    /// panel is slashed; without one, revealers are released and silent seats slashed; a
    /// panel too small to decide releases everyone (their windows never mattered).
    function _judgeSeats(
        uint256 jobId,
        uint256 drawn,
        bool decided,
        bytes32 winner,
        bool tooFew
    )
        private
        returns (address[] memory majority, address[] memory slashed, address[] memory released)
    {
        majority = new address[](drawn);
        slashed = new address[](drawn);
        released = new address[](drawn);
        (uint256 m, uint256 s, uint256 r) = (0, 0, 0);
        for (uint256 i; i < drawn; ++i) {
            Seat storage seat = _seats[jobId][i];
            bool revealed = seat.status == VerifierStatus.Revealed;
            if (decided && revealed && seat.vote == winner) {
                seat.status = VerifierStatus.Paid;
                majority[m++] = seat.verifier;
            } else if (tooFew || (!decided && revealed)) {
                seat.status = VerifierStatus.Released;
                released[r++] = seat.verifier;
            } else {
                seat.status = VerifierStatus.Slashed;
                slashed[s++] = seat.verifier;
            }
        }
        assembly ("memory-safe") {
            mstore(majority, m)
            mstore(slashed, s)
            mstore(released, r)
        }
    }

    function _commitment(uint256 jobId, address verifier, bytes32 vote, bytes32 salt)
        private
        view
        returns (bytes32)
    {
        return keccak256(abi.encode(block.chainid, address(this), jobId, verifier, vote, salt));
    }

    /// @dev The dispute, moved from drawing to voting once the draw deadline passed.
    function _voting(uint256 jobId) private returns (Dispute storage d) {
        d = _existing(jobId);
        if (d.state == DisputeState.Drawing) {
            if (block.timestamp <= d.drawDeadline) {
                revert CourtDeadlineNotReached(jobId, d.drawDeadline);
            }
            d.state = DisputeState.Voting;
        }
        _checkState(jobId, d.state, DisputeState.Voting);
    }

    function _seatOfCaller(uint256 jobId, VerifierStatus expected)
        private
        view
        returns (Seat storage seat)
    {
        uint256 indexPlusOne = _seatOf[jobId][msg.sender];
        if (indexPlusOne == 0) revert CourtNotOnPanel(jobId, msg.sender);
        seat = _seats[jobId][indexPlusOne - 1];
        if (seat.status != expected) revert CourtNotOnPanel(jobId, msg.sender);
    }

    function _existing(uint256 jobId) private view returns (Dispute storage d) {
        d = _disputes[jobId];
        if (d.state == DisputeState.None) revert CourtUnknownDispute(jobId);
    }

    function _checkState(uint256 jobId, DisputeState actual, DisputeState expected)
        private
        pure
    {
        if (actual != expected) revert CourtWrongState(jobId, actual);
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title hepx dispute court: a submitted result checked by re-execution
/// @notice Within a job's challenge window anyone (the requester too) may dispute a
/// single-replica result by posting a bond of `panel x price`. Registered workers whose stake
/// was bonded before the dispute volunteer to verify; the `panel` smallest stake-weighted random
/// keys (Efraimidis-Spirakis, seeded by a block's `prevrandao` after the dispute) are drawn.
/// Drawn verifiers re-run the job's spec and commit, then reveal, a vote: their own canonical
/// digest of the result when the worker's published result has it too, anything else
/// otherwise. A majority of the panel agreeing on a vote whose tag is the worker's decides for
/// the worker (paid; the bond pays the majority); agreeing on another vote decides against it
/// (its stake is slashed: half to the majority, half burned; the requester is refunded; the
/// bond returned). Without a majority, or with too few verifiers, the worker is paid and the
/// bond returned. Verifiers outside the majority lose their locked stake to it.
/// @dev Deployed by the JobMarket's constructor, which alone it trusts and which alone it
/// calls: money and stakes stay in the market. docs/protocol.md describes the phases.
interface IDisputeCourt {
    /// @notice Where a dispute is.
    enum DisputeState {
        None,
        Drawing, // verifiers volunteer until the draw deadline
        Voting, // the panel commits until the commit deadline, then reveals
        Resolved // final: the market paid and slashed by the verdict
    }

    /// @notice How far one volunteer got.
    enum VerifierStatus {
        None,
        Drawn, // among the panel's best keys so far; its stake is locked
        Committed,
        Revealed,
        Paid, // in the majority: paid its share
        Slashed, // did not vote, or voted against the majority: its locked stake went to it
        Released // displaced by a better key, or revealed when no majority formed
    }

    /// @notice The verdict a resolved dispute reached.
    enum Verdict {
        None,
        WorkerUpheld, // the majority's vote matches the worker's digest
        WorkerRefuted, // the majority agreed on another vote
        NoMajority // too few verifiers, or no vote reached the majority: the worker is paid
    }

    /// @notice A dispute as stored.
    struct Dispute {
        address disputer;
        uint96 bond;
        address requester;
        address worker;
        uint96 price; // the job's price (the verifiers' fee and the unit of the bond)
        DisputeState state;
        Verdict verdict;
        uint8 panel; // seats to draw (odd); the majority is panel / 2 + 1
        uint8 drawn; // seats held so far
        uint8 committed;
        uint8 revealed;
        uint32 digestTag; // the tag of the worker's digest, from the market
        uint40 openedAt;
        uint40 drawDeadline;
        uint40 commitDeadline;
        uint40 revealDeadline;
        uint64 openedBlock; // stake bonded in it or later does not count; the seed is a later block's
        uint96 verifierStake; // what each verifier locks: the market's stake rule at the price
        bytes32 kind; // the job's kind verifiers must have declared (0 = any)
        bytes32 seed; // 0 until the first volunteer after the opening block
    }

    /// @notice One drawn verifier.
    struct Seat {
        address verifier;
        VerifierStatus status;
        uint256 key; // Efraimidis-Spirakis key: -log2(U) / stake, smaller wins
        bytes32 commitment;
        bytes32 vote;
    }

    /// @notice `disputer` disputed job `jobId`'s result with a bond of `bond` wei; verifiers
    /// volunteer until `drawDeadline`.
    event DisputeOpened(
        uint256 indexed jobId,
        address indexed disputer,
        uint256 bond,
        uint256 panel,
        uint256 drawDeadline,
        uint256 commitDeadline,
        uint256 revealDeadline
    );
    /// @notice The draw's seed was fixed (from the block's prevrandao).
    event DisputeSeeded(uint256 indexed jobId, bytes32 seed);
    /// @notice `verifier` holds a panel seat with `key` (smaller is better).
    event VerifierDrawn(uint256 indexed jobId, address indexed verifier, uint256 key);
    /// @notice A better key took `verifier`'s seat; its stake is unlocked.
    event VerifierDisplaced(uint256 indexed jobId, address indexed verifier);
    event VoteCommitted(uint256 indexed jobId, address indexed verifier, bytes32 commitment);
    event VoteRevealed(uint256 indexed jobId, address indexed verifier, bytes32 vote);
    /// @notice The dispute ended; the market's Payment events say who got what.
    event DisputeResolved(uint256 indexed jobId, Verdict verdict, bytes32 vote, uint256 majority);

    /// @notice Only the market that deployed the court may call this.
    error CourtOnlyMarket(address caller);
    /// @notice `panel` must be odd, 3..MAX_PANEL.
    error CourtInvalidPanel(uint256 panel, uint256 max);
    /// @notice The bond must be `panel x price`.
    error CourtInvalidBond(uint256 value, uint256 required);
    error CourtUnknownDispute(uint256 jobId);
    error CourtWrongState(uint256 jobId, DisputeState state);
    error CourtDeadlinePassed(uint256 jobId, uint256 deadline);
    error CourtDeadlineNotReached(uint256 jobId, uint256 deadline);
    /// @notice The seed comes from a block after the one the dispute was opened in.
    error CourtSeedNotReady(uint256 jobId, uint256 openedBlock);
    /// @notice The job's worker, requester and disputer cannot verify it.
    error CourtPartyCannotVerify(uint256 jobId, address account);
    /// @notice Only stake bonded before the dispute opened counts.
    error CourtStakeTooRecent(address verifier, uint256 stakeSince, uint256 openedBlock);
    /// @notice A registered worker with a stake may volunteer.
    error CourtNoStake(address verifier);
    error CourtAlreadyVolunteered(uint256 jobId, address verifier);
    /// @notice The panel is full of better keys than `key`.
    error CourtNotDrawn(uint256 jobId, address verifier, uint256 key, uint256 worst);
    error CourtNotOnPanel(uint256 jobId, address caller);
    error CourtCommitmentMismatch(uint256 jobId, address verifier);

    /// @notice Dispute job `jobId`'s submitted result before its challenge window ends, with
    /// a bond of exactly `panel x price` wei; the job waits for the verdict.
    function dispute(uint256 jobId, uint256 panel) external payable;

    /// @notice Volunteer for a seat on the panel (the caller's stake locks while it holds one).
    function volunteer(uint256 jobId) external;

    /// @notice Commit `keccak256(abi.encode(chainid, court, jobId, verifier, vote, salt))`.
    function commitVote(uint256 jobId, bytes32 commitment) external;

    /// @notice Reveal the committed vote, once every seat committed or the commit deadline passed.
    function revealVote(uint256 jobId, bytes32 vote, bytes32 salt) external;

    /// @notice Anyone, once every seat revealed or the reveal deadline passed (at once when
    /// the draw ended with too few verifiers): applies the verdict through the market.
    function resolve(uint256 jobId) external;

    function getDispute(uint256 jobId) external view returns (Dispute memory);

    function getSeats(uint256 jobId) external view returns (Seat[] memory);

    /// @notice The key `verifier` would draw for job `jobId` (0 before the seed is fixed).
    function keyOf(uint256 jobId, address verifier) external view returns (uint256);

    function commitmentOf(uint256 jobId, address verifier, bytes32 vote, bytes32 salt)
        external
        view
        returns (bytes32);

    /// @notice The 32-bit tag a digest is stored and compared by.
    function digestTag(bytes32 digest) external pure returns (uint32);

    function market() external view returns (address);
}

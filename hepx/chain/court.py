"""The DisputeCourt the market deployed: disputes, verifier draws, votes and verdicts.

A verifier's vote is the one rule both sides of a dispute must agree on, so it lives here:
its own canonical digest when the worker's published result digests to it too, otherwise a
value no honest worker's digest can have (``mismatch_vote``).
"""

from __future__ import annotations

from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from hepx.chain.contract import ContractClient
from hepx.chain.enums import DisputeState, Verdict, VerifierStatus
from hepx.chain.types import Dispute, Seat, TxResult, commitment_of

# The panel a dispute draws unless asked otherwise (the majority is 2).
DEFAULT_PANEL = 3
_MISMATCH = b"hepx-mismatch"


def mismatch_vote(own_digest: bytes) -> bytes:
    """The vote against a worker whose published result does not give ``own_digest``."""
    return keccak(_MISMATCH + own_digest)


def vote_for(own_digest: bytes, published_digest: bytes | None) -> bytes:
    """A verifier's vote: its digest if the worker's published result (None: it could not be
    fetched or digested) gives the same one, else the mismatch vote."""
    return own_digest if published_digest == own_digest else mismatch_vote(own_digest)


class CourtClient(ContractClient):
    """Calls the market's DisputeCourt (its address is the market's ``disputeCourt()``)."""

    ARTIFACT = "DisputeCourt"
    MARKET_GETTER = "disputeCourt"

    # ------------------------------------------------------------ reads

    def dispute(self, job_id: int) -> Dispute | None:
        """The dispute of ``job_id``, or None if nobody disputed it."""
        raw: Any = self.read("getDispute", job_id)
        (disputer, bond, requester, worker, price, state, verdict, panel, drawn, committed,
         revealed, digest_tag, opened_at, draw_deadline, commit_deadline, reveal_deadline,
         opened_block, verifier_stake, kind, seed) = raw  # fmt: skip
        if DisputeState(state) == DisputeState.NONE:
            return None
        return Dispute(
            job_id=job_id,
            disputer=str(disputer),
            bond=int(bond),
            requester=str(requester),
            worker=str(worker),
            price=int(price),
            state=DisputeState(state),
            verdict=Verdict(verdict),
            panel=int(panel),
            drawn=int(drawn),
            committed=int(committed),
            revealed=int(revealed),
            digest_tag=int(digest_tag),
            opened_at=int(opened_at),
            draw_deadline=int(draw_deadline),
            commit_deadline=int(commit_deadline),
            reveal_deadline=int(reveal_deadline),
            opened_block=int(opened_block),
            verifier_stake=int(verifier_stake),
            kind=bytes(kind),
            seed=bytes(seed),
        )

    def seats(self, job_id: int) -> list[Seat]:
        return [
            Seat(str(v), VerifierStatus(s), int(k), bytes(c), bytes(vote))
            for (v, s, k, c, vote) in self.read("getSeats", job_id)
        ]

    def seat_of(self, job_id: int, verifier: str) -> Seat | None:
        want = to_checksum_address(verifier)
        return next((s for s in self.seats(job_id) if s.verifier == want), None)

    def key_of(self, job_id: int, verifier: str) -> int:
        return int(self.read("keyOf", job_id, to_checksum_address(verifier)))

    def vote_commitment(self, job_id: int, verifier: str, vote: bytes, salt: bytes) -> bytes:
        """keccak(chainid, court, jobId, verifier, vote, salt): opens for ``verifier`` only."""
        return commitment_of(self.chain_id(), self.address, job_id, verifier, vote, salt)

    # ------------------------------------------------------------ writes

    def open_dispute(self, job_id: int, price: int, panel: int = DEFAULT_PANEL) -> TxResult:
        """Dispute ``job_id``'s result, with the bond of ``panel`` x its ``price``."""
        fn = self.contract.functions.dispute(job_id, panel)
        return self.transact(f"dispute job {job_id}", fn, value=panel * price)

    def volunteer(self, job_id: int, gas: int | None = None) -> TxResult:
        fn = self.contract.functions.volunteer(job_id)
        return self.transact(f"volunteer job {job_id}", fn, gas=gas)

    def commit_vote(self, job_id: int, commitment: bytes, gas: int | None = None) -> TxResult:
        fn = self.contract.functions.commitVote(job_id, commitment)
        return self.transact(f"commitVote job {job_id}", fn, gas=gas)

    def reveal_vote(
        self, job_id: int, vote: bytes, salt: bytes, gas: int | None = None
    ) -> TxResult:
        fn = self.contract.functions.revealVote(job_id, vote, salt)
        return self.transact(f"revealVote job {job_id}", fn, gas=gas)

    def resolve(self, job_id: int, gas: int | None = None) -> TxResult:
        fn = self.contract.functions.resolve(job_id)
        return self.transact(f"resolve dispute of job {job_id}", fn, gas=gas)


__all__ = ["DEFAULT_PANEL", "CourtClient", "mismatch_vote", "vote_for"]

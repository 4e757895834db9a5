"""Which agent claims a job first: rendezvous hashing over the workers seen lately.

When every agent that wants a first-come job claims it at once, all claims but one revert on
chain and their gas is lost, and adding agents makes the market slower (issue 15 measured 61
reverted claims with 8 agents). Instead each job ranks the workers seen at work lately by
blake2b(jobId, address): the first ``seats`` claim at once (a job with n replicas has n seats),
the next ones only if the job is still open ``STAGGER`` seconds per rank later (the ones ahead
declined it, were busy or are gone), and their simulation then refuses a claim that lost for
free. No coordination and no contract change: each agent ranks from the same chain events, and
a newcomer joins the ranking with its first claim or registration. A sweep's lots take turns
the same way at each position of the sweep's cursor (a lot claim names its first job), with
the workers that hold a lot ranked after those that do not.

The hash is off chain and any hash all agents share would do: every agent ranks every post
(all but one defer it), and eth_utils' keccak took 6 us a worker, most of the ~60 us a
deferral cost with 8 workers; blake2b takes 0.3. An agent that ranks with another hash (an
older version's keccak) only races more often: its claim's simulation refuses a lost race.

A job is ranked among the workers that serve its kind, as their registration and kind updates
say (a worker whose kinds this agent never saw counts as serving every kind): ranked among all,
a job of a kind few workers serve waited a STAGGER for each worker ahead that would never
take it, and adding workers of other kinds made the market slower.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Collection
from functools import lru_cache

from hepx.chain import MarketEvent
from hepx.chain.abi import checksummed

# Seconds a worker waits per rank behind the job's first seats: longer than the first-ranked
# agent takes from the job's post to its claim mined, on a loaded 2-core devnet too (0.5 s
# was not: a CI run saw a race lost on chain), short enough that a gone peer delays little.
STAGGER = 1.0
# However many stale peers rank ahead, a job waits at most MAX_WAIT_RANKS x STAGGER.
MAX_WAIT_RANKS = 4
# A worker not seen at work for this long is left out of the ranking.
PEER_TTL = 600.0
# The rounds for each kind's posts stay what this many agents make (round_spacing).
ROUND_SHARE = 2
# The events that show a worker at work (each has the worker's address as ``worker``).
_AT_WORK = frozenset(
    {"JobClaimed", "ReplicaDrawn", "ResultSubmitted", "WorkerRegistered", "LotClaimed"}
)
# The events after which a lot no longer keeps its worker busy.
_LOT_ENDS = frozenset({"LotSubmitted", "LotExpired"})


class ClaimOrder:
    """The ranking of one agent (``me``) among the workers it has seen."""

    def __init__(self, me: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.me = checksummed(me)
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}
        self._lots: dict[int, str] = {}  # lots claimed and not yet submitted or expired
        self._kinds: dict[str, set[bytes]] = {}  # each worker's kinds, where its events told

    def saw(self, event: MarketEvent) -> None:
        """Note the worker an event shows at work, and the lots it holds."""
        with self._lock:
            if event.name in _AT_WORK:
                worker = checksummed(str(event.args["worker"]))
                self._seen[worker] = self._clock()
                if event.name == "LotClaimed":
                    self._lots[int(event.args["lotId"])] = worker
            elif event.name in _LOT_ENDS:
                self._lots.pop(int(event.args["lotId"]), None)
            if event.name == "WorkerRegistered":
                self._kinds[checksummed(str(event.args["worker"]))] = _kind_ids(event)
            elif event.name == "KindsUpdated":
                # A worker whose kinds were unknown here still counts as serving every kind.
                kinds = self._kinds.get(checksummed(str(event.args["worker"])), set())
                if event.args["supported"]:
                    kinds |= _kind_ids(event)
                else:
                    kinds -= _kind_ids(event)

    def kinds_vary(self) -> bool:
        """Whether the workers seen serve different kinds, so that a job's ranking depends on
        its kind (read from its spec); in a market whose workers all serve the same kinds it
        does not, and a job is ranked without its spec."""
        fresh = set(self.peers())
        with self._lock:
            known = [frozenset(k) for w, k in self._kinds.items() if w in fresh]
        return len(set(known)) > 1

    def peers(self, kind: bytes | None = None) -> list[str]:
        """The workers seen lately, this one included; with ``kind``, those that serve it."""
        cutoff = self._clock() - PEER_TTL
        with self._lock:
            fresh = {w for w, at in self._seen.items() if at >= cutoff
                     and (kind is None or kind in self._kinds.get(w, (kind,)))}  # fmt: skip
        return sorted(fresh | {self.me})

    def round_spacing(self, least: float, most: float, kinds: Collection[bytes] = ()) -> float:
        """Seconds to leave between this agent's rounds for new blocks: ``least`` for each
        ROUND_SHARE workers seen that serve any of ``kinds`` (the agent's; none given: every
        worker), within [least, most].

        Every block (one per transaction on an automining devnet) wakes every agent, and a
        round reads and decodes the block's events: a round per block made N agents' rounds
        grow as N times the market's transactions, each agent added slowing the others on a
        shared machine, and asking a shared RPC endpoint N times as often. Spaced so, the
        rounds per second for each kind's posts stay what ROUND_SHARE agents make however
        many join; a post waits for its first-ranked agent's next round. Counted over the
        whole market, a kind few workers serve waited for the spacing of all. On a chain
        whose blocks are ``most`` or more apart nothing changes: a round per block."""
        serving = set().union(*(self.peers(kind) for kind in kinds)) if kinds else self.peers()
        return min(most, max(least, least * len(serving) / ROUND_SHARE))

    def rank(self, job_id: int, kind: bytes | None = None) -> int:
        """This agent's place (0 first) in ``job_id``'s order (among those serving ``kind``)."""
        job = job_id.to_bytes(32, "big")
        mine = _key(job, self.me)
        return sum(_key(job, worker) < mine for worker in self.peers(kind))

    def wait(self, job_id: int, seats: int = 1, kind: bytes | None = None) -> float:
        """Seconds to leave ``job_id`` to the workers ahead before claiming it (0: now)."""
        return _stagger(self.rank(job_id, kind) - seats + 1)

    def lot_wait(self, first_job: int, kind: bytes | None = None) -> float:
        """Seconds to leave a sweep's lot starting at ``first_job`` to the workers ahead.

        A lot claim names its first job, so only one claim per cursor position can win: the
        workers take turns as for a first-come job, except that those holding a lot rank
        after those that hold none (a worker is busy with its lot until it submits it, and a
        turn left to a busy one would cost a STAGGER each time)."""
        with self._lock:
            busy = set(self._lots.values())
        job = first_job.to_bytes(32, "big")
        order = sorted(self.peers(kind), key=lambda w: (w in busy, _key(job, w)))
        return _stagger(order.index(self.me))


def _key(job: bytes, worker: str) -> bytes:
    return hashlib.blake2b(job + _address_bytes(worker), digest_size=16).digest()


@lru_cache(maxsize=4096)
def _address_bytes(worker: str) -> bytes:
    return bytes.fromhex(worker[2:])


def _kind_ids(event: MarketEvent) -> set[bytes]:
    return {k if isinstance(k, bytes) else bytes.fromhex(str(k)[2:]) for k in event.args["kinds"]}


def _stagger(behind: int) -> float:
    return 0.0 if behind <= 0 else min(behind, MAX_WAIT_RANKS) * STAGGER

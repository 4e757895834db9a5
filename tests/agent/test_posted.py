"""An agent decides on a job its poll saw posted from the post's events, without asking the
chain (agent/posted.py); a job a later event of the same poll closed is left unasked, and
one it touched otherwise is asked as before."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from agent_helpers import SteppedAgent, client_of

import agent.waiting as waiting_module
import hepx.chain.follower as follower_module
from agent.phases import Phase
from agent.policy import Policy
from agent.posted import PostedJobs
from agent.slots import Need, Slots
from agent.waiting import Waiting, WaitReason
from hepx.anvil import Anvil
from hepx.chain import JobState, MarketClient, MarketEvent, kind_id
from hepx.deployment import Deployment
from hepx.errors import ChainError
from hepx.spec import canonical_json, parse_spec
from hepx.store import LocalStore

POLICY = Policy.model_validate({"kinds": {"echo": {"price": 1000}}, "max_runtime": 60})


def _echo(store: LocalStore, message: str) -> str:
    spec = parse_spec({
        "apiVersion": "hepx/v1", "kind": "echo", "metadata": {"name": message},
        "params": {"message": message}, "resources": {"max_runtime": 30},
        "payment": {"max_price": 10**6, "claim_window": 60, "run_window": 60},
    })  # fmt: skip
    return store.add_bytes(canonical_json(spec))


AgentFrom = Callable[[int], SteppedAgent]


@pytest.fixture
def agent_from(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> AgentFrom:
    """The agent (account 1), following the chain from the block it is given."""

    def make(start_block: int) -> SteppedAgent:
        client = client_of(anvil, deployment, 1)
        return SteppedAgent(client, store, POLICY, tmp_path / "w", start_block=start_block,
                            poll_interval=0.05, submit_margin=1)  # fmt: skip

    return make


@pytest.fixture
def requester(anvil: Anvil, deployment: Deployment) -> MarketClient:
    return client_of(anvil, deployment, 0)


@pytest.fixture
def other(anvil: Anvil, deployment: Deployment) -> MarketClient:
    """Another worker."""
    return client_of(anvil, deployment, 2)


def _recorded(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[Any]:
    """The argument of each call of ``owner.name`` from now on (each still goes through)."""
    calls: list[Any] = []
    real = getattr(owner, name)
    monkeypatch.setattr(owner, name, lambda arg: calls.append(arg) or real(arg))
    return calls


def test_a_fresh_post_is_decided_without_a_call_and_a_closed_one_is_not_asked(
    requester: MarketClient, store: LocalStore, agent_from: AgentFrom,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    fresh, _ = requester.post_job(_echo(store, "a"), 10**6, 60, 60)
    cancelled, _ = requester.post_job(_echo(store, "b"), 10**6, 60, 60)
    requester.cancel(cancelled)  # in the same poll as its post
    agent = agent_from(requester.block_number() - 2)
    asked: list[tuple[str, int]] = []  # before the job was claimed: what deciding asked

    def noting(view: str, real: Callable[[int], object]) -> Callable[[int], object]:
        def ask(job_id: int) -> object:
            if job_id not in agent.book.jobs:
                asked.append((view, job_id))
            return real(job_id)

        return ask

    for view in ("job", "terms"):
        monkeypatch.setattr(agent.client, view, noting(view, getattr(agent.client, view)))
    agent.step()
    assert asked == []  # cancelled in the poll's blocks: left without a call
    assert agent.book.phase(fresh) == Phase.SUBMITTED
    assert cancelled not in agent.book.jobs
    assert requester.job(fresh).state == JobState.SUBMITTED


def _event(name: str, tx: str, **args: object) -> MarketEvent:
    return MarketEvent(name=name, args=args, block_number=1, tx_hash=tx, log_index=0)


def _post(job_id: int, tx: str) -> MarketEvent:
    return _event("JobPosted", tx, jobId=job_id, requester="0x" + "11" * 20, specCid=f"cid{job_id}",
                  maxPrice=5, claimDeadline=100, runWindow=60)  # fmt: skip


def test_only_the_posts_own_events_leave_it_as_posted() -> None:
    posted = PostedJobs()
    for event in [
        _post(1, "0xa"),
        _event("Payment", "0xa", jobId=1),  # the escrow, in the post's call
        _post(2, "0xb"),
        _event("JobClaimed", "0xc", jobId=2, worker="0x" + "22" * 20),  # closed: left
        _post(3, "0xd"),
        _event("JobTermsSet", "0xe", jobId=3),  # not of its post's call: a touch
        _post(4, "0x4"),
        _event("BidPlaced", "0x5", jobId=4, worker="0x" + "22" * 20),  # open still: a touch
        _event("SweepPosted", "0xf", sweepId=9),  # no job: nothing
    ]:
        posted.saw(event)
    pending = posted.pending()
    assert [(j, cid) for j, cid, _ in pending] == [(1, "cid1"), (3, "cid3"), (4, "cid4")]
    known = {j: k for j, _, k in pending}
    assert known[3] is None and known[4] is None
    assert known[1] is not None and known[1][0].escrow == 5 and known[1][1].replicas == 1
    posted.done(1)
    posted.saw(_post(3, "0x9"))  # a reorg posted the number again: as posted anew
    assert [(j, k is not None) for j, _, k in posted.pending()] == [(3, True), (4, False)]
    posted.clear()
    assert posted.pending() == []


def test_a_waiting_job_another_worker_took_is_dropped_without_asking_the_chain(
    requester: MarketClient, other: MarketClient, store: LocalStore, agent_from: AgentFrom,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    job_id, _ = requester.post_job(_echo(store, "c"), 10**6, 60, 60)
    agent = agent_from(requester.block_number() + 1)
    agent.waiting.put(WaitReason.TURN, job_id, "cid", after=0.0)  # deferred to a rank ahead
    other.claim(job_id, 10**6)
    asked = _recorded(monkeypatch, agent.client, "job")
    agent.step()
    assert job_id not in agent.waiting.jobs[WaitReason.TURN] and job_id not in asked
    agent.follower.cursor.flush()
    assert Waiting(agent.paths.waiting).jobs[WaitReason.TURN] == {}  # and written so


def test_a_post_others_rank_first_for_is_deferred_before_its_spec_is_read(
    requester: MarketClient, other: MarketClient, store: LocalStore, agent_from: AgentFrom,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    agent = agent_from(requester.block_number() + 1)
    peer = _event("WorkerRegistered", "0x01", worker=other.sender, kinds=[kind_id("echo")])
    agent.order.saw(peer)  # a peer of the same kind
    specs = {requester.post_job(_echo(store, f"r{i}"), 10**6, 60, 60)[0]: _echo(store, f"r{i}")
             for i in range(6)}  # fmt: skip
    behind = {j for j in specs if agent.order.rank(j) == 1}
    assert behind and behind != set(specs), "six jobs, two workers: both ranks occur"
    read = _recorded(monkeypatch, agent.specs, "get")
    agent.step()
    assert set(agent.waiting.jobs[WaitReason.TURN]) == behind
    assert not {specs[j] for j in behind} & set(read)  # deferred unread
    assert {specs[j] for j in set(specs) - behind} <= set(read)  # ours first: read, decided


def test_deferred_posts_are_written_with_the_cursor_not_in_each_round(
    requester: MarketClient, other: MarketClient, store: LocalStore, agent_from: AgentFrom,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Each agent ranked behind defers a post; a write of the list in each such round was a
    seventh of the round's time (8 agents, one post per POST). The list on disk only has to
    hold what the cursor on disk passed."""
    monkeypatch.setattr(follower_module, "WRITE_EVERY", 3600.0)  # no write but the stop's
    agent = agent_from(requester.block_number() + 1)
    peer = _event("WorkerRegistered", "0x01", worker=other.sender, kinds=[kind_id("echo")])
    agent.order.saw(peer)
    for i in range(6):
        requester.post_job(_echo(store, f"w{i}"), 10**6, 60, 60)
    agent.step()
    agent.slots.join()
    behind = set(agent.waiting.jobs[WaitReason.TURN])
    assert behind, "six jobs, two workers: some rank the peer first"
    assert not agent.paths.waiting.exists()  # not written by the round
    agent.follower.cursor.flush()  # the cursor's write (every WRITE_EVERY, and on stop)
    assert set(Waiting(agent.paths.waiting).jobs[WaitReason.TURN]) == behind  # writes it first
    restarted = agent_from(1)  # from the state on disk
    assert restarted.follower.cursor.block == agent.follower.cursor.block
    assert set(restarted.waiting.jobs[WaitReason.TURN]) == behind


def test_a_job_considered_again_stays_waiting_on_disk_until_it_has_been(
    tmp_path: Path,
) -> None:
    waiting = Waiting(tmp_path / "waiting.json")
    waiting.put(WaitReason.SLOT, 4, "cid4")
    with waiting.considering(WaitReason.SLOT, 4) as (spec_cid, known):
        assert spec_cid == "cid4" and known is None and waiting.due(WaitReason.SLOT) == []
        waiting.flush()  # the cursor written meanwhile, by a thread mining our transaction
        assert Waiting(waiting.path).jobs[WaitReason.SLOT] == {4: "cid4"}
    waiting.flush()
    assert Waiting(waiting.path).jobs[WaitReason.SLOT] == {}
    waiting.put(WaitReason.SLOT, 5, "cid5")
    with pytest.raises(ChainError), waiting.considering(WaitReason.SLOT, 5):
        raise ChainError("the node went away mid-way")
    assert waiting.jobs[WaitReason.SLOT] == {5: "cid5"}  # still waiting


def test_what_a_waiting_job_is_known_as_is_forgotten_when_it_closes_or_a_reorg_comes(
    tmp_path: Path,
) -> None:
    posted = PostedJobs()
    posted.saw(_post(1, "0xa"))
    posted.saw(_post(2, "0xb"))
    known = {j: k for j, _, k in posted.pending()}
    waiting = Waiting(tmp_path / "waiting.json")
    waiting.put(WaitReason.TURN, 1, "cid1", known=known[1])
    waiting.put(WaitReason.TURN, 2, "cid2", known=known[2])
    with waiting.considering(WaitReason.TURN, 1) as (_, first):
        assert first == known[1]
        waiting.put(WaitReason.SLOT, 1, "cid1", known=first)  # waits on, for a slot now
    waiting.drop(1)  # claimed by another worker
    waiting.put(WaitReason.SLOT, 1, "cid1")  # a reorg brought it back: read from the chain
    waiting.forget_known()  # and the reorg may have changed the other one
    for job_id in (1, 2):
        reason = WaitReason.SLOT if job_id == 1 else WaitReason.TURN
        with waiting.considering(reason, job_id) as (_, again):
            assert again is None


def test_a_deferred_job_is_taken_when_its_turn_comes_without_asking_the_chain_again(
    requester: MarketClient, other: MarketClient, store: LocalStore, agent_from: AgentFrom,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Standing in for the ranks ahead, or when a slot frees, an agent asked the chain for
    the job and its terms again, though only an event that closes a first-come job changes
    it (8 agents on a burst of 200: ~600 such asks). And a stand-in with no slot free
    considered the job only to leave it waiting again."""
    clock = [1000.0]
    monkeypatch.setattr(waiting_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    agent = agent_from(requester.block_number() + 1)
    agent.slots = Slots(1, 1 << 20)  # one job at a time: the others wait for a slot
    agent.order.saw(_event("WorkerRegistered", "0x01", worker=other.sender,
                           kinds=[kind_id("echo")]))  # fmt: skip
    posted = [requester.post_job(_echo(store, f"t{i}"), 10**6, 60, 60)[0] for i in range(6)]
    agent.step()
    behind = set(agent.waiting.jobs[WaitReason.TURN])
    assert behind and len(behind) < 6, "six jobs, two workers: both ranks occur"
    asked = _recorded(monkeypatch, agent.client, "job")
    terms = _recorded(monkeypatch, agent.client, "terms")
    read = _recorded(monkeypatch, agent.specs, "get")
    clock[0] += 60  # the peer's turns are over; it never came
    agent.slots.reserve(-1, Need(1, 0))  # a job of another flow holds the one slot
    agent.step()
    assert set(agent.waiting.jobs[WaitReason.TURN]) == behind and asked == terms == read == []
    agent.slots.release(-1)
    for _ in range(6):
        agent.step()
    assert {agent.book.phase(j) for j in posted} == {Phase.SUBMITTED}
    # Each job is read once, to see that its claim still stands before its result goes out.
    assert behind <= set(asked) and len(asked) == len(set(asked)) and terms == []


def test_a_posted_job_is_claimed_and_run_reading_it_once_before_its_result_goes_out(
    requester: MarketClient, store: LocalStore, agent_from: AgentFrom,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    job_id, _ = requester.post_job(_echo(store, "d"), 10**6, 60, 60)
    agent = agent_from(requester.block_number())
    asked = _recorded(monkeypatch, agent.client, "job")
    agent.step()
    assert requester.job(job_id).state == JobState.SUBMITTED
    # Decided from its post, run to the deadline its claim's event gave; read only to see
    # that the claim still stands (no reorg took it) before the result is sent.
    assert asked == [job_id]
    events = requester.events(agent.follower.cursor.block - 5, requester.block_number(), job_id)
    claimed = next(e for e in events if e.name == "JobClaimed")
    assert agent.book.jobs[job_id]["run_deadline"] == claimed.args["runDeadline"]


def test_a_post_is_not_left_to_a_worker_that_does_not_serve_its_kind(
    requester: MarketClient, other: MarketClient, store: LocalStore, agent_from: AgentFrom,
) -> None:  # fmt: skip
    start = requester.block_number() + 1
    other.register(["pythia8"])  # a worker of another kind, ranked first for some echo jobs
    agent = agent_from(start)
    agent.client.register(["echo"])
    posted = [requester.post_job(_echo(store, f"k{i}"), 10**6, 60, 60)[0] for i in range(6)]
    agent.step()  # sees both registrations, then the posts
    ahead = [j for j in posted if agent.order.rank(j) == 1]
    assert ahead, "six jobs, two workers: the other ranks first for some"
    assert agent.waiting.jobs[WaitReason.TURN] == {}  # none left to the pythia8 worker
    for _ in range(3):  # the jobs that waited for a slot
        agent.step()
    assert {requester.job(j).state for j in posted} == {JobState.SUBMITTED}

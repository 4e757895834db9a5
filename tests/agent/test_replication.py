"""agent/replication.py on its own, on a real anvil: a replica's digest is committed, then
revealed with the salt that opens the commitment, then the job is tallied, each step driven
by the chain's state. The host is a minimal FlowHost whose runs write fixed outputs."""

from __future__ import annotations

from pathlib import Path

from agent.host import JobBook, Produced
from agent.policy import Policy
from agent.replication import ReplicaFlow
from agent.specs import SpecCache
from hepx.anvil import Anvil
from hepx.chain import AssignmentStatus, JobState, MarketClient, Terms
from hepx.deployment import Deployment
from hepx.digest import canonical_digest
from hepx.spec import JobSpec, canonical_json, parse_spec
from hepx.store import LocalStore

PRICE = 10**6
STAKE = 10**15


class Host:
    """A FlowHost whose job runs write ``answer`` into outputs/answer.txt."""

    def __init__(self, client: MarketClient, store: LocalStore, state: Path, answer: str) -> None:
        self.client, self.store, self.specs = client, store, SpecCache(store)
        self.policy = Policy.model_validate({"kinds": {"echo": {"price": 1}}})
        self.book = JobBook(state / "jobs.json")
        self.address = client.sender
        self.state, self.answer = state, answer

    def produce_result(self, job_id: int, spec_cid: str, spec: JobSpec | None = None) -> Produced:
        workdir = self.state / "work" / str(job_id)
        outputs = workdir / "result" / "outputs"
        outputs.mkdir(parents=True)
        (outputs / "answer.txt").write_text(self.answer)
        result_cid = self.store.add_dir(workdir / "result")
        return Produced(result_cid, outputs, workdir, 0.1, canonical_digest("echo", outputs))

    def run_job(self, job_id: int, spec_cid: str, spec: JobSpec | None = None) -> None:
        raise AssertionError("a replicated job never runs as a single job")

    def run_replica(self, job_id: int, spec_cid: str, spec: JobSpec | None = None) -> None:
        raise AssertionError("the test drives the flow itself")

    def running(self, job_id: int) -> bool:
        return False  # the test runs each replica inline


def _client(anvil: Anvil, deployment: Deployment, account: int) -> MarketClient:
    return MarketClient.from_deployment(deployment, private_key=anvil.accounts[account].private_key)


def _replicated_job(
    anvil: Anvil, deployment: Deployment, store: LocalStore, replicas: tuple[int, int]
) -> tuple[int, str]:
    """A 2-of-2 job whose draw seats accounts ``replicas`` (staked before the post)."""
    for account in replicas:
        client = _client(anvil, deployment, account)
        if not client.worker(client.sender).registered:
            client.register(["echo"], STAKE)
    spec = parse_spec(
        {
            "apiVersion": "hepx/v1", "kind": "echo", "metadata": {"name": "replicas"},
            "resources": {"max_runtime": 20},
            "payment": {"max_price": PRICE, "claim_window": 60, "run_window": 60,
                        "replicas": 2, "reveal_window": 60},
        }
    )  # fmt: skip
    cid = store.add_bytes(canonical_json(spec))
    terms = Terms(PRICE, 60, 60, replicas=2, quorum=2, reveal_window=60)
    job_id, _ = _client(anvil, deployment, 1).post_job_with_terms(cid, terms)
    seated = [_client(anvil, deployment, account) for account in replicas]
    seated[0].rpc.request("evm_mine", [])  # the draw's seed is a later block's
    for client in seated:
        client.claim(job_id, PRICE)
    seated[0].rpc.request("evm_increaseTime", [61])  # past the match deadline
    seated[0].rpc.request("evm_mine", [])
    seated[0].award(job_id)
    return job_id, cid


def test_replica_commits_then_reveals_its_digest_and_tallies_once_all_revealed(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    job_id, spec_cid = _replicated_job(anvil, deployment, store, (2, 3))
    host = Host(_client(anvil, deployment, 2), store, tmp_path / "a", "42\n")
    other = _client(anvil, deployment, 3)
    host.book.set(job_id, phase="claiming")  # claimed by hand above
    host.book.set(job_id, phase="replica", spec_cid=spec_cid)
    flow = ReplicaFlow(host)

    flow.run(job_id, spec_cid)
    rec = host.book.jobs[job_id]
    assert rec["phase"] == "committed"
    digest, salt = bytes.fromhex(rec["digest"][2:]), bytes.fromhex(rec["salt"][2:])
    mine = host.client.assignment_of(job_id, host.address)
    assert mine is not None and mine.status is AssignmentStatus.COMMITTED
    assert mine.commitment == host.client.commitment(job_id, digest, salt)
    assert mine.commitment != other.commitment(job_id, digest, salt)  # bound to the worker
    outputs = tmp_path / "same"
    outputs.mkdir()
    (outputs / "answer.txt").write_text("42\n")
    assert digest.hex() == canonical_digest("echo", outputs).value[2:]  # the kind's digest

    flow.advance()  # the other replica has not committed: nothing to do yet
    assert host.book.jobs[job_id]["phase"] == "committed"
    other.commit_result(job_id, other.commitment(job_id, digest, b"\x05" * 32))
    flow.advance()  # all committed: reveal; the other has not revealed, so no tally yet
    assert host.book.jobs[job_id]["phase"] == "revealed"
    assert host.client.job(job_id).state is JobState.REVEALING
    other.reveal_result(job_id, digest, b"\x05" * 32, "bafyother")
    flow.advance()
    done = host.book.jobs[job_id]
    assert done["phase"] == "done" and done["final_state"] == "settled"
    assert done["replica"] == "paid"
    assert host.client.job(job_id).state is JobState.SETTLED


def test_replica_whose_run_failed_is_marked_and_commits_nothing(
    anvil: Anvil, deployment: Deployment, store: LocalStore, tmp_path: Path
) -> None:
    job_id, spec_cid = _replicated_job(anvil, deployment, store, (4, 5))
    host = Host(_client(anvil, deployment, 4), store, tmp_path / "b", "")
    host.produce_result = lambda *args, **kwargs: None  # type: ignore[assignment,method-assign]
    host.book.set(job_id, phase="claiming")  # claimed by hand above
    host.book.set(job_id, phase="replica", spec_cid=spec_cid)
    ReplicaFlow(host).run(job_id, spec_cid)
    assert host.book.jobs[job_id]["phase"] == "replica_failed"
    mine = host.client.assignment_of(job_id, host.address)
    assert mine is not None and mine.status is AssignmentStatus.ASSIGNED

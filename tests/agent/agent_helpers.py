"""A worker agent for tests that drive its loop by hand, and a client that loses answers."""

from __future__ import annotations

from collections.abc import Mapping

from agent.settlement import submit_and_settle
from agent.worker import WorkerAgent
from hepx.anvil import Anvil
from hepx.chain import MarketClient, TxResult
from hepx.deployment import Deployment
from hepx.errors import ChainError


class SteppedAgent(WorkerAgent):
    """step() also waits for the jobs it started in their slots and sends their results, so a
    test reads the outcome right after it (the real loop goes on while they run)."""

    def step(self) -> None:
        super().step()
        self.slots.join(timeout=120)
        # The results those jobs made go out, and earnings are withdrawn, as the real loop's
        # next round does.
        submit_and_settle(self.client, self.book, self.recovery)
        self.sweeps.submit_and_settle(running=False)
        self.earnings.withdraw()


class AnswerLost(MarketClient):
    """Its claims and bids reach the chain, but the answer is lost (the agent is killed or
    the RPC drops the connection between sending the transaction and writing its book)."""

    def claim_jobs(self, prices: Mapping[int, int]) -> tuple[list[int], TxResult | None]:
        super().claim_jobs(prices)
        raise ChainError("connection reset after the claim was sent")

    def bid(self, job_id: int, price: int, proof: list[bytes] | None = None) -> TxResult:
        super().bid(job_id, price, proof)
        raise ChainError("connection reset after the bid was sent")


def client_of(anvil: Anvil, deployment: Deployment, account: int) -> MarketClient:
    """A client of the market signing as anvil's dev account ``account``."""
    return MarketClient.from_deployment(deployment, private_key=anvil.accounts[account].private_key)

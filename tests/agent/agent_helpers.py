"""A worker agent for tests that drive its loop by hand."""

from __future__ import annotations

from agent.worker import WorkerAgent


class SteppedAgent(WorkerAgent):
    """step() also waits for the jobs it started in their slots, so a test reads the outcome
    right after it (the real loop goes on while they run)."""

    def step(self) -> None:
        super().step()
        self.slots.join(timeout=120)

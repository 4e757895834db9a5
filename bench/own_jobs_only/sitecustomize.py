"""Read at the start of every Python process with this folder on its PYTHONPATH, which
``bench/throughput.py --own-jobs-only`` gives the agents it starts: such an agent leaves
undecoded every post that another worker ranks first for, and every other worker's claim,
result and skipped batch item, and so stands in for nobody.

This is not a way to run a market (a post whose first-ranked worker is busy or gone waits for
it). It bounds what agents could save by sharing the chain's following (one follower per
machine, handing each agent only its own jobs): whatever 8 such agents still cost beyond 4 on
one machine is not the following's."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # every process with this folder on its path reads this file: no imports
    from hepx.chain.events import Skip


def own_jobs_only(agent: Any, kept: Skip | None) -> Skip:
    """The agent's skip rule, widened to every log about another worker's jobs."""
    from hepx.chain.events import address_topic  # loaded by now: agent.worker imports it

    me = address_topic(str(agent.address))

    def skip(name: str, topics: list[str]) -> bool:
        if name == "JobPosted":  # (jobId, requester) indexed
            return bool(agent.order.rank(int(topics[1], 16)) > 0)
        if name in ("JobClaimed", "ResultSubmitted", "BatchItemSkipped"):  # (jobId, worker)
            return topics[2] != me
        return kept is not None and kept(name, topics)

    return skip


class _PatchWorker(importlib.abc.MetaPathFinder):
    """Widens every WorkerAgent's skip rule once agent.worker is loaded."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "agent.worker":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def load_and_patch(module: ModuleType) -> None:
            load(module)
            init = module.WorkerAgent.__init__

            def patched(agent: Any, *args: Any, **kwargs: Any) -> None:
                init(agent, *args, **kwargs)
                agent.follower.skip = own_jobs_only(agent, agent.follower.skip)
                print("bench: this agent follows only its own jobs", file=sys.stderr)

            module.WorkerAgent.__init__ = patched

        spec.loader.exec_module = load_and_patch  # type: ignore[method-assign]
        return spec


if "agent" in sys.argv and "run" in sys.argv:
    sys.meta_path.insert(0, _PatchWorker())

"""The event index's rows for sweeps' jobs (ISweepCalls).

A sweep's jobs have no JobPosted: ``SweepPosted`` gives each of them its row (with the sweep's
id), ``LotClaimed`` its lot and worker, ``LotSubmitted`` its result, ``LotSettled`` /
``LotExpired`` / ``SweepRefunded`` its end. A job opened to a dispute (``LotJobOpened``) goes
on with its own events, as any job, and its lot's settlement leaves it alone.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from hepx.chain.enums import JobState
from hepx.chain.events import STATE_AFTER_EVENT, SWEEP_EVENTS

# Names its job (``jobId``), so it is indexed as that job's event.
OPENED = "LotJobOpened"


def apply_sweep_event(
    db: sqlite3.Connection,
    name: str,
    args: dict[str, Any],
    block: int,
    kind_of: Callable[[str], str | None] | None,
) -> None:
    """Move the rows of the sweep's (or lot's) jobs along for one of SWEEP_EVENTS."""
    if name == "SweepPosted":
        sweep_id = int(args["sweepId"])
        rows = [
            (sweep_id + i, kind_of(str(cid)) if kind_of else None, str(args["requester"]),
             str(args["price"]), str(cid), block, block, sweep_id)
            for i, cid in enumerate(args["specCids"])
        ]  # fmt: skip
        db.executemany(
            "INSERT OR REPLACE INTO jobs (job_id, state, kind, requester, max_price, spec_cid, "
            "posted_block, updated_block, sweep_id) VALUES (?, 'open', ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    elif name == "LotClaimed":
        lot, count = int(args["lotId"]), int(args["count"])
        db.execute(
            "UPDATE jobs SET state = ?, worker = ?, price = max_price, lot_id = ?, "
            "updated_block = ? WHERE job_id BETWEEN ? AND ?",
            (STATE_AFTER_EVENT[name].label, str(args["worker"]), lot, block, lot, lot + count - 1),
        )
    elif name == "LotSubmitted":
        lot = int(args["lotId"])
        db.executemany(
            "UPDATE jobs SET state = ?, result_cid = ?, updated_block = ? WHERE job_id = ?",
            [(STATE_AFTER_EVENT[name].label, str(cid), block, lot + i)
             for i, cid in enumerate(args["resultCids"])],
        )  # fmt: skip
    elif name in ("LotSettled", "LotExpired"):
        # Jobs opened to a dispute end by their own events.
        db.execute(
            "UPDATE jobs SET state = ?, updated_block = ?, expired_from = ? WHERE lot_id = ? "
            "AND job_id NOT IN (SELECT job_id FROM events WHERE name = ? AND job_id IS NOT NULL)",
            (STATE_AFTER_EVENT[name].label, block,
             JobState.CLAIMED.label if name == "LotExpired" else None, int(args["lotId"]), OPENED),
        )  # fmt: skip
    elif name == "SweepRefunded":
        db.execute(
            "UPDATE jobs SET state = ?, updated_block = ? WHERE sweep_id = ? AND lot_id IS NULL",
            (STATE_AFTER_EVENT[name].label, block, int(args["sweepId"])),
        )


def sweeps_touched(rows: Iterable[sqlite3.Row], db: sqlite3.Connection) -> set[int]:
    """The sweeps some of these (rolled back) events were about."""
    touched: set[int] = set()
    for row in rows:
        args = json.loads(row["args"])
        if "sweepId" in args:
            touched.add(int(args["sweepId"]))
        elif "lotId" in args:
            found = db.execute("SELECT sweep_id FROM jobs WHERE job_id = ?", (int(args["lotId"]),))
            if (hit := found.fetchone()) is not None and hit[0] is not None:
                touched.add(int(hit[0]))
    return touched


def replay_sweeps(
    db: sqlite3.Connection,
    sweeps: set[int],
    apply: Callable[[sqlite3.Row], None],
) -> None:
    """Rebuild the rows of ``sweeps`` from the events left (after a rollback): the sweeps'
    own events and those of their jobs opened to a dispute, in order, each through ``apply``
    (the index's)."""
    if not sweeps:
        return
    marks = ",".join("?" * len(sweeps))
    db.execute(f"DELETE FROM jobs WHERE sweep_id IN ({marks})", tuple(sweeps))
    spans: list[range] = []
    lots: set[int] = set()
    names = ",".join("?" * len(SWEEP_EVENTS))
    for row in db.execute(
        f"SELECT * FROM events WHERE name IN ({names}) OR job_id IS NOT NULL "
        "ORDER BY block, log_index",
        tuple(SWEEP_EVENTS),
    ).fetchall():
        args = json.loads(row["args"])
        name = row["name"]
        if name in SWEEP_EVENTS:
            sweep = args.get("sweepId")
            if (int(sweep) not in sweeps) if sweep is not None else int(args["lotId"]) not in lots:
                continue
            if name == "SweepPosted":
                spans.append(range(int(sweep), int(sweep) + len(args["specCids"])))
            elif name == "LotClaimed":
                lots.add(int(args["lotId"]))
        elif not any(int(row["job_id"]) in span for span in spans):
            continue
        apply(row)

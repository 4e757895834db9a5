"""One-line structured logs: ``time level logger key=value ...`` (job id and tx in each line)."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str = "INFO", name: str | None = None) -> None:
    prefix = f"{name} " if name else ""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)s {prefix}%(name)s %(message)s", "%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # web3 and httpx log every request at INFO/DEBUG; keep the agent's lines readable.
    for noisy in ("web3", "urllib3", "httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

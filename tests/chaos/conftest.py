"""The chaos tests run bench/chaos.py's scenarios at their short sizes (``--short``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

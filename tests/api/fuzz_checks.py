"""Checks schemathesis runs on every generated request (loaded by SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.check
def client_errors_say_what_was_wrong(ctx: Any, response: Any, case: Any) -> None:
    """A 4xx carries a JSON ``detail`` that names the problem, never an empty or bare status."""
    if not 400 <= response.status_code < 500:
        return
    try:
        detail = json.loads(response.content).get("detail")
    except (ValueError, AttributeError) as exc:
        raise AssertionError(f"{response.status_code} without a JSON detail: {exc}") from exc
    if not detail:
        raise AssertionError(f"{response.status_code} with an empty detail")

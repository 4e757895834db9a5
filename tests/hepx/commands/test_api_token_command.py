"""`hepx api token new|list|revoke`: the secret is printed once and only its hash is kept;
budgets and quotas are read as users write them; a revoked token stops working at once."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner, Result

from hepx.api_tokens import Scope, TokenBook, TokenRefused
from hepx.cli import app


def _cli(home: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["api", "token", *args], env={"HEPX_HOME": str(home)})


def test_a_new_token_is_shown_once_and_stored_only_as_a_hash(tmp_path: Path) -> None:
    made = _cli(tmp_path, "new", "gateway", "--budget", "0.5 ether", "--upload-quota", "2GiB")
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip()
    assert secret.startswith("hepx_") and len(secret) > 40
    stored = (tmp_path / "api-tokens.sqlite").read_bytes()
    assert secret.encode() not in stored
    with sqlite3.connect(tmp_path / "api-tokens.sqlite") as db:
        assert db.execute("SELECT count(*) FROM tokens").fetchone() == (1,)

    listed = json.loads(_cli(tmp_path, "list", "--json").stdout)
    assert listed == [{
        "name": "gateway", "scopes": ["jobs", "store"], "budget_wei": 5 * 10**17,
        "spent_wei": 0, "remaining_wei": 5 * 10**17, "upload_quota": 2 * 2**30,
        "uploaded": 0, "revoked": False,
    }]  # fmt: skip
    assert secret not in _cli(tmp_path, "list").stdout
    book = TokenBook(tmp_path / "api-tokens.sqlite")
    assert book.authenticate(secret, Scope.JOBS).name == "gateway"

    assert _cli(tmp_path, "revoke", "gateway").exit_code == 0
    try:
        book.authenticate(secret, Scope.JOBS)
    except TokenRefused as exc:
        assert exc.status == 403 and "revoked" in str(exc)
    else:
        raise AssertionError("a revoked token still authenticates")


def test_bad_names_amounts_and_repeats_are_refused_clearly(tmp_path: Path) -> None:
    assert _cli(tmp_path, "new", "ok-name", "--scope", "store").exit_code == 0
    for args, message in (
        (("new", "ok-name"), "exists"),
        (("new", "two words"), "use 1-64 letters"),
        (("new", "x", "--budget", "lots"), "cannot read amount"),
        (("new", "y", "--upload-quota", "9 parsecs"), "cannot read size"),
        (("revoke", "nobody"), "no token named 'nobody'"),
    ):
        result = _cli(tmp_path, *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
    assert _cli(tmp_path, "revoke", "ok-name").exit_code == 0
    again = _cli(tmp_path, "revoke", "ok-name")
    assert again.exit_code == 2 and "already revoked" in again.output

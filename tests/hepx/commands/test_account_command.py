"""`hepx account new|import|list|show` and signing with `--account`: keys live only in
encrypted keystores, passwords come from a prompt or a named environment variable."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from eth_account import Account
from typer.testing import CliRunner, Result

from hepx.anvil import Anvil
from hepx.chain import JobState, MarketClient, deploy_market
from hepx.cli import app
from hepx.deployment import Deployment

CID = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"
PASSWORD = "correct horse battery staple"


def _cli(home: Path, *args: str, **env: str) -> Result:
    base = {"HEPX_HOME": str(home), "HEPX_PRIVATE_KEY": "", "ACCOUNT_PW": PASSWORD}
    return CliRunner().invoke(app, list(args), env={**base, **env})


def test_a_new_account_is_an_encrypted_keystore_readable_only_by_its_owner(tmp_path: Path) -> None:
    made = _cli(tmp_path, "account", "new", "alice", "--password-env", "ACCOUNT_PW")
    assert made.exit_code == 0, made.output
    address = made.stdout.split(": ", 1)[1].split(" ", 1)[0]
    keystore = tmp_path / "keystores" / "alice.json"
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600
    data = json.loads(keystore.read_text())
    assert "crypto" in data and "ciphertext" in data["crypto"]
    key = Account.decrypt(data, PASSWORD)
    assert Account.from_key(key).address == address
    assert key.hex() not in keystore.read_text()  # no plain key anywhere in the file
    listed = _cli(tmp_path, "account", "list", "--json")
    assert json.loads(listed.stdout) == [{"name": "alice", "address": address}]
    shown = json.loads(_cli(tmp_path, "account", "show", "alice").stdout)
    assert shown["address"] == address and shown["keystore"] == str(keystore)


def test_import_takes_the_key_from_a_named_variable_and_refuses_what_it_should(
    node: Anvil, tmp_path: Path
) -> None:
    dev = node.accounts[3]
    done = _cli(tmp_path, "account", "import", "dev3", "--key-env", "DEV_KEY",
                "--password-env", "ACCOUNT_PW", DEV_KEY=dev.private_key)  # fmt: skip
    assert done.exit_code == 0, done.output
    assert dev.address.lower() in done.stdout.lower()
    again = _cli(tmp_path, "account", "import", "dev3", "--key-env", "DEV_KEY",
                 "--password-env", "ACCOUNT_PW", DEV_KEY=dev.private_key)  # fmt: skip
    assert again.exit_code == 1 and "exists already" in again.output
    bad_key = _cli(tmp_path, "account", "import", "junk", "--key-env", "DEV_KEY",
                   "--password-env", "ACCOUNT_PW", DEV_KEY="0x1234")  # fmt: skip
    assert bad_key.exit_code == 1 and "not a private key" in bad_key.output
    assert "0x1234" not in bad_key.output
    bad_name = _cli(tmp_path, "account", "new", "../evil", "--password-env", "ACCOUNT_PW")
    assert bad_name.exit_code == 1 and "account name" in bad_name.output
    unset = _cli(tmp_path, "account", "new", "bob", "--password-env", "NOT_SET")
    assert unset.exit_code == 2 and "NOT_SET" in unset.output
    no_tty = _cli(tmp_path, "account", "new", "bob")
    assert no_tty.exit_code == 2 and "no terminal" in no_tty.output


def test_a_command_signs_with_the_account_and_a_wrong_password_is_refused(
    node: Anvil, tmp_path: Path
) -> None:
    deployment: Deployment = deploy_market(node.url, node.accounts[0].private_key, 60)
    deployment.save(tmp_path / "deployment.json")
    requester = node.accounts[4]
    _cli(tmp_path, "account", "import", "req", "--key-env", "K", "--password-env", "ACCOUNT_PW",
         K=requester.private_key)  # fmt: skip
    client = MarketClient.from_deployment(deployment, private_key=requester.private_key)
    job_id, _ = client.post_job(CID, 10**15, 60, 60)
    wrong = _cli(tmp_path, "job", "cancel", str(job_id), "--account", "req",
                 HEPX_PASSWORD_ENV="WRONG_PW", WRONG_PW="not it")  # fmt: skip
    assert wrong.exit_code == 2 and "wrong password for account 'req'" in wrong.output
    assert client.job(job_id).state == JobState.OPEN
    done = _cli(tmp_path, "job", "cancel", str(job_id), "--account", "req",
                HEPX_PASSWORD_ENV="ACCOUNT_PW")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert client.job(job_id).state == JobState.CANCELLED
    missing = _cli(tmp_path, "job", "cancel", str(job_id), "--account", "nobody",
                   HEPX_PASSWORD_ENV="ACCOUNT_PW")  # fmt: skip
    assert missing.exit_code == 2 and "no account 'nobody'" in missing.output

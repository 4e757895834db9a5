"""Start and stop a local Anvil devnet (the native binary from the npm Foundry package).

The native binary is started, never the Node wrapper in ``node_modules/.bin``: killing the
wrapper would orphan anvil. Keys are read from the file anvil writes (``--config-out``), so no
key is hard-coded here.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from hepx.errors import ChainError, ChainUnavailable, ConfigError

_REPO_ROOT = Path(__file__).resolve().parent.parent


def foundry_binary(name: str) -> Path:
    """Path of a Foundry tool (``anvil``, ``cast``, ``forge``).

    Looked up in ``$HEPX_FOUNDRY_BIN``, then the project's ``node_modules``, then ``PATH``.
    """
    candidates: list[Path] = []
    if env := os.environ.get("HEPX_FOUNDRY_BIN"):
        candidates.append(Path(env) / name)
    for root in (Path.cwd(), _REPO_ROOT):
        candidates.append(
            root / "node_modules" / "@foundry-rs" / f"{name}-linux-amd64" / "bin" / name
        )
    if found := shutil.which(name):
        candidates.append(Path(found))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise ConfigError(
        f"{name} not found: run `npm install` in the hepx checkout (package.json pins "
        f"@foundry-rs/{name}) or set HEPX_FOUNDRY_BIN to the folder that holds it"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class DevAccount:
    address: str
    private_key: str


@dataclass
class Anvil:
    """A running anvil process; use as a context manager or call :meth:`stop`."""

    process: subprocess.Popen[bytes]
    url: str
    chain_id: int
    accounts: list[DevAccount]
    workdir: Path
    _owns_workdir: bool = field(default=False, repr=False)
    # How it was started, for restart(): the command, its environment and log file.
    _launch: tuple[list[str], dict[str, str], Path | None] | None = field(default=None, repr=False)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def restart(self, down: float) -> None:
        """Stop anvil, wait ``down`` seconds and start it again from the state it saved on
        the way down (an anvil started with ``state``): an outage of the chain's node."""
        if self._launch is None or "--state" not in self._launch[0]:
            raise ConfigError("restart needs an anvil started with a state file (state=...)")
        cmd, env, log_path = self._launch
        self.process.terminate()  # SIGTERM: anvil writes its state file, then exits
        self.process.wait(timeout=30)
        time.sleep(down)
        self.process = _launch_and_wait(cmd, env, log_path, self.url, 20.0)[0]

    def reorg(self, depth: int) -> None:
        """Replace the last ``depth`` blocks with as many empty ones (``anvil_reorg``): their
        transactions are gone, as a chain reorganisation orphans them."""
        body = {"jsonrpc": "2.0", "id": 1, "method": "anvil_reorg", "params": [depth, []]}
        answer = httpx.post(self.url, json=body, timeout=30).json()
        if "error" in answer:
            raise ChainError(f"anvil_reorg {depth}: {answer['error']}")

    def __enter__(self) -> Anvil:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_anvil(
    port: int | None = None,
    host: str = "127.0.0.1",
    workdir: Path | None = None,
    accounts: int = 10,
    block_time: float | None = None,
    log_path: Path | None = None,
    timeout: float = 20.0,
    wrap: Callable[[list[str]], list[str]] | None = None,
    state: Path | None = None,
) -> Anvil:
    """Start anvil and wait until it answers JSON-RPC.

    Its snapshot cache goes into ``workdir`` (a fresh temp dir unless given), not ``$HOME``.
    ``wrap`` turns the command into the one to run (e.g. inside a network namespace:
    hepx/hosts.py); it must exec anvil, so the process stays anvil's. With ``state`` anvil
    starts from that state file if it exists and writes it on exit (``restart()``).
    """
    port = port or free_port()
    owns = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="hepx-anvil-")) if workdir is None else workdir
    workdir.mkdir(parents=True, exist_ok=True)
    config_out = workdir / "anvil-accounts.json"
    config_out.unlink(missing_ok=True)
    cmd = [
        str(foundry_binary("anvil")),
        "--host",
        host,
        "--port",
        str(port),
        "--accounts",
        str(accounts),
        "--config-out",
        str(config_out),
        "--cache-path",
        str(workdir / "cache"),
    ]
    if block_time:
        cmd += ["--block-time", str(block_time)]
    if state:
        cmd += ["--state", str(state)]
    env = {**os.environ, "HOME": str(workdir)}
    cmd = wrap(cmd) if wrap else cmd
    url = f"http://{host}:{port}"
    process, chain_id = _launch_and_wait(cmd, env, log_path, url, timeout)
    deadline = time.monotonic() + timeout
    while not config_out.exists():
        if time.monotonic() > deadline:
            process.kill()
            raise ChainUnavailable(f"anvil wrote no {config_out} within {timeout:.0f} s")
        time.sleep(0.05)
    config = json.loads(config_out.read_text())
    dev_accounts = [
        DevAccount(address=addr, private_key=key)
        for addr, key in zip(config["available_accounts"], config["private_keys"], strict=True)
    ]
    return Anvil(process, url, chain_id, dev_accounts, workdir, owns, (cmd, env, log_path))


def _launch_and_wait(
    cmd: list[str], env: dict[str, str], log_path: Path | None, url: str, timeout: float
) -> tuple[subprocess.Popen[bytes], int]:
    """Start anvil and wait until it answers eth_chainId; the process and the chain id."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise ChainUnavailable(f"anvil exited with code {process.returncode}: {' '.join(cmd)}")
        try:
            reply = httpx.post(
                url,
                json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                timeout=1.0,
            )
            return process, int(reply.json()["result"], 16)
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise ChainUnavailable(f"anvil did not answer on {url} within {timeout:.0f} s")
        time.sleep(0.05)

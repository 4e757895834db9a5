"""The whole stack on one machine: anvil, the deployed market, the API and N worker agents.

Children run as subprocesses of this one, each with its own log file; a signal (Ctrl-C,
SIGTERM) or the death of any child stops them all, agents first and anvil last, so no anvil
is left orphaned.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from hepx.anvil import Anvil, DevAccount, free_port, start_anvil
from hepx.api_tokens import Scope, TokenBook
from hepx.chain import deploy_market
from hepx.config import load_settings
from hepx.deployment import Deployment
from hepx.devnet_containers import check_worker_image, worker_container_command
from hepx.errors import ChainUnavailable, ConfigError
from hepx.hosts import HostNetwork
from hepx.llm_build import BUILD_LOG, build_progress, build_running, llm_extra_missing
from hepx.llm_server import (
    LLM_KEY_ENV,
    LlmPlan,
    start_llm_server,
    write_local_policy,
)
from hepx.units import format_wei


@dataclass
class Devnet:
    home: Path
    anvil: Anvil
    deployment: Deployment
    api_url: str
    requester: DevAccount
    workers: list[DevAccount]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    llm_url: str | None = None  # the local LLM server's /v1 root, if one runs or will
    llm_joins_later: bool = False  # its llama.cpp build is still running
    stopping: threading.Event = field(default_factory=threading.Event)
    network: HostNetwork | None = None  # separate hosts (network namespaces), if any
    # The API listens beyond loopback (separate hosts): its calls that spend or store need a
    # token, which the devnet makes for its workers and its user.
    api_token: str | None = None
    # How each child was started, so a fault-injection run can start it again (restart()).
    launches: dict[str, tuple[list[str], dict[str, str], list[str] | None]] = field(
        default_factory=dict
    )

    @property
    def logs(self) -> Path:
        return self.home / "devnet" / "logs"

    def stop(self) -> None:
        self.stopping.set()  # a late LLM server (join_llm_when_built) is not started after this
        for proc in reversed(list(self.processes.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in list(self.processes.values()):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # its job processes too
                proc.wait()
        self.anvil.stop()
        if self.network:
            self.network.teardown()

    def kill_host(self, worker: int) -> None:
        """Worker host ``worker`` (1-based) disappears: everything on it is SIGKILLed, its
        namespace and its state folder deleted (separate hosts only)."""
        if self.network is None:
            raise ConfigError("kill_host needs a devnet with separate hosts")
        proc = self.processes.pop(f"worker-{worker}")
        self.network.remove(self.network.workers[worker - 1])
        proc.wait()
        shutil.rmtree(self.home / "devnet" / f"host-{worker}", ignore_errors=True)

    def spawn(
        self, name: str, args: list[str], env: dict[str, str], command: list[str] | None = None
    ) -> subprocess.Popen[bytes]:
        self.launches[name] = (args, env, command)
        self.processes[name] = _spawn(name, args, env, self.logs, command)
        return self.processes[name]

    def kill(self, name: str) -> None:
        """SIGKILL child ``name`` and everything it started (its job processes too), as a
        crash or an out-of-memory kill would."""
        proc = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        """Start child ``name`` again as it was first started (same state folder)."""
        if (proc := self.processes.get(name)) is not None and proc.poll() is None:
            raise ConfigError(f"{name} is still running (pid {proc.pid})")
        return self.spawn(name, *self.launches[name])

    def dead_child(self) -> str | None:
        for name, proc in list(self.processes.items()):  # the LLM joiner may add one
            if proc.poll() is not None:
                return f"{name} exited with code {proc.returncode} (log: {self.logs / name}.log)"
        if self.anvil.process.poll() is not None:
            return f"anvil exited with code {self.anvil.process.returncode}"
        return None

    def summary(self) -> str:
        chain_host = f" on host {self.network.chain.netns}" if self.network else ""
        lines = [
            f"hepx devnet is up{chain_host}",
            f"  chain     {self.anvil.url}  (chain id {self.anvil.chain_id})",
            f"  JobMarket {self.deployment.job_market}"
            f"  (deployment file {self.home / 'deployment.json'})",
            f"  API       {self.api_url}  (OpenAPI {self.api_url}/docs; custodial: it posts "
            "plain specs from the requester key below)",
            f"  store     {self.home / 'store'}",
            f"  logs      {self.logs}",
            f"  requester {self.requester.address}  key {self.requester.private_key}",
            f"  stakes    jobs taken above {format_wei(self.deployment.stake_free_limit)} need a "
            "worker stake of their price (a devnet relaxation: on a public chain every paid "
            "job is staked)",
        ]
        if self.llm_url and self.llm_joins_later:
            lines.append(
                f"  LLM       {self.llm_url}  joins when its llama.cpp build ends "
                f"({build_progress()}; log {BUILD_LOG}); llm.* jobs wait until then"
            )
        elif self.llm_url:
            lines.append(f"  LLM       {self.llm_url}  (llama.cpp server, packaged SmolLM2-135M)")
        for i, worker in enumerate(self.workers, 1):
            lines.append(f"  worker-{i}  {worker.address}  key {worker.private_key}")
            if self.network:
                host = self.network.workers[i - 1]
                lines.append(
                    f"            host {host.netns} ({host.address}), own store "
                    f"{self.home / 'devnet' / f'host-{i}' / 'store'}, data via {self.api_url}"
                )
        if self.api_token:
            lines.append(f"  API token {self.api_token}  (export HEPX_API_TOKEN=...)")
        lines += [
            "  (anvil's well-known dev keys: for this devnet only)",
            "",
            "  try: hepx job submit examples/pythia-dijet.yaml --wait",
            "  stop: Ctrl-C",
        ]
        return "\n".join(lines)


def _spawn(
    name: str,
    args: list[str],
    env: dict[str, str],
    logs: Path,
    command: list[str] | None = None,
) -> subprocess.Popen[bytes]:
    log_file = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the child
    return subprocess.Popen(
        command or [sys.executable, "-m", "hepx", *args],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env={**os.environ, **env},
        start_new_session=True,  # its own process group: kill() takes its job processes too
    )


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"the API exited with code {proc.returncode} while starting")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise ChainUnavailable(f"the API at {url} did not become healthy within {timeout:.0f} s")


def start_devnet(
    home: Path,
    workers: int = 2,
    anvil_port: int = 8545,
    api_port: int = 8000,
    challenge_window: int = 10,
    policy: Path | None = None,
    worker_policies: Sequence[Path] = (),
    host: str = "127.0.0.1",
    worker_image: str | None = None,
    llm: LlmPlan = "off",
    llm_port: int | None = None,
    llm_api_key: str | None = None,
    separate_hosts: bool = False,
    chain_state: bool = False,
) -> Devnet:
    """Start a fresh devnet under ``home``; the caller must call ``stop()``.

    With ``separate_hosts`` the chain and the API run on one host and each worker on its own
    (network namespaces: hepx/hosts.py), each worker with its own store and state folder,
    reaching the chain by RPC and data only through the API's trustless gateway (and
    publishing its results there).
    With ``worker_image`` the agents run in containers from that image (devnet_containers).
    ``worker_policies`` are the first workers' own policies, in turn (the rest run ``policy``):
    a market whose workers serve different kinds.
    With ``chain_state`` anvil keeps its state in a file, so ``devnet.anvil.restart()`` brings
    the same chain back (an outage of its node).
    With ``llm`` "now" a local LLM server runs too (hepx/llm_server.py), with "when_built"
    it joins once the background build of the llm extra ends; unless ``policy`` is given,
    the workers' policy points at it (they keep llm.* jobs waiting while it does not
    answer); ``llm_api_key`` makes the server require a key, which the workers get by
    environment only.
    """
    if workers < 0 or workers > 9:
        raise ConfigError("--workers must be between 0 and 9 (anvil has 10 dev accounts)")
    if separate_hosts and (llm != "off" or worker_image):
        raise ConfigError("--separate-hosts runs neither the LLM server nor container workers")
    for name, port in (("anvil", anvil_port), ("API", api_port)):
        if not separate_hosts and not _port_free(host, port):
            raise ConfigError(
                f"port {port} on {host} is in use (another devnet?): stop it or pick another "
                f"with --{name.lower()}-port"
            )
    docker = check_worker_image(worker_image) if worker_image else None
    home = home.resolve()  # containerised workers see it at the same absolute path
    devdir = home / "devnet"
    # A new anvil is a new chain: old cursors and job books would point at nothing.
    shutil.rmtree(devdir, ignore_errors=True)
    (devdir / "logs").mkdir(parents=True)
    network = HostNetwork.create(anvil_port, workers) if separate_hosts else None
    if network:
        host = network.chain_address
    try:
        anvil = start_anvil(
            port=anvil_port, host=host, workdir=devdir / "anvil",
            log_path=devdir / "logs" / "anvil.log", wrap=network.chain.command if network else None,
            state=devdir / "anvil" / "state.json" if chain_state else None,
        )  # fmt: skip
    except BaseException:
        if network:
            network.teardown()
        raise
    devnet: Devnet | None = None
    try:
        requester = anvil.accounts[0]
        deployment = deploy_market(anvil.url, requester.private_key, challenge_window)
        deployment.save(home / "deployment.json")
        api_url = f"http://{host}:{api_port}"
        devnet = Devnet(
            home, anvil, deployment, api_url, requester, anvil.accounts[1 : 1 + workers],
            network=network,
        )  # fmt: skip
        base_env = {
            "HEPX_HOME": str(home),
            "HEPX_RPC_URL": anvil.url,
            "HEPX_DEPLOYMENT": str(home / "deployment.json"),
            "HEPX_STORE_DIR": str(home / "store"),
            "HEPX_API_URL": api_url,
        }
        llm_env: dict[str, str] = {}
        if llm == "now":
            server = start_llm_server(
                llm_port or free_port(), devnet.logs / "llm.log", host, llm_api_key
            )
            devnet.processes["llm"] = server.process  # stopped last, after the workers
            devnet.llm_url = server.base_url
        elif llm == "when_built":
            port = llm_port or free_port()
            devnet.llm_url, devnet.llm_joins_later = f"http://{host}:{port}/v1", True
            threading.Thread(
                target=join_llm_when_built,
                args=(devnet, port, host, llm_api_key),
                name="llm-joiner",
                daemon=True,
            ).start()
        if devnet.llm_url:
            if llm_api_key:
                llm_env[LLM_KEY_ENV] = llm_api_key  # workers only, never the API
            if policy is None:
                key_env = LLM_KEY_ENV if llm_api_key else None
                policy = write_local_policy(devdir / "policy.yaml", devnet.llm_url, key_env)
        if network:
            # Beyond loopback the API wants a token for spending and storing (the workers
            # publish their results to it): one for this devnet, budget for a day of jobs.
            book = TokenBook(load_settings(home=home).tokens_file)  # where the API reads them
            devnet.api_token, _ = book.create("devnet", tuple(Scope), 10**21, 100 * 2**30)
            base_env["HEPX_API_TOKEN"] = devnet.api_token
        api_args = ["api", "run", "--host", host, "--port", str(api_port), "--custodial"]
        devnet.spawn(
            "api",
            api_args,
            {**base_env, "HEPX_PRIVATE_KEY": requester.private_key},
            network.chain.command([sys.executable, "-m", "hepx", *api_args]) if network else None,
        )
        for i, worker in enumerate(devnet.workers, 1):
            args = ["agent", "run", "--state-dir", str(devdir / f"worker-{i}")]
            own_policy = worker_policies[i - 1] if i <= len(worker_policies) else policy
            if own_policy:
                args += ["--policy", str(own_policy)]
            env = {**base_env, **llm_env, "HEPX_PRIVATE_KEY": worker.private_key}
            if network:
                own = devdir / f"host-{i}"
                env |= _own_host_env(own, deployment, api_url)
                args[3] = str(own / "agent")
                command = network.workers[i - 1].command([sys.executable, "-m", "hepx", *args])
                devnet.spawn(f"worker-{i}", args, env, command)
            elif docker and worker_image:
                name = f"hepx-devnet-{anvil_port}-worker-{i}"
                command = worker_container_command(
                    docker, name, worker_image, home, args, env, own_policy
                )
                devnet.spawn(f"worker-{i}", args, env, command)
            else:
                devnet.spawn(f"worker-{i}", args, env)
        _wait_healthy(api_url, devnet.processes["api"])
        return devnet
    except BaseException:
        if devnet is not None:
            devnet.stop()
        else:
            anvil.stop()
        raise


def _own_host_env(folder: Path, deployment: Deployment, api_url: str) -> dict[str, str]:
    """A worker host's own home, store and copy of the deployment; data only by gateway."""
    folder.mkdir(parents=True)
    deployment.save(folder / "deployment.json")
    return {
        "HEPX_HOME": str(folder),
        "HEPX_DEPLOYMENT": str(folder / "deployment.json"),
        "HEPX_STORE_DIR": str(folder / "store"),
        "HEPX_GATEWAY_URL": api_url,
        "HEPX_PUBLISH_URL": api_url,
    }


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def join_llm_when_built(
    devnet: Devnet,
    port: int,
    host: str,
    api_key: str | None,
    say: Callable[[str], None] = _say,
    poll: float = 2.0,
    progress_every: float = 30.0,
) -> None:
    """Wait for the background build of the llm extra, saying how far it is, then start the
    LLM server on the port the workers' policy already names."""
    last_said = time.monotonic()
    while build_running():
        if devnet.stopping.wait(poll):
            return
        if time.monotonic() - last_said >= progress_every:
            say(f"llm: still building ({build_progress()}); llm.* jobs wait")
            last_said = time.monotonic()
    if (missing := llm_extra_missing()) is not None:
        say(f"llm: the build ended without the llm extra ({missing}; log {BUILD_LOG}); "
            "llm.* jobs stay declined")  # fmt: skip
        return
    if devnet.stopping.is_set():
        return

    def register(process: subprocess.Popen[bytes]) -> None:
        devnet.processes["llm"] = process  # from now on stop() stops it too
        if devnet.stopping.is_set():
            process.terminate()

    try:
        server = start_llm_server(port, devnet.logs / "llm.log", host, api_key, started=register)
    except ConfigError as exc:
        if not devnet.stopping.is_set():
            say(f"llm: the server did not start: {exc}")
        return
    devnet.llm_joins_later = False
    say(f"llm: the LLM server joined at {server.base_url}; llm.* jobs are taken now")


def run_devnet(devnet: Devnet, stop: threading.Event) -> str | None:
    """Block until ``stop`` is set or a child dies; stop everything; say why it ended."""
    reason: str | None = None
    try:
        while not stop.wait(0.5):
            if (reason := devnet.dead_child()) is not None:
                break
    finally:
        devnet.stop()
    return reason

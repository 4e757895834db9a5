"""``python -m agent.kinds KIND --spec SPEC --inputs DIR --outputs DIR``: run one job.

Exit 0 on success. On failure print one line ``error: ...`` on stderr (the last line of the
job's log, which the agent reports) and exit 1. Progress goes to stderr as ``progress: ...``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, cast

from agent.kinds import RUNNERS
from hepx.errors import ExecutionError, HepxError
from hepx.spec import JobSpec, load_spec_file


class _Runner(Protocol):
    def __call__(
        self,
        spec: JobSpec,
        inputs_dir: Path,
        outputs_dir: Path,
        progress: Callable[[str], None],
    ) -> None: ...


def _progress(message: str) -> None:
    print(f"progress: {message}", file=sys.stderr, flush=True)


def _run(kind: str, spec_path: Path, inputs_dir: Path, outputs_dir: Path) -> None:
    spec = load_spec_file(spec_path)
    if spec.kind != kind:
        raise ExecutionError(f"spec {spec_path} is of kind {spec.kind!r}, not {kind!r}")
    for label, folder in (("inputs", inputs_dir), ("outputs", outputs_dir)):
        if not folder.is_dir():
            raise ExecutionError(f"{label} folder {folder} does not exist")
    module = importlib.import_module(RUNNERS[kind])
    run = cast(_Runner, module.run)
    run(spec, inputs_dir, outputs_dir, _progress)


def _flush_native_stdout() -> None:
    # Pythia and FastJet write through C stdio; flush it so their text lands before our
    # error line instead of after it (the agent reports the log's last line).
    sys.stdout.flush()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).fflush(None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.kinds", description=__doc__)
    parser.add_argument("kind", choices=sorted(RUNNERS), help="job kind to run")
    parser.add_argument("--spec", type=Path, required=True, help="job spec file (JSON or YAML)")
    parser.add_argument("--inputs", type=Path, required=True, help="folder with the inputs")
    parser.add_argument("--outputs", type=Path, required=True, help="empty folder for outputs")
    args = parser.parse_args(argv)
    try:
        _run(args.kind, args.spec, args.inputs, args.outputs)
    except HepxError as exc:
        _flush_native_stdout()
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # a bug in a runner: still one clear line for the agent
        _flush_native_stdout()
        detail = " ".join(str(exc).split())
        print(f"error: {args.kind} runner crashed: {type(exc).__name__}: {detail}", file=sys.stderr)
        return 1
    _flush_native_stdout()
    return 0


if __name__ == "__main__":
    sys.exit(main())

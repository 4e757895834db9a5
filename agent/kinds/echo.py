"""Kind ``echo``: the outputs are the inputs, plus params.message in message.txt.

It does no work of its own, so a round trip of an echo job measures the market itself.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from hepx.errors import ExecutionError
from hepx.kinds.echo import EchoJob
from hepx.spec import JobSpec


def run(
    spec: JobSpec, inputs_dir: Path, outputs_dir: Path, progress: Callable[[str], None]
) -> None:
    if not isinstance(spec, EchoJob):
        raise ExecutionError(f"the echo runner cannot run a {spec.kind!r} job")
    params = spec.params
    if params.sleep_seconds:
        progress(f"sleeping {params.sleep_seconds:g} s")
        time.sleep(params.sleep_seconds)
    if params.fail:
        raise ExecutionError(f"echo job failed on request: {params.fail}")
    if params.message:
        (outputs_dir / "message.txt").write_text(params.message, encoding="utf-8")
    for i, ref in enumerate(spec.inputs, start=1):
        source = inputs_dir / ref.name
        if source.is_dir():  # a folder input (another job's result, in a workflow)
            shutil.copytree(source, outputs_dir / ref.name)
        elif source.is_file():
            shutil.copyfile(source, outputs_dir / ref.name)
        else:
            raise ExecutionError(f"input {ref.name!r} ({ref.cid}) is missing from {inputs_dir}")
        progress(f"copied {ref.name} ({i}/{len(spec.inputs)})")

"""Kind ``echo``: the outputs are the inputs (plus an optional message); it measures the market."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from hepx.kinds.kind import DigestMethod, Kind, Pricing, Sandbox
from hepx.spec_fields import JobSpec, Strict


class EchoParams(Strict):
    """Echo: the outputs are the inputs (plus an optional message); measures the market itself."""

    message: str = Field(
        default="", max_length=65_536, description="Written to message.txt if non-empty"
    )
    sleep_seconds: float = Field(
        default=0,
        ge=0,
        le=3600,
        description="Seconds to wait before finishing (to exercise timeouts)",
    )
    fail: str = Field(
        default="", max_length=1000, description="If non-empty, the job fails with this message"
    )


class EchoJob(JobSpec):
    """A job of kind ``echo``."""

    kind: Literal["echo"] = Field(description="Job kind")
    params: EchoParams = Field(default_factory=EchoParams)

    @model_validator(mode="after")
    def _message_has_its_own_file(self) -> EchoJob:
        if self.params.message and any(ref.name == "message.txt" for ref in self.inputs):
            raise ValueError(
                "inputs: an input named 'message.txt' would clash with params.message's output "
                "file; rename the input or drop the message"
            )
        return self


KIND = Kind(
    "echo", EchoJob, DigestMethod.BYTES, Sandbox.PROCESS, Pricing.FLAT, 10**9, reuses_process=True
)

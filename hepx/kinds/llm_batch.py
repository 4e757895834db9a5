"""Kind ``llm.batch``: a JSONL file of chat requests (an input) answered line by line."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from hepx.kinds.kind import NOT_REPRODUCIBLE, DigestMethod, Kind, Pricing, Sandbox
from hepx.llm import LlmBatchParams
from hepx.spec_fields import JobSpec


class LlmBatchJob(JobSpec):
    """A job of kind ``llm.batch``: a JSONL file of chat requests (an input) -> answers."""

    kind: Literal["llm.batch"] = Field(description="Job kind")
    params: LlmBatchParams

    @model_validator(mode="after")
    def _requests_are_an_input(self) -> LlmBatchJob:
        if all(ref.name != self.params.requests for ref in self.inputs):
            raise ValueError(
                f"params.requests: no input is named {self.params.requests!r}; add the JSONL "
                "file of requests to inputs"
            )
        return self


KIND = Kind(
    "llm.batch",
    LlmBatchJob,
    DigestMethod.BYTES,
    Sandbox.PROCESS,
    Pricing.PER_TOKEN,
    10**9,
    not_disputable=NOT_REPRODUCIBLE,
    reuses_process=True,
)

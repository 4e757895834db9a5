"""Kind ``llm.chat``: one chat completion from an OpenAI-compatible endpoint (params in
hepx.llm)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hepx.kinds.kind import NOT_REPRODUCIBLE, DigestMethod, Kind, Pricing, Sandbox
from hepx.llm import LlmChatParams
from hepx.spec_fields import JobSpec


class LlmChatJob(JobSpec):
    """A job of kind ``llm.chat``: one chat completion (params in hepx.llm)."""

    kind: Literal["llm.chat"] = Field(description="Job kind")
    params: LlmChatParams


KIND = Kind(
    "llm.chat",
    LlmChatJob,
    DigestMethod.BYTES,
    Sandbox.PROCESS,
    Pricing.PER_TOKEN,
    10**9,
    not_disputable=NOT_REPRODUCIBLE,
    reuses_process=True,
)

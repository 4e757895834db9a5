"""Kind ``key4hep``: ``k4run`` with a steering file in a Key4hep image."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from hepx.kinds.container import SandboxParams, check_image
from hepx.kinds.kind import DigestMethod, Kind, Pricing, Sandbox
from hepx.spec_fields import InputRef, JobSpec

DEFAULT_KEY4HEP_IMAGE = "ghcr.io/key4hep/key4hep-images/alma9:latest"
DEFAULT_KEY4HEP_SETUP = "/cvmfs/sw.hsf.org/key4hep/setup.sh"


class Key4hepParams(SandboxParams):
    """``k4run`` with a steering file in a Key4hep image (or with the CVMFS setup script)."""

    image: Annotated[str, AfterValidator(check_image)] = Field(
        default=DEFAULT_KEY4HEP_IMAGE, description="Key4hep image to run k4run in"
    )
    steering: InputRef = Field(
        description="Steering (options) file by CID; k4run reads it from /inputs/<name>"
    )
    args: list[Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=list, max_length=200, description="Extra k4run arguments"
    )
    setup_script: str = Field(
        default=DEFAULT_KEY4HEP_SETUP,
        pattern=r"^/[^\x00\n]*$",
        description="Sourced before k4run when it exists (the Key4hep stack on CVMFS)",
    )


class Key4hepJob(JobSpec):
    """A job of kind ``key4hep``."""

    kind: Literal["key4hep"] = Field(description="Job kind")
    params: Key4hepParams

    @model_validator(mode="after")
    def _steering_has_its_own_name(self) -> Key4hepJob:
        if any(ref.name == self.params.steering.name for ref in self.inputs):
            raise ValueError(
                f"inputs: an input is named {self.params.steering.name!r} like the steering "
                "file; both land in /inputs, so rename one"
            )
        return self


KIND = Kind("key4hep", Key4hepJob, DigestMethod.BYTES, Sandbox.CONTAINER, Pricing.FLAT, 10**15)

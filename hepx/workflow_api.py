"""The REST API's /jobs routes as the workflow runner uses them."""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from hepx.errors import ApiUnavailable, WorkflowError
from hepx.http_client import request


class JobsApi(Protocol):
    def post_job(self, spec: dict[str, Any]) -> dict[str, Any]: ...

    def post_jobs(self, specs: list[dict[str, Any]], sweep: bool = False) -> dict[str, Any]:
        """Post fast-path specs sharing their windows in one transaction: ``{"tx_hash",
        "jobs": [{"job_id", ...}, ...]}``, the jobs in the specs' order; ``sweep``: as one
        sweep (specs of one max price, taken by workers in lots)."""
        ...

    def get_job(self, job_id: int) -> dict[str, Any]: ...

    def find_job(self, spec_cid: str) -> int | None:
        """The job posted with this spec, if the API's index has one."""
        ...


class HttpJobsApi:
    """The REST API's /jobs routes."""

    def __init__(
        self, base_url: str, timeout: float = 60.0, headers: dict[str, str] | None = None
    ) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.headers = headers or {}  # the caller's API token, where the API wants one

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        url = f"{self.base}{path}"
        try:
            reply = request(method, url, timeout=self.timeout, headers=self.headers, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiUnavailable(f"the API at {url} is unreachable: {exc}") from exc
        if reply.status_code >= 500:
            raise ApiUnavailable(f"{method} {path} failed ({reply.status_code}): {reply.text}")
        if reply.status_code >= 400:
            try:
                detail = reply.json().get("detail", reply.text)
            except ValueError:
                detail = reply.text
            raise WorkflowError(f"{method} {path} failed ({reply.status_code}): {detail}")
        result: dict[str, Any] = reply.json()
        return result

    def post_job(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/jobs", json=spec)

    def post_jobs(self, specs: list[dict[str, Any]], sweep: bool = False) -> dict[str, Any]:
        return self._call("POST", "/jobs/batch", json={"specs": specs, "sweep": sweep})

    def get_job(self, job_id: int) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}")

    def find_job(self, spec_cid: str) -> int | None:
        found = self._call("GET", "/jobs", params={"spec_cid": spec_cid, "per_page": 1})
        return int(found["items"][0]["job_id"]) if found["items"] else None

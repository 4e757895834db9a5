"""Who may make the API spend its key or fill its disk: custodial mode and API tokens.

The rules (README, "Who may spend what"):

- **Custodial mode off** (the default): the API spends no money of its own. ``POST /jobs``
  takes only requests signed by their requester, which it relays (paying gas only); a dispute
  is made from the disputer's own account (``hepx job dispute``).
- **Custodial mode on** (``HEPX_CUSTODIAL``, for science gateways whose users have no wallet):
  ``POST /jobs`` with a plain spec and ``POST /jobs/{id}/dispute`` are paid from the API's key.
- A call that spends the API's key or stores (``POST /ipfs``) needs a bearer token with the
  matching scope as soon as any token exists or the API listens beyond loopback; what it spends
  or stores is counted against the token's budget or quota before it happens.
- Custodial mode on a non-loopback address with no token: the API refuses to start.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Annotated

from fastapi import FastAPI, HTTPException, Request, Response, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.limits import is_loopback
from api.services import Services
from hepx.api_tokens import Scope, TokenBook, TokenRecord, TokenRefused
from hepx.config import Settings
from hepx.errors import ConfigError

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiToken",
    description="An API token from `hepx api token new` (needed to spend the API's key or "
    "store, once a token exists or the API listens beyond loopback)",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def check_exposure(settings: Settings, book: TokenBook) -> None:
    """Refuse to serve an open wallet: custodial mode beyond loopback with no token."""
    if settings.custodial and not is_loopback(settings.api_host) and not book.has_active():
        raise ConfigError(
            f"custodial mode on {settings.api_host} (not loopback) with no API token would "
            "let anyone spend this API's key: make one with `hepx api token new NAME --budget "
            "AMOUNT`, listen on 127.0.0.1, or turn HEPX_CUSTODIAL off"
        )


def require_custodial(settings: Settings, what: str) -> None:
    if not settings.custodial:
        raise HTTPException(
            403,
            f"{what} would be paid from this API's key, and custodial mode is off: sign a "
            "job request with your own wallet instead (POST /jobs/requests, then POST /jobs "
            "with the signature, as the explorer's /wallet page does), or pay from your own "
            "account (`hepx job submit --account NAME`, `hepx job dispute`)",
        )


def token_for(services: Services, credentials: Credentials, scope: Scope) -> TokenRecord | None:
    """The caller's token for ``scope``; None where no token is needed and none was sent."""
    if credentials is None:
        needed = services.tokens.has_active() or not is_loopback(services.settings.api_host)
        if not needed:
            return None
        raise HTTPException(
            401,
            f"this call needs an API token with scope '{scope}' (Authorization: Bearer ...); "
            "the API's operator makes one with `hepx api token new`",
            headers=_CHALLENGE,
        )
    return services.tokens.authenticate(credentials.credentials, scope)


def spending(
    services: Services, token: TokenRecord | None, amount: int, what: str
) -> AbstractContextManager[None]:
    """``amount`` wei counted against the caller's token (none: nothing to count)."""
    return nullcontext() if token is None else services.tokens.spending(token.name, amount, what)


def uploading(
    services: Services, token: TokenRecord | None, size: int
) -> AbstractContextManager[None]:
    """``size`` bytes counted against the caller's token's quota (none: nothing to count)."""
    return nullcontext() if token is None else services.tokens.uploading(token.name, size)


def install_access(app: FastAPI) -> None:
    async def on_refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TokenRefused)
        headers = _CHALLENGE if exc.status == 401 else None
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=headers)

    app.add_exception_handler(TokenRefused, on_refused)

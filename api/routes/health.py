"""``/health``: whether the chain, the market contract and the store are usable."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from api.models import ChainHealth, HealthOut
from api.services import ServicesDep
from hepx.errors import ChainError, ConfigError, NoContract, StoreError

router = APIRouter()


@router.get(
    "/health",
    summary="Whether the chain, the market contract and the store are usable",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "Degraded: see problems"}},
)
def health(services: ServicesDep) -> Response:
    settings = services.settings
    problems: list[str] = []
    chain = ChainHealth(rpc_url=settings.rpc_url)
    market: str | None = None
    try:
        deployment = services.deployment()
        market = deployment.job_market
        client = services.client()
        chain.chain_id = client.chain_id()
        chain.block = client.block_number()
        if chain.chain_id != deployment.chain_id:
            problems.append(
                f"RPC {settings.rpc_url} serves chain {chain.chain_id} but the deployment is "
                f"for chain {deployment.chain_id}"
            )
        else:
            client.job_count()  # proves a JobMarket answers at the address
    except ConfigError as exc:
        chain.error = f"not checked: {exc}"
        problems.append(str(exc))
    except NoContract:
        problems.append(
            f"no JobMarket contract answers at {market} on {settings.rpc_url}: redeploy"
        )
    except ChainError as exc:
        chain.error = str(exc)
        problems.append(f"chain unavailable: {exc}")
    try:
        services.store()
    except StoreError as exc:
        problems.append(f"store: {exc}")
    body = HealthOut(
        status="degraded" if problems else "ok",
        chain=chain,
        market=market,
        store=str(settings.store_path),
        problems=problems,
    )
    return JSONResponse(body.model_dump(), status_code=503 if problems else 200)

"""Deploying the market (and, on a devnet, the open-mint test token)."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from hepx.artifacts import load_artifact
from hepx.chain.rpc import Rpc
from hepx.chain.types import DEVNET_CHAIN_ID, DEVNET_STAKE_FREE_LIMIT
from hepx.deployment import Deployment
from hepx.errors import ChainError


def deploy_market(
    rpc_url: str,
    private_key: str,
    challenge_window: int = 60,
    test_token: bool | None = None,
    stake_free_limit: int | None = None,
) -> Deployment:
    """Deploy JobMarket (also the worker registry) and describe it as a Deployment.

    The market's second code contract, MarketCalls, is deployed first (the market's
    constructor takes its address and checks it was built with the same parameters).

    ``test_token`` also deploys the open-mint TestToken for ERC-20 jobs; by default only on a
    devnet (chain id 31337), never elsewhere. ``stake_free_limit`` (wei) is the highest price
    a job is taken at without a stake: by default 0 (every paid job staked) except on a
    devnet, where it is DEVNET_STAKE_FREE_LIMIT so that unstaked workers can try things.
    """
    artifact = load_artifact("JobMarket")
    rpc = Rpc(rpc_url)
    account = Account.from_key(private_key)
    chain_id = rpc.chain_id()
    if stake_free_limit is None:
        stake_free_limit = DEVNET_STAKE_FREE_LIMIT if chain_id == DEVNET_CHAIN_ID else 0
    calls = load_artifact("MarketCalls")
    calls_receipt = _deploy(
        rpc, account, chain_id, calls.abi, calls.bytecode, challenge_window, stake_free_limit
    )
    receipt = _deploy(
        rpc, account, chain_id, artifact.abi, artifact.bytecode, challenge_window,
        stake_free_limit, calls_receipt["contractAddress"],
    )  # fmt: skip
    token: str | None = None
    if test_token or (test_token is None and chain_id == DEVNET_CHAIN_ID):
        token_artifact = load_artifact("TestToken")
        token_receipt = _deploy(rpc, account, chain_id, token_artifact.abi, token_artifact.bytecode)
        token = str(token_receipt["contractAddress"])
    market = str(receipt["contractAddress"])
    return Deployment(
        chain_id=chain_id,
        rpc_url=rpc_url,
        job_market=market,
        deploy_block=int(receipt["blockNumber"]),
        deploy_tx="0x" + bytes(receipt["transactionHash"]).hex(),
        deployer=str(account.address),
        challenge_window=challenge_window,
        source_hash=artifact.source_hash,
        registry=market,  # the market inherits the registry
        test_token=token,
        stake_free_limit=stake_free_limit,
    )


def _deploy(
    rpc: Rpc, account: LocalAccount, chain_id: int, abi: Any, bytecode: str, *args: Any
) -> Any:
    factory = rpc.w3.eth.contract(abi=abi, bytecode=bytecode)

    def send() -> Any:
        tx = factory.constructor(*args).build_transaction(
            {
                "from": account.address,
                "nonce": rpc.w3.eth.get_transaction_count(account.address, "pending"),
                "chainId": chain_id,
            }
        )
        signed = account.sign_transaction(tx)
        rpc.w3.eth.send_raw_transaction(signed.raw_transaction)
        return signed.hash

    tx_hash = rpc.call("deploy", send)
    receipt = rpc.call(
        "deploy",
        lambda: rpc.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120, poll_latency=0.05),
    )
    if receipt["status"] != 1 or not receipt["contractAddress"]:
        raise ChainError(f"deploy tx 0x{bytes(tx_hash).hex()} reverted")
    return receipt

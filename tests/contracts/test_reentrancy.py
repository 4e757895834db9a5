"""Hostile payees and tokens cannot drain the market or lock anybody else's money.

HostileReceiver re-enters the market when paid ETH (or refuses ETH); HostileToken re-enters
the market on every transfer (or freezes). Each test checks the attacker got its credit exactly
once and the market still holds exactly what it owes.
"""

from __future__ import annotations

from market_helpers import CID, ETHER, GAS_LIMIT, RESULT_CID, RESULT_DIGEST, Market
from protocol_helpers import (
    Terms,
    calldata,
    deploy_contract,
    post_terms,
    transact,
    worker_of,
)
from web3.contract import Contract
from web3.types import TxReceipt


def act(
    market: Market, actor: Contract, sender: str, fn: str, *args: object, value: int = 0
) -> TxReceipt:
    """``actor`` (a hostile contract) calls market function ``fn``; must succeed."""
    return transact(actor, sender, "act", market.address, calldata(market, fn, *args), value=value)


def test_receiver_reentering_withdraw_is_paid_its_credit_once(
    market: Market, requester: str
) -> None:
    hostile = deploy_contract(market, "HostileReceiver", requester)
    others = market.post(requester, escrow=3 * ETHER)  # money the attacker would like
    act(market, hostile, requester, "postJob", CID, 600, 1800, value=ETHER)
    act(market, hostile, requester, "cancel", 2)
    transact(hostile, requester, "arm", market.address, calldata(market, "withdraw"))
    act(market, hostile, requester, "withdraw")
    assert hostile.functions.reentries().call() == 1
    assert hostile.functions.reentriesSucceeded().call() == 0
    assert market.balance(hostile.address) == ETHER
    assert market.balance(market.address) == market.job(others)["escrow"] == 3 * ETHER


def test_receiver_refusing_ether_blocks_only_its_own_withdrawal(
    market: Market, requester: str
) -> None:
    hostile = deploy_contract(market, "HostileReceiver", requester)
    job_id = market.post(requester, escrow=ETHER)
    act(market, hostile, requester, "claim", job_id, ETHER // 4)
    act(market, hostile, requester, "submitResult", job_id, RESULT_CID, RESULT_DIGEST)
    transact(hostile, requester, "setRefuse", True)
    market.send(requester, "accept", job_id)  # pull payments: settling sends nothing
    market.send(requester, "withdraw")
    assert market.withdrawable(requester) == 0
    tx = hostile.functions.act(market.address, calldata(market, "withdraw")).build_transaction(
        {"from": requester, "gas": GAS_LIMIT}
    )
    receipt = market.w3.eth.wait_for_transaction_receipt(market.w3.eth.send_transaction(tx))
    assert market.revert_error(receipt) == (
        "JobMarketTransferFailed", (hostile.address, ETHER // 4),
    )  # fmt: skip
    assert market.withdrawable(hostile.address) == ETHER // 4
    assert market.balance(market.address) == ETHER // 4


def test_receiver_reentering_withdraw_stake_gets_its_stake_once(
    market: Market, requester: str
) -> None:
    hostile = deploy_contract(market, "HostileReceiver", requester)
    act(market, hostile, requester, "register", [], value=ETHER)
    act(market, hostile, requester, "unbond", ETHER // 2)
    market.advance(market.contract.functions.unbondDelay().call() + 1)
    transact(hostile, requester, "arm", market.address, calldata(market, "withdrawStake"))
    act(market, hostile, requester, "withdrawStake")
    assert hostile.functions.reentriesSucceeded().call() == 0
    assert market.balance(hostile.address) == ETHER // 2
    assert worker_of(market, hostile.address)["stake"] == ETHER // 2
    assert market.balance(market.address) == ETHER // 2


def token_balance(token: Contract, account: str) -> int:
    return int(token.functions.balanceOf(account).call())


def test_token_reentering_withdraw_token_gets_its_credit_once(
    market: Market, requester: str
) -> None:
    token = deploy_contract(market, "HostileToken", requester)
    transact(token, requester, "mint", token.address, ETHER)
    transact(token, requester, "mint", requester, 2 * ETHER)
    transact(token, requester, "approve", market.address, 2 * ETHER)
    others = post_terms(market, requester, Terms(token=token.address, max_price=2 * ETHER))
    approve = token.encode_abi("approve", args=[market.address, ETHER])
    transact(token, requester, "act", token.address, bytes.fromhex(approve[2:]))
    act(market, token, requester, "postJobWithTerms", CID, Terms(token=token.address).as_arg())
    act(market, token, requester, "cancel", others + 1)
    payload = calldata(market, "withdrawToken", token.address)
    transact(token, requester, "arm", market.address, payload)
    act(market, token, requester, "withdrawToken", token.address)
    assert token.functions.reentries().call() == 1
    assert token.functions.reentriesSucceeded().call() == 0
    assert token_balance(token, token.address) == ETHER
    assert token_balance(token, market.address) == market.job(others)["escrow"] == 2 * ETHER


def test_token_reentering_post_while_escrow_is_pulled_posts_nothing_extra(
    market: Market, requester: str
) -> None:
    token = deploy_contract(market, "HostileToken", requester)
    transact(token, requester, "mint", requester, 2 * ETHER)
    transact(token, requester, "approve", market.address, 2 * ETHER)
    terms = Terms(token=token.address)
    transact(token, requester, "arm", market.address,
             calldata(market, "postJobWithTerms", CID, terms.as_arg()))  # fmt: skip
    job_id = post_terms(market, requester, terms)
    assert token.functions.reentries().call() == 1
    assert token.functions.reentriesSucceeded().call() == 0
    assert market.contract.functions.jobCount().call() == job_id == 1
    assert token_balance(token, market.address) == ETHER


def test_frozen_token_locks_neither_ether_nor_other_tokens(
    market: Market, requester: str, worker: str
) -> None:
    frozen = deploy_contract(market, "HostileToken", requester)
    good = deploy_contract(market, "TestToken", requester)
    for token in (frozen, good):
        transact(token, requester, "mint", requester, ETHER)
        transact(token, requester, "approve", market.address, ETHER)
    frozen_job = post_terms(market, requester, Terms(token=frozen.address))
    good_job = post_terms(market, requester, Terms(token=good.address))
    eth_job = market.post(requester)
    for job_id in (frozen_job, good_job, eth_job):
        market.send(requester, "cancel", job_id)
    transact(frozen, requester, "setFrozen", True)
    assert market.try_send(requester, "withdrawToken", frozen.address)["status"] == 0
    market.send(requester, "withdrawToken", good.address)
    market.send(requester, "withdraw")
    assert token_balance(good, requester) == ETHER
    assert market.balance(market.address) == 0
    credit = market.contract.functions.tokenWithdrawable(frozen.address, requester).call()
    assert credit == token_balance(frozen, market.address) == ETHER

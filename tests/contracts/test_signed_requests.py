"""Signed job requests (RequestDesk): a relayer posts a job in the name of the requester that
signed it, from the requester's deposit, and can neither change a field, spend more than was
signed, nor use a request twice, on another chain or on another market.

Every refusal is tried by the party it stops, on the real contracts, and must leave the
requester's deposit and nonce untouched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from market_helpers import ETHER, Market, State
from protocol_helpers import deploy_contract, transact

from hepx.anvil import Anvil
from hepx.chain import JobRequest, RequestDeskClient, Terms, sign_request
from hepx.chain.enums import MatchMode
from hepx.errors import TxReverted

CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


DeskOf = Callable[[int], RequestDeskClient]


@pytest.fixture
def desk_of(market: Market, anvil_node: Anvil) -> DeskOf:
    """The market's desk, signing as dev account ``i``."""
    address = market.contract.functions.requestDesk().call()
    return lambda i: RequestDeskClient(anvil_node.url, address, anvil_node.accounts[i].private_key)


@pytest.fixture
def requester(market: Market) -> str:
    return market.accounts[1]


@pytest.fixture
def own(desk_of: DeskOf) -> RequestDeskClient:
    """The requester's own client of the desk (account 1): it deposits and signs."""
    return desk_of(1)


@pytest.fixture
def relayer(desk_of: DeskOf) -> RequestDeskClient:
    """Anyone else's (account 3): it relays what the requester signed."""
    return desk_of(3)


def _request(requester: str, market: Market, **terms: object) -> JobRequest:
    base = Terms(max_price=ETHER, match_window=600, run_window=1800)
    return JobRequest(
        requester=requester,
        spec_cid=CID,
        terms=dataclasses.replace(base, **terms),  # type: ignore[arg-type]
        nonce=7,
        expiry=market.now() + 3600,
    )


def _refused(call: object, error: str) -> TxReverted:
    with pytest.raises(TxReverted) as caught:
        call()  # type: ignore[operator]
    assert caught.value.error == error, caught.value
    return caught.value


def test_a_relayed_request_posts_the_job_for_its_signer_from_the_deposit(
    market: Market, requester: str, own: RequestDeskClient, relayer: RequestDeskClient
) -> None:
    own.deposit(3 * ETHER)
    request = _request(requester, market)
    signature = own.sign(request)
    relayer_balance = market.balance(relayer.sender)

    job_id, tx = relayer.relay(request, signature)

    job = market.job(job_id)
    assert job["requester"] == requester and job["state"] is State.OPEN
    assert job["escrow"] == ETHER
    assert own.deposit_of(requester) == 2 * ETHER
    assert own.nonce_used(requester, request.nonce)
    # The relayer paid gas and nothing else.
    assert market.balance(relayer.sender) == relayer_balance - tx.gas_used * tx.gas_price
    # A cancel is the requester's (not the desk's or the relayer's), and refunds to it.
    market.send(requester, "cancel", job_id)
    assert market.withdrawable(requester) == ETHER


def test_a_relayer_cannot_change_any_signed_field(
    market: Market,
    requester: str,
    own: RequestDeskClient,
    relayer: RequestDeskClient,
    desk_of: DeskOf,
) -> None:
    own.deposit(10 * ETHER)
    request = _request(requester, market)
    signature = own.sign(request)
    tampered = [
        dataclasses.replace(request, spec_cid=CID[:-1] + "a"),
        dataclasses.replace(request, terms=dataclasses.replace(request.terms, max_price=2 * ETHER)),
        dataclasses.replace(request, terms=dataclasses.replace(request.terms, run_window=60)),
        dataclasses.replace(request, terms=dataclasses.replace(request.terms, replicas=3, quorum=2,
                                                               reveal_window=600)),
        dataclasses.replace(request, expiry=request.expiry + 1),
        dataclasses.replace(request, nonce=8),
        # Another address's deposit, with this requester's signature.
        dataclasses.replace(request, requester=market.accounts[4]),
    ]  # fmt: skip
    desk_of(4).deposit(10 * ETHER)
    for changed in tampered:
        _refused(lambda c=changed: relayer.relay(c, signature), "DeskBadSignature")
    # A mangled signature too.
    mangled = signature[:-2] + ("1b" if signature[-2:] != "1b" else "1c")
    _refused(lambda: relayer.relay(request, mangled), "DeskBadSignature")
    _refused(lambda: relayer.relay(request, "0x" + "00" * 65), "DeskBadSignature")
    assert own.deposit_of(requester) == 10 * ETHER
    assert not own.nonce_used(requester, request.nonce)
    assert market.contract.functions.jobCount().call() == 0


def test_a_request_is_used_once_and_only_on_its_chain_and_market(
    market: Market,
    requester: str,
    own: RequestDeskClient,
    relayer: RequestDeskClient,
    anvil_node: Anvil,
) -> None:
    own.deposit(10 * ETHER)
    request = _request(requester, market)

    key = anvil_node.accounts[1].private_key
    other_chain = sign_request(request, own.chain_id() + 1, own.address, key)
    _refused(lambda: relayer.relay(request, other_chain), "DeskBadSignature")
    other_desk = sign_request(request, own.chain_id(), market.accounts[9], key)
    _refused(lambda: relayer.relay(request, other_desk), "DeskBadSignature")

    signature = own.sign(request)
    relayer.relay(request, signature)
    _refused(lambda: relayer.relay(request, signature), "DeskNonceUsed")
    assert own.deposit_of(requester) == 9 * ETHER


def test_expired_cancelled_and_unfunded_requests_are_refused(
    market: Market, requester: str, own: RequestDeskClient, relayer: RequestDeskClient
) -> None:
    request = _request(requester, market)
    signature = own.sign(request)

    error = _refused(lambda: relayer.relay(request, signature), "DeskInsufficientDeposit")
    assert error.error_args == (requester.lower(), 0, ETHER)
    own.deposit(ETHER)
    replicated = _request(requester, market, replicas=3, quorum=2, reveal_window=600)
    error = _refused(
        lambda: relayer.relay(replicated, own.sign(replicated)), "DeskInsufficientDeposit"
    )
    assert error.error_args == (requester.lower(), ETHER, 3 * ETHER)  # n x max price, no more

    own.cancel_nonce(request.nonce)
    _refused(lambda: relayer.relay(request, signature), "DeskNonceUsed")

    late = dataclasses.replace(request, nonce=9, expiry=market.now() - 1)
    _refused(lambda: relayer.relay(late, own.sign(late)), "DeskRequestExpired")
    token = dataclasses.replace(
        request, nonce=10, terms=dataclasses.replace(request.terms, token=market.accounts[8])
    )
    _refused(lambda: relayer.relay(token, own.sign(token)), "DeskTokenJob")
    assert own.deposit_of(requester) == ETHER


def test_the_market_refusal_comes_through_and_spends_nothing(
    market: Market, requester: str, own: RequestDeskClient, relayer: RequestDeskClient
) -> None:
    own.deposit(ETHER)
    bad = _request(requester, market, match_window=0)
    _refused(lambda: relayer.relay(bad, own.sign(bad)), "JobMarketInvalidWindow")
    assert own.deposit_of(requester) == ETHER and not own.nonce_used(requester, bad.nonce)


def test_terms_jobs_are_relayed_through_post_with_terms(
    market: Market, requester: str, own: RequestDeskClient, relayer: RequestDeskClient
) -> None:
    own.deposit(3 * ETHER)
    request = _request(requester, market, replicas=3, quorum=2, reveal_window=600)
    job_id, _ = relayer.relay(request, own.sign(request))
    terms = market.contract.functions.getTerms(job_id).call()
    assert terms[0] == int(MatchMode.CLAIM) and terms[1] == 3 and terms[2] == 2
    assert market.job(job_id)["requester"] == requester
    assert own.deposit_of(requester) == 0


def test_only_the_desk_may_name_another_requester(market: Market) -> None:
    """An outsider appending someone's address to its own post is still the requester."""
    stranger, victim = market.accounts[3], market.accounts[1]
    data = market.contract.encode_abi("postJob", [CID, 600, 1800])
    tx = {"from": stranger, "to": market.address, "value": ETHER,
          "data": data + victim[2:].lower()}  # fmt: skip
    receipt = market.w3.eth.wait_for_transaction_receipt(market.w3.eth.send_transaction(tx))
    [(_, posted), _] = market.events(receipt)
    assert posted["requester"] == stranger


def test_deposits_come_back_and_no_more(
    market: Market, requester: str, own: RequestDeskClient, relayer: RequestDeskClient
) -> None:
    own.deposit(2 * ETHER)
    _refused(lambda: own.withdraw_deposit(3 * ETHER), "DeskInsufficientDeposit")
    _refused(lambda: relayer.withdraw_deposit(1), "DeskInsufficientDeposit")
    before = market.balance(requester)
    tx = own.withdraw_deposit(2 * ETHER)
    assert market.balance(requester) == before + 2 * ETHER - tx.gas_used * tx.gas_price
    assert own.deposit_of(requester) == 0


def test_an_outsider_cannot_cancel_a_request_or_deposit_nothing(
    market: Market, requester: str, own: RequestDeskClient, relayer: RequestDeskClient
) -> None:
    """A griefer cancelling the requester's nonce only cancels its own: the request lands."""
    own.deposit(ETHER)
    request = _request(requester, market)
    relayer.cancel_nonce(request.nonce)
    assert relayer.nonce_used(relayer.sender, request.nonce)
    assert not own.nonce_used(requester, request.nonce)
    job_id, _ = relayer.relay(request, own.sign(request))
    assert market.job(job_id)["requester"] == requester
    _refused(lambda: relayer.deposit(0), "DeskInvalidAmount")
    _refused(lambda: own.withdraw_deposit(0), "DeskInvalidAmount")


def test_a_receiver_reentering_withdraw_deposit_gets_its_deposit_once(
    market: Market, requester: str, own: RequestDeskClient
) -> None:
    own.deposit(3 * ETHER)  # money the attacker would like
    desk = market.w3.eth.contract(address=own.address, abi=own.artifact.abi)
    hostile = deploy_contract(market, "HostileReceiver", requester)
    withdraw = desk.encode_abi("withdrawDeposit", [ETHER])
    transact(hostile, requester, "act", desk.address, desk.encode_abi("deposit", []), value=ETHER)
    transact(hostile, requester, "arm", desk.address, withdraw)
    transact(hostile, requester, "act", desk.address, withdraw)
    assert hostile.functions.reentries().call() == 1
    assert hostile.functions.reentriesSucceeded().call() == 0
    assert market.balance(hostile.address) == ETHER
    assert own.deposit_of(hostile.address) == 0
    assert market.balance(desk.address) == own.deposit_of(requester) == 3 * ETHER

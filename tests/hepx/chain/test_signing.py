"""hepx signs its dynamic-fee transactions itself (hepx/chain/signing.py): the bytes must be
eth_account's, byte for byte, whatever the fields hold, or nodes would refuse them (or,
worse, a hash hepx waits for would not be the one mined)."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account

from hepx.chain.signing import Signer

KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # anvil's second
MARKET = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def _tx(**fields: Any) -> dict[str, Any]:
    account = Account.from_key(KEY)
    return {"from": account.address, "to": MARKET, "data": "0x", "value": 0, "chainId": 31337,
            "gas": 21_000, "nonce": 0, "maxPriorityFeePerGas": 1, "maxFeePerGas": 2,
            **fields}  # fmt: skip


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"data": "0x" + "a1b2c3d4" + "00" * 31 + "ff", "value": 10**18, "nonce": 1},
        {"data": "0x" + "ab" * 5000, "nonce": 2**40, "gas": 30_000_000},  # a long sweep
        {"chainId": 8453, "maxPriorityFeePerGas": 10**9, "maxFeePerGas": 2**200},
        {"value": 2**256 - 1, "nonce": 127, "gas": 128, "maxPriorityFeePerGas": 0},
    ],
)
def test_a_dynamic_fee_transaction_is_signed_as_eth_account_signs_it(
    fields: dict[str, Any],
) -> None:
    tx = _tx(**fields)
    account = Account.from_key(KEY)
    expected = account.sign_transaction({k: v for k, v in tx.items() if k != "from"})
    raw, tx_hash = Signer(account).sign(dict(tx))
    assert raw == bytes(expected.raw_transaction)
    assert tx_hash == bytes(expected.hash)


def test_other_shapes_are_left_to_eth_account_and_another_sender_is_refused() -> None:
    account = Account.from_key(KEY)
    legacy = {"to": MARKET, "value": 0, "gas": 21_000, "gasPrice": 10**9, "nonce": 3,
              "chainId": 31337}  # fmt: skip
    raw, _ = Signer(account).sign(dict(legacy))
    assert raw == bytes(account.sign_transaction(legacy).raw_transaction)
    with pytest.raises(ValueError, match="given to"):
        Signer(account).sign(_tx(**{"from": "0x" + "11" * 20}))

"""Transactions signed without eth_account's dictionary path.

``LocalAccount.sign_transaction`` validates and normalizes the dictionary field by field
(toolz pipelines, checksums, a typed-transaction object) before it hashes and signs: 0.42 ms
of CPU per transaction, three times the signature itself, paid by every post, claim and result.
A dynamic-fee (EIP-1559) transaction of the fields hepx builds is encoded here directly: the
same RLP payload, hash and low-s signature of the same key, so the same bytes (deterministic
signatures: tests/hepx/chain/test_signing.py compares them). Any other shape is left to
eth_account.
"""

from __future__ import annotations

from typing import Any

import rlp
from eth_account.signers.local import LocalAccount
from eth_keys.datatypes import PrivateKey
from eth_utils.crypto import keccak

DYNAMIC_FEE = b"\x02"  # EIP-2718 type of an EIP-1559 transaction
# The fields hepx's transactions have ("from" is the signer's own address, not encoded).
_DYNAMIC_FEE_FIELDS = frozenset(
    {"from", "to", "data", "value", "chainId", "gas", "nonce", "maxPriorityFeePerGas",
     "maxFeePerGas"}
)  # fmt: skip


class Signer:
    """Signs for ``account``: (raw transaction, its hash)."""

    def __init__(self, account: LocalAccount) -> None:
        self.account = account
        self._key = PrivateKey(bytes(account.key))

    def sign(self, tx: dict[str, Any]) -> tuple[bytes, bytes]:
        if set(tx) | {"from"} != _DYNAMIC_FEE_FIELDS or not _is_hex(tx["data"]):
            signed = self.account.sign_transaction(tx)
            return bytes(signed.raw_transaction), bytes(signed.hash)
        if "from" in tx and str(tx["from"]).lower() != self.account.address.lower():
            raise ValueError(f"transaction from {tx['from']} given to {self.account.address}")
        fields: list[Any] = [
            int(tx["chainId"]), int(tx["nonce"]), int(tx["maxPriorityFeePerGas"]),
            int(tx["maxFeePerGas"]), int(tx["gas"]), bytes.fromhex(str(tx["to"])[2:]),
            int(tx["value"]), bytes.fromhex(str(tx["data"])[2:]), [],  # no access list
        ]  # fmt: skip
        signature = self._key.sign_msg_hash(keccak(DYNAMIC_FEE + rlp.encode(fields)))
        raw = DYNAMIC_FEE + rlp.encode([*fields, signature.v, signature.r, signature.s])
        return raw, keccak(raw)


def _is_hex(data: object) -> bool:
    return isinstance(data, str) and data.startswith("0x") and len(data) % 2 == 0

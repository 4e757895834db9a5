"""The RequestDesk the market deployed: deposits, and jobs posted from signed requests.

A requester signs a :class:`JobRequest` as EIP-712 typed data (``typed_data`` is the one
definition: the wallet page, the CLI and the API all sign or check exactly it); anyone relays
it with :meth:`RequestDeskClient.relay`, and the desk posts the job in the signer's name from
its deposit.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address

from hepx.chain.contract import ContractClient
from hepx.chain.enums import MatchMode
from hepx.chain.types import ZERO_ADDRESS, Terms, TxResult

DOMAIN_NAME = "hepx RequestDesk"
DOMAIN_VERSION = "1"

_TERMS_FIELDS = [
    ("mode", "uint8"),
    ("replicas", "uint8"),
    ("quorum", "uint8"),
    ("token", "address"),
    ("maxPrice", "uint256"),
    ("minStake", "uint256"),
    ("matchWindow", "uint256"),
    ("runWindow", "uint256"),
    ("revealWindow", "uint256"),
    ("kind", "bytes32"),
    ("allowlistRoot", "bytes32"),
]
TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "JobRequest": [
        {"name": "requester", "type": "address"},
        {"name": "specCid", "type": "string"},
        {"name": "terms", "type": "Terms"},
        {"name": "nonce", "type": "uint256"},
        {"name": "expiry", "type": "uint256"},
    ],
    "Terms": [{"name": name, "type": kind} for name, kind in _TERMS_FIELDS],
}


@dataclass(frozen=True)
class JobRequest:
    """What a requester signs: the job (spec CID and terms), a one-time nonce and an expiry."""

    requester: str
    spec_cid: str
    terms: Terms
    nonce: int
    expiry: int  # unix seconds

    def message(self) -> dict[str, Any]:
        """The typed-data message, JSON-safe: uint256 values as decimal strings (a browser's
        numbers lose precision past 2**53), bytes32 as 0x-hex."""
        t = self.terms
        terms = {
            "mode": int(t.mode),
            "replicas": t.replicas,
            "quorum": t.quorum,
            "token": to_checksum_address(t.token) if t.token else ZERO_ADDRESS,
            "maxPrice": str(t.max_price),
            "minStake": str(t.min_stake),
            "matchWindow": str(t.match_window),
            "runWindow": str(t.run_window),
            "revealWindow": str(t.reveal_window),
            "kind": "0x" + bytes(t.kind).hex(),
            "allowlistRoot": "0x" + bytes(t.allowlist_root).hex(),
        }
        return {
            "requester": to_checksum_address(self.requester),
            "specCid": self.spec_cid,
            "terms": terms,
            "nonce": str(self.nonce),
            "expiry": str(self.expiry),
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> JobRequest:
        """The request a typed-data message describes (as ``message`` writes it, or with
        plain numbers); raises ValueError or KeyError on a malformed one."""
        t = message["terms"]
        token = to_checksum_address(t["token"])
        terms = Terms(
            max_price=int(t["maxPrice"]),
            match_window=int(t["matchWindow"]),
            run_window=int(t["runWindow"]),
            mode=MatchMode(int(t["mode"])),
            replicas=int(t["replicas"]),
            quorum=int(t["quorum"]),
            token=None if token == ZERO_ADDRESS else token,
            min_stake=int(t["minStake"]),
            reveal_window=int(t["revealWindow"]),
            kind=_bytes32(t["kind"]),
            allowlist_root=_bytes32(t["allowlistRoot"]),
        )
        return cls(
            requester=to_checksum_address(message["requester"]),
            spec_cid=str(message["specCid"]),
            terms=terms,
            nonce=int(message["nonce"]),
            expiry=int(message["expiry"]),
        )

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            to_checksum_address(self.requester),
            self.spec_cid,
            self.terms.as_tuple(),
            self.nonce,
            self.expiry,
        )


def new_nonce() -> int:
    """A fresh nonce: the desk takes any unused number, so a random one never waits for the
    requester's other requests to land."""
    return secrets.randbits(64)


def typed_data(request: JobRequest, chain_id: int, desk: str) -> dict[str, Any]:
    """The full EIP-712 document for ``request`` (what ``eth_signTypedData_v4`` takes)."""
    return {
        "types": TYPES,
        "primaryType": "JobRequest",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(desk),
        },
        "message": request.message(),
    }


def _signable(request: JobRequest, chain_id: int, desk: str) -> Any:
    return encode_typed_data(full_message=typed_data(request, chain_id, desk))


def sign_request(request: JobRequest, chain_id: int, desk: str, private_key: str) -> str:
    """The requester's signature over ``request`` for the desk at ``desk``, as 0x-hex."""
    signed = Account.sign_message(_signable(request, chain_id, desk), private_key)
    return "0x" + bytes(signed.signature).hex()


def signer_of(request: JobRequest, chain_id: int, desk: str, signature: str) -> str:
    """The address that made ``signature`` over ``request``; ValueError if it is no signature."""
    try:
        return str(Account.recover_message(_signable(request, chain_id, desk), signature=signature))
    except BadSignature as exc:
        raise ValueError(f"not a signature: {exc}") from exc


def _bytes32(value: str) -> bytes:
    raw = bytes.fromhex(value[2:] if value.startswith("0x") else value)
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes of hex, got {len(raw)}")
    return raw


class RequestDeskClient(ContractClient):
    """Calls the market's RequestDesk (its address is the market's ``requestDesk()``)."""

    ARTIFACT = "RequestDesk"
    MARKET_GETTER = "requestDesk"

    # ------------------------------------------------------------ reads

    def deposit_of(self, requester: str) -> int:
        return int(self.read("depositOf", to_checksum_address(requester)))

    def nonce_used(self, requester: str, nonce: int) -> bool:
        return bool(self.read("nonceUsed", to_checksum_address(requester), nonce))

    def typed_data(self, request: JobRequest) -> dict[str, Any]:
        return typed_data(request, self.chain_id(), self.address)

    def sign(self, request: JobRequest) -> str:
        """This client's key's signature over ``request`` (it must be the requester's)."""
        if self.private_key is None:
            raise ValueError("signing a job request needs the requester's key")
        return sign_request(request, self.chain_id(), self.address, self.private_key)

    # ------------------------------------------------------------ writes

    def deposit(self, amount: int) -> TxResult:
        return self.transact("deposit", self.contract.functions.deposit(), value=amount)

    def withdraw_deposit(self, amount: int) -> TxResult:
        return self.transact("withdrawDeposit", self.contract.functions.withdrawDeposit(amount))

    def cancel_nonce(self, nonce: int) -> TxResult:
        return self.transact("cancelNonce", self.contract.functions.cancelNonce(nonce))

    def relay(self, request: JobRequest, signature: str) -> tuple[int, TxResult]:
        """Post the job ``request`` describes, for its signer; return its id and the tx."""
        fn = self.contract.functions.relay(request.as_tuple(), bytes.fromhex(signature[2:]))
        result = self.transact(f"relay request {request.nonce}", fn)
        return int(result.event("RequestRelayed").args["jobId"]), result


__all__ = [
    "DOMAIN_NAME",
    "TYPES",
    "JobRequest",
    "RequestDeskClient",
    "new_nonce",
    "sign_request",
    "signer_of",
    "typed_data",
]

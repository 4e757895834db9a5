"""The plumbing every hepx contract client shares: an ABI, a signer and the transaction
pipeline (simulate, sign, send, wait, decode the receipt's events).

Every transaction is simulated first (gas estimation runs it), so a call the contract would
refuse raises :class:`~hepx.errors.TxReverted` with the contract's custom error before
anything is sent.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Self

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes

from hepx.artifacts import load_artifact
from hepx.chain.events import LogDecoder, Skip
from hepx.chain.nonces import sequence_for
from hepx.chain.rpc import Rpc, error_message
from hepx.chain.signing import Signer
from hepx.chain.types import MarketEvent, TxResult
from hepx.chain.views import AbiFunction, send_calls, view_calls
from hepx.errors import ChainError, ConfigError, HepxError, NotMined, TxDropped, TxReverted

log = logging.getLogger(__name__)

# Re-signs after another client of the same sender took the nonce, before giving up.
_NONCE_ATTEMPTS = 5
# Seconds between asks for a sent transaction's receipt, the last repeated. An automining
# node (anvil) mines a transaction a millisecond or two after taking it: a first wait of
# 50 ms set every post, claim and result 50 ms apart, and each API thread and agent round
# spent most of its time asleep there. A chain with blocks seconds apart is asked at the
# last interval after the first 40 ms.
RECEIPT_WAITS = (0.002, 0.003, 0.005, 0.01, 0.02, 0.05)


class ContractClient:
    """Calls the contract at ``address`` over ``rpc_url``, signing with ``private_key``.

    ``ARTIFACT`` names the contract's ABI; ``rpc`` is the node (reads of blocks, balances...).
    """

    ARTIFACT = "JobMarket"
    # For a contract the market deploys (court, desk): the market's view that gives its address.
    MARKET_GETTER = ""

    def __init__(
        self,
        rpc_url: str,
        address: str,
        private_key: str | None = None,
        *,
        retries: int = 5,
        backoff: float = 0.5,
        receipt_timeout: float = 120.0,
    ) -> None:
        self.rpc = Rpc(rpc_url, retries=retries, backoff=backoff)
        self.rpc_url = rpc_url
        self.w3 = self.rpc.w3
        self.artifact = load_artifact(self.ARTIFACT)
        self.contract = self.w3.eth.contract(
            address=to_checksum_address(address), abi=self.artifact.abi
        )
        self.account: LocalAccount | None = Account.from_key(private_key) if private_key else None
        self.signer = None if self.account is None else Signer(self.account)
        self.receipt_timeout = receipt_timeout
        # Called with (what, result) after each mined tx: metrics count gas and calls here.
        self.tx_observers: list[Callable[[str, TxResult], None]] = []
        self.decoder = LogDecoder(self.artifact.abi, self.contract.address)
        self.views = view_calls(self.artifact.abi)
        self.sends = send_calls(self.artifact.abi)
        self._clock = threading.local()  # chain_now() held for a round (one_clock())

    @classmethod
    def of_market(cls, market: ContractClient, private_key: str | None = None) -> Self:
        """The client of the contract ``market`` deployed, signing with ``private_key`` or,
        by default, the market client's key."""
        address = str(market.read(cls.MARKET_GETTER))
        return cls(market.rpc_url, address, private_key or market.private_key)

    @property
    def address(self) -> str:
        return str(self.contract.address)

    @property
    def private_key(self) -> str | None:
        """The signing key as 0x-hex (for a second client of the same sender), or None."""
        return None if self.account is None else "0x" + bytes(self.account.key).hex()

    @property
    def sender(self) -> str:
        if self.account is None:
            raise ConfigError("no private key configured: set HEPX_PRIVATE_KEY or pass --key")
        return str(self.account.address)

    def read(self, function: str, *args: Any) -> Any:
        """The result of calling the contract's view ``function`` with ``args``: one raw
        ``eth_call`` (hepx/chain/views.py); web3's own path for anything it does not answer
        plainly (a revert, no contract), so errors are converted as for every call."""
        found, value = self._raw_call(self.views.get(function), args, {}, function)
        if found:
            return value
        return self.rpc.call(function, lambda: self.contract.functions[function](*args).call())

    def simulate(self, what: str, function: str, *args: Any) -> Any:
        """What sending ``function(*args)`` from this client's sender would return now: one
        raw ``eth_call`` as for read() (web3's call path cost 2 ms of CPU per claim's
        simulation); a refusal goes through web3's path, which raises it by name."""
        found, value = self._raw_call(self.sends.get(function), args, {"from": self.sender}, what)
        if found:
            return value
        fn = self.contract.functions[function](*args)
        return self.rpc.call(what, lambda: fn.call({"from": self.sender}))

    def _raw_call(
        self, encoder: AbiFunction | None, args: tuple[Any, ...], fields: dict[str, str], what: str
    ) -> tuple[bool, Any]:
        """(True, the decoded answer) of an ``eth_call`` the node answered plainly; (False,
        None) for anything else: no encoder, arguments it does not take, a revert, no code."""
        data = None if encoder is None else encoder.encode(args)
        if encoder is None or data is None:
            return False, None
        call = {**fields, "to": self.contract.address, "data": data}
        reply = self.rpc.reply("eth_call", [call, "latest"], what)
        result = reply.get("result")
        if "error" in reply or not isinstance(result, str) or len(result) <= 2:
            return False, None
        return True, encoder.decode(result)

    def chain_id(self) -> int:
        return self.rpc.chain_id()

    def block_number(self) -> int:
        return self.rpc.block_number()

    def timestamp(self, block: int | str = "latest") -> int:
        return self.rpc.timestamp(block)

    def chain_now(self) -> float:
        """The time the next block will carry (``Heads.now``), held for the rest of a round
        (``one_clock``)."""
        held: list[float] | None = getattr(self._clock, "held", None)
        if held:
            return held[0]
        now = self.rpc.heads().now
        self.hold_clock(now)
        return now

    def hold_clock(self, now: float) -> None:
        """Take ``now`` as chain_now() for the rest of this thread's one_clock() body, unless
        the body read it already (the agent's follower reads it with the round's heads)."""
        held: list[float] | None = getattr(self._clock, "held", None)
        if held is not None and not held:
            held.append(now)

    @contextlib.contextmanager
    def one_clock(self) -> Iterator[None]:
        """chain_now() read once for the body's calls in this thread (a round of the agent's
        loop asked it three times or more). The time read first only runs behind the chain's
        for the rest of the body: a deadline is then seen passed a little later, never
        sooner, so nothing is sent early."""
        self._clock.held = []
        try:
            yield
        finally:
            self._clock.held = None

    def balance(self, address: str, block: str | int = "latest") -> int:
        return self.rpc.balance(address, block)

    def sends_pending(self) -> bool:
        """True while a transaction of this client's sender waits in the node's pool."""
        return self.rpc.nonce(self.sender, "pending") > self.rpc.nonce(self.sender, "latest")

    def decode_log(self, raw: Any, skip: Skip | None = None) -> MarketEvent | None:
        return self.decoder.decode(raw, skip)

    def transact(self, what: str, fn: Any, value: int = 0, gas: int | None = None) -> TxResult:
        """Simulate, sign, send and wait for ``fn``; raise TxReverted on any refusal.

        With ``gas`` given the simulation is skipped: for calls that only become valid once a
        deadline has passed, on nodes (anvil automine) that simulate at the last block's time.
        """
        account = self.account
        if account is None:
            raise ConfigError(f"{what}: no private key configured (HEPX_PRIVATE_KEY or --key)")

        def build() -> dict[str, Any]:
            params = {"from": account.address, "value": value, "chainId": self.chain_id()}
            if gas is not None:
                params["gas"] = gas
            tx: dict[str, Any] = fn.build_transaction(params)
            if gas is None:
                tx["gas"] = _with_margin(tx["gas"])
            return tx

        # Simulated either way: a refusal raises before a nonce is taken.
        tx = self._lean_tx(fn, account.address, value, gas) or self.rpc.call(what, build)
        tx_hash = self._sign_and_send(what, tx)
        receipt = self._await_receipt(what, "0x" + bytes(tx_hash).hex())
        if _int(receipt["status"]) != 1:
            raise TxReverted(f"{what}: tx 0x{tx_hash.hex()} reverted on chain")
        result = TxResult(
            tx_hash=receipt["transactionHash"],
            block_number=_int(receipt["blockNumber"]),
            gas_used=_int(receipt["gasUsed"]),
            events=[ev for raw in receipt["logs"] if (ev := self.decode_log(raw)) is not None],
            gas_price=_int(receipt.get("effectiveGasPrice", "0x0")),
            block_hash=receipt["blockHash"],
        )
        for observe in self.tx_observers:
            try:
                observe(what, result)
            except Exception:  # an observer must never fail a tx that went through
                log.exception("tx observer failed what=%s tx=%s", what, result.tx_hash)
        return result

    def _lean_tx(self, fn: Any, sender: str, value: int, gas: int | None) -> dict[str, Any] | None:
        """``fn``'s transaction built from raw requests; None where web3's path must build it
        (arguments the cached encoder does not take, a node without EIP-1559 fees, or a
        simulation that fails: web3's path then raises the contract's error by name).

        web3's build_transaction looks the function up in the whole ABI, validates it and
        formats every request: about 6 ms of CPU per transaction, more than signing it.
        The same fields result: gas as estimated plus a margin, the node's priority fee, and a
        fee cap of twice the latest base fee above it."""
        encoder = self.sends.get(fn.fn_name)
        data = None if encoder is None or fn.kwargs else encoder.encode(tuple(fn.args))
        if data is None:
            return None
        to = self.contract.address
        call = {"from": sender, "to": to, "data": data, "value": hex(value)}
        if gas is None:
            estimate = self._answer("eth_estimateGas", [call])
            if not isinstance(estimate, str):
                return None
            gas = _with_margin(int(estimate, 16))
        tip = self._answer("eth_maxPriorityFeePerGas", [])
        base_fee = self.rpc.header("latest").base_fee
        if not isinstance(tip, str) or base_fee is None:
            return None
        return {"from": sender, "to": to, "data": data, "value": value, "chainId": self.chain_id(),
                "gas": gas, "maxPriorityFeePerGas": int(tip, 16),
                "maxFeePerGas": int(tip, 16) + 2 * base_fee}  # fmt: skip

    def _answer(self, method: str, params: list[Any]) -> Any:
        """A raw request's result, or None if the node answered with an error."""
        reply = self.rpc.reply(method, params)
        return None if "error" in reply else reply.get("result")

    def _await_receipt(self, what: str, tx_hash: str) -> Any:
        """The receipt of ``tx_hash``, once mined. A transaction the node stops knowing (a
        reorg orphaned its block and the node did not take it back, or the pool dropped it)
        fails at once with TxDropped, its nonce free again, instead of after the timeout."""
        deadline = time.monotonic() + self.receipt_timeout
        next_check, unknown, gapped = time.monotonic() + 1.0, 0, 0
        asked = 0
        while time.monotonic() < deadline:
            # Raw: web3's formatting of a receipt costs more than the request.
            receipt = self.rpc.request("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                return receipt
            if time.monotonic() >= next_check:
                known = self.rpc.transaction(tx_hash)
                unknown = unknown + 1 if known is None else 0
                if unknown >= 2:  # twice, a second apart: not a node that is still indexing it
                    sequence_for(self.rpc_url, self.chain_id(), self.sender).resync()
                    raise TxDropped(f"{what}: tx {tx_hash} is not known to the node any more")
                # Queued behind a nonce nobody holds any more (an earlier transaction of ours
                # was dropped after this one was signed): it would wait forever.
                ready = self.rpc.nonce(self.sender, "pending")
                gapped = gapped + 1 if known is not None and int(known["nonce"]) > ready else 0
                if gapped >= 2:
                    self._fill_nonce_gap(ready, int(known["nonce"]))  # type: ignore[index]
                    gapped = 0
                next_check = time.monotonic() + 1.0
            time.sleep(RECEIPT_WAITS[min(asked, len(RECEIPT_WAITS) - 1)])
            asked += 1
        raise NotMined(f"{what}: tx {tx_hash} not mined in {self.receipt_timeout:.0f} s")

    def _fill_nonce_gap(self, first: int, end: int) -> None:
        """Send empty transfers to ourselves with nonces ``first`` .. ``end - 1``, so that the
        transaction queued behind them is mined (21,000 gas each; only after a reorg)."""
        account, signer = self.account, self.signer
        assert account is not None and signer is not None
        sequence = sequence_for(self.rpc_url, self.chain_id(), account.address)
        with sequence.lock:
            for nonce in range(first, end):
                if self.rpc.nonce(account.address, "pending") > nonce:
                    continue  # another thread of ours filled it meanwhile
                filler: dict[str, Any] = {
                    "to": account.address,
                    "value": 0,
                    "gas": 21_000,
                    "gasPrice": self.rpc.call("eth_gasPrice", lambda: self.w3.eth.gas_price),
                    "nonce": nonce,
                    "chainId": self.chain_id(),
                }
                raw, _ = signer.sign(filler)
                self._send_raw(raw, "fill nonce gap")
                log.warning("event=nonce_gap_filled sender=%s nonce=%d", account.address, nonce)
            sequence.resync()

    def _sign_and_send(self, what: str, tx: dict[str, Any]) -> HexBytes:
        """Give ``tx`` the sender's next nonce, sign and send it; its hash once the node has it.

        The sender's sequence is locked only while sending, so several transactions are in
        flight at once and their receipts are awaited in parallel (hepx/chain/nonces.py).
        """
        account, signer = self.account, self.signer
        assert account is not None and signer is not None
        sequence = sequence_for(self.rpc_url, self.chain_id(), account.address)
        with sequence.lock:
            for _attempt in range(_NONCE_ATTEMPTS):
                tx["nonce"] = sequence.take(
                    lambda: self.rpc.nonce(account.address, "pending"),
                    lambda tx_hash: self.rpc.transaction(tx_hash) is not None,
                )
                raw, signed_hash = signer.sign(tx)
                tx_hash = "0x" + signed_hash.hex()
                try:
                    accepted = self._send_raw(raw, what)
                except HepxError:
                    sequence.resync()  # refused or unreachable: trust the node next time
                    raise
                # "nonce too low" and the node does not know this transaction: another
                # client of this sender took the nonce. Catch up with the node and re-sign.
                if accepted or self.rpc.transaction(tx_hash) is not None:
                    sequence.sent(tx_hash)
                    return HexBytes(signed_hash)
                sequence.resync()
        raise ChainError(f"{what}: the node kept refusing our nonces ({_NONCE_ATTEMPTS} tries)")

    def _send_raw(self, raw: bytes, what: str) -> bool:
        """Send; False if the node says the nonce is already used."""
        reply = self.rpc.reply("eth_sendRawTransaction", ["0x" + raw.hex()], what)
        if "error" not in reply:
            return True
        message = error_message(reply)
        if "already known" in message:
            return True  # a retry after a lost answer: the first send went through
        if "nonce too low" in message:
            return False
        raise ChainError(f"eth_sendRawTransaction: the node refused: {message}")


def _with_margin(estimate: int) -> int:
    """Estimates drift when other transactions land between simulation and inclusion."""
    return int(estimate * 1.2) + 10_000


def _int(value: int | str) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)

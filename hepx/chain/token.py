"""An ERC-20 token (the ABI of the devnet's TestToken, which is plain ERC-20 plus mint)."""

from __future__ import annotations

from eth_utils.address import to_checksum_address

from hepx.chain.contract import ContractClient
from hepx.chain.types import TxResult


class TokenClient(ContractClient):
    ARTIFACT = "TestToken"

    def balance_of(self, account: str) -> int:
        return int(self.read("balanceOf", to_checksum_address(account)))

    def allowance(self, owner: str, spender: str) -> int:
        return int(self.read("allowance", to_checksum_address(owner), to_checksum_address(spender)))

    def approve(self, spender: str, amount: int) -> TxResult:
        return self.transact(
            f"approve {amount}",
            self.contract.functions.approve(to_checksum_address(spender), amount),
        )

    def ensure_allowance(self, spender: str, amount: int) -> TxResult | None:
        """Approve ``amount`` for ``spender`` unless the allowance already covers it."""
        if self.allowance(self.sender, spender) >= amount:
            return None
        return self.approve(spender, amount)

    def mint(self, to: str, amount: int) -> TxResult:
        """Devnet only: the test token lets anyone mint."""
        return self.transact(
            f"mint {amount}", self.contract.functions.mint(to_checksum_address(to), amount)
        )

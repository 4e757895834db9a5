"""Worker allowlists as Merkle trees, the way the market checks them (OpenZeppelin MerkleProof).

A job stores only the root. A worker's leaf is ``keccak256(bytes.concat(keccak256(abi.encode(
worker))))`` (hashed twice so a leaf can never pass for an inner node) and pairs are hashed in
sorted order, so a proof is just the list of sibling hashes from the leaf up.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_abi import encode as abi_encode  # type: ignore[attr-defined]
from eth_utils import is_address, keccak, to_checksum_address  # type: ignore[attr-defined]

from hepx.errors import SpecError

ZERO_ROOT = b"\x00" * 32


def leaf(worker: str) -> bytes:
    """The leaf of ``worker`` in an allowlist tree."""
    return keccak(keccak(abi_encode(["address"], [to_checksum_address(worker)])))


def _pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


def _layers(workers: Sequence[str]) -> list[list[bytes]]:
    if not workers:
        raise SpecError("an allowlist needs at least one worker address")
    bad = [w for w in workers if not is_address(w)]
    if bad:
        raise SpecError(f"allowlist entries are not addresses: {', '.join(map(str, bad))}")
    level = sorted({leaf(w) for w in workers})
    layers = [level]
    while len(level) > 1:
        # An odd node out moves up unchanged; sorted pairing keeps the proof order-free.
        level = [
            _pair(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]
        layers.append(level)
    return layers


def merkle_root(workers: Sequence[str]) -> bytes:
    """The root to put in a job's terms (32 bytes)."""
    return _layers(workers)[-1][0]


def merkle_proof(workers: Sequence[str], worker: str) -> list[bytes]:
    """Sibling hashes that prove ``worker`` is in the allowlist of ``workers``."""
    layers = _layers(workers)
    node = leaf(worker)
    if node not in layers[0]:
        raise SpecError(f"{worker} is not in the allowlist")
    index = layers[0].index(node)
    proof: list[bytes] = []
    for level in layers[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index //= 2
    return proof


def verify(root: bytes, worker: str, proof: Sequence[bytes]) -> bool:
    """What the contract computes: fold the proof into the leaf and compare with ``root``."""
    node = leaf(worker)
    for sibling in proof:
        node = _pair(node, sibling)
    return node == root

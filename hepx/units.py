"""Amounts as users write them: ether ("0.01 ether", "5 gwei", 1000 wei) and bytes ("1 GiB")."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

_UNITS = {"wei": 0, "gwei": 9, "ether": 18, "eth": 18}


def parse_wei(value: int | str) -> int:
    """Wei in ``value``: an int (wei), a numeric string (wei) or "<number> <unit>".

    Raises ValueError with a message that says what is accepted.
    """
    if isinstance(value, bool):
        raise ValueError("an amount must be a number of wei or '<number> <wei|gwei|ether>'")
    if isinstance(value, int):
        wei = value
    else:
        parts = value.strip().lower().split()
        if len(parts) == 1:
            parts.append("wei")
        if len(parts) != 2 or parts[1] not in _UNITS:
            raise ValueError(
                f"cannot read amount {value!r}: "
                "write '<number> <unit>' with unit wei, gwei or ether"
            )
        try:
            amount = Decimal(parts[0]) * (Decimal(10) ** _UNITS[parts[1]])
        except InvalidOperation as exc:
            raise ValueError(f"cannot read amount {value!r}: {parts[0]!r} is not a number") from exc
        if amount != amount.to_integral_value():
            raise ValueError(f"amount {value!r} is not a whole number of wei")
        wei = int(amount)
    if wei < 0:
        raise ValueError(f"amount {value!r} is negative")
    return wei


def format_wei(wei: int) -> str:
    """A short human form: "0.01 ETH", "5 gwei" or "123 wei"."""
    if wei >= 10**15:
        return f"{Decimal(wei) / Decimal(10**18):f} ETH".replace(".000000000000000000", "")
    if wei >= 10**6:
        return f"{Decimal(wei) / Decimal(10**9):f} gwei"
    return f"{wei} wei"


_BYTE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip


def parse_bytes(value: int | str) -> int:
    """Bytes in ``value``: an int, or "<number> <unit>" (B, kB, MB, GB, TB, KiB, MiB, GiB,
    TiB; the space is optional)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"size {value} is negative")
        return value
    text = str(value).strip().lower().replace(" ", "")
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(number) :] or "b"
    if unit not in _BYTE_UNITS or not number:
        raise ValueError(f"cannot read size {value!r}: write e.g. 500MB, 1GiB or 1048576")
    try:
        size = Decimal(number) * _BYTE_UNITS[unit]
    except InvalidOperation as exc:
        raise ValueError(f"cannot read size {value!r}: {number!r} is not a number") from exc
    if size < 0:
        raise ValueError(f"size {value!r} is negative")
    return int(size)

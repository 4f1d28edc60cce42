"""Solana addresses: base58 (Bitcoin alphabet) of exactly 32 bytes.

Dependency-free, so the parsing edge of every provider client and the chain code share one rule.
"""

from __future__ import annotations

from functools import lru_cache

B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(B58_ALPHABET)}


#: Longest text whose decoding is cached: an address (32 bytes) is 32 to 44 characters.
_CACHED_LEN = 44


def b58decode(text: str) -> bytes:
    """Bitcoin-alphabet base58, as Solana uses for addresses; ``ValueError`` names a bad character.
    Addresses (up to 44 characters) are cached, as pools, mints and wallets repeat; longer text
    (instruction data) is decoded each time."""
    if len(text) <= _CACHED_LEN:
        return _b58decode_cached(text)
    return _b58decode(text)


@lru_cache(maxsize=65_536)
def _b58decode_cached(text: str) -> bytes:
    return _b58decode(text)


def _b58decode(text: str) -> bytes:
    n = 0
    for c in text:
        digit = _B58_INDEX.get(c)
        if digit is None:
            raise ValueError(f"character {c!r} is not base58")
        n = n * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + (n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b"")


def address_problem(text: str) -> str | None:
    """Why ``text`` is not a Solana address (base58 of 32 bytes), or None when it is one."""
    if not text:
        return "empty address"
    if len(text) > 64:
        return f"{text[:20]!r}... is {len(text)} characters; a Solana address has 32 to 44"
    try:
        raw = b58decode(text)
    except ValueError as exc:
        return f"{text!r} is not base58 ({exc})"
    if len(raw) != 32:
        return f"{text!r} decodes to {len(raw)} bytes; a Solana address is 32 bytes"
    return None


def is_address(text: str) -> bool:
    return address_problem(text) is None

"""Byte-level helpers shared by the decoders: base58 both ways, base64, bounded string reads.

Pure functions, no I/O. Every read is bounds-checked by its caller (a decoder checks the payload's
size against the layout version it reads before unpacking), so a short or corrupt payload becomes a
:class:`~dexscan.chain.events.model.Rejection`, never an exception.
"""

from __future__ import annotations

import binascii
import struct
from functools import lru_cache
from typing import Any

from dexscan.address import B58_ALPHABET, b58decode  # noqa: F401 - re-exported for the decoders
from dexscan.chain.events.model import Side

#: Anchor's ``emit_cpi!`` marker: the first 8 bytes of a self-invoke that carries an event.
EVENT_IX_TAG = bytes.fromhex("e445a52e51cb9a1d")

WSOL_MINT = "So11111111111111111111111111111111111111112"
USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
USDT_MINT = "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB"
#: Mints that are the quote side of a pair: a swap that takes one of these in is a buy of the other.
QUOTE_MINTS = frozenset({WSOL_MINT, USDC_MINT, USDT_MINT})

_U32 = struct.Struct("<I")
_solders: Any = None  # solders.pubkey, once loaded (see _load_solders)
_signature: Any = None  # solders.signature, loaded with it


@lru_cache(maxsize=65_536)
def b58encode(raw: bytes) -> str:
    """Bitcoin-alphabet base58 (Solana addresses and signatures); cached, as pools and mints repeat.
    Once solders is loaded (the first program-derived address loads it) its Rust encoder does
    32-byte keys and 64-byte signatures (the same text, ~25 times faster); the pure-Python one does
    the rest."""
    if _solders:
        if len(raw) == 32:
            return str(_solders.Pubkey(raw))
        if len(raw) == 64:
            return str(_signature.Signature(raw))
    return b58encode_pure(raw)


def b58encode_pure(raw: bytes) -> str:
    """:func:`b58encode` in Python alone (the reference the Rust encoders must match)."""
    n = int.from_bytes(raw, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(B58_ALPHABET[r])
    zeros = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(out))


def b64decode(text: str) -> bytes | None:
    """Strict standard base64 (with padding), or None when ``text`` is not that."""
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        return None


def pubkey(buf: bytes, off: int) -> str:
    return b58encode(bytes(buf[off:off + 32]))


def read_string(buf: bytes, off: int, limit: int = 512) -> tuple[str, int] | None:
    """A borsh string (u32 LE length + UTF-8) at ``off``: (text, next offset), or None when it does
    not fit in ``buf``, is longer than ``limit`` bytes, or is not UTF-8."""
    if off + 4 > len(buf):
        return None
    (n,) = _U32.unpack_from(buf, off)
    end = off + 4 + n
    if n > limit or end > len(buf):
        return None
    try:
        return bytes(buf[off + 4:end]).decode("utf-8"), end
    except UnicodeDecodeError:
        return None


def side_from_mints(mint_in: str | None, mint_out: str | None) -> tuple[Side | None, str | None]:
    """(side, non-quote mint) when exactly one of the two mints is a quote mint, else (None, None)."""
    qin, qout = mint_in in QUOTE_MINTS, mint_out in QUOTE_MINTS
    if qin and not qout:
        return "buy", mint_out
    if qout and not qin:
        return "sell", mint_in
    return None, None


# -- program-derived addresses (pure Python; what solders' Pubkey.find_program_address computes) ----

_P = 2**255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def on_curve(raw: bytes) -> bool:
    """Whether 32 bytes decompress to an ed25519 point (curve25519-dalek's rule, as Solana uses):
    a program-derived address must *not*."""
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    yy = y * y % _P
    u, v = (yy - 1) % _P, (_D * yy + 1) % _P
    v3 = v * v % _P * v % _P
    x = u * v3 % _P * pow(u * v3 % _P * v3 % _P * v % _P, (_P - 5) // 8, _P) % _P
    vxx = v * x % _P * x % _P
    return vxx == u or vxx == (-u) % _P


def _load_solders() -> bool:
    """Load solders (Rust; ~0.7 s once) for addresses: a derivation there takes ~10 us, not ~110."""
    global _solders, _signature
    if _solders is None:
        try:
            import solders.pubkey as pubkey_module
            import solders.signature as signature_module
        except ImportError:  # pragma: no cover - solders is a dependency; the pure path stays correct
            _solders = False
            return False
        _signature = signature_module
        _solders = pubkey_module
    return bool(_solders)


def find_program_address(seeds: tuple[bytes, ...], program_id: bytes, pure: bool = False) -> tuple[bytes, int]:
    """(address, bump): the first bump from 255 down whose hash is off the curve. Uses solders when
    it loads (``pure`` forces the Python derivation below, which gives the same answer)."""
    if not pure and _load_solders():
        key, bump = _solders.Pubkey.find_program_address(list(seeds), _solders.Pubkey(program_id))
        return bytes(key), int(bump)
    import hashlib

    for bump in range(255, -1, -1):
        h = hashlib.sha256(b"".join(seeds) + bytes([bump]) + program_id + b"ProgramDerivedAddress").digest()
        if not on_curve(h):
            return h, bump
    raise ValueError("no viable bump")  # practically unreachable (probability 2**-256)

"""Read an HTTP body incrementally and stop at a size cap, compressed and decompressed.

A peer may answer with 500 MB of spaces or a 200 KB gzip body that inflates to 200 MB: reading the
whole body first (``resp.read()``) or letting the client library inflate it puts all of it in
memory. :class:`BodyReader` is fed the body *as it arrives on the wire* (compressed) in chunks,
counts those bytes against ``max_compressed``, inflates each chunk itself with
``zlib.decompressobj(...).decompress(chunk, max_length)`` so that no step produces more than the
room left under ``max_decoded``, and raises :class:`BodyLimitExceeded` the moment either cap is
passed. Only ``gzip``, ``deflate`` and identity are accepted (we ask for nothing else with
``Accept-Encoding``); any other coding is refused rather than handed on undecoded.

Used by the market-data HTTP layer (aiohttp, ``auto_decompress=False``) and the RPC pool (an
httpx transport wrapper), so both refuse alike.
"""

from __future__ import annotations

import zlib

#: What the readers ask for; :class:`BodyReader` decodes exactly these.
ACCEPT_ENCODING = "gzip, deflate"
#: At most this much is inflated per step, so a step never doubles what is held.
_STEP = 256 * 1024


class BodyLimitExceeded(Exception):
    """The body passed a cap: ``which`` is ``"compressed"`` or ``"decompressed"``, ``limit`` in bytes."""

    def __init__(self, which: str, limit: int) -> None:
        self.which = which
        self.limit = limit
        super().__init__(f"{which} body larger than {describe_bytes(limit)}")


class UnsupportedEncoding(Exception):
    """A ``Content-Encoding`` we did not ask for and do not decode (br, zstd, stacked codings)."""


class BadEncoding(Exception):
    """The body is not valid for its ``Content-Encoding`` (corrupt gzip/deflate stream)."""


def describe_bytes(n: int) -> str:
    """``16 MiB``, ``512 KiB`` or ``100 bytes``: caps as people configure them."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


class BodyReader:
    """Feed wire chunks with :meth:`feed`, then :meth:`finish` for the decoded body."""

    def __init__(self, content_encoding: str | None, max_compressed: int, max_decoded: int) -> None:
        coding = (content_encoding or "").strip().lower()
        self._max_compressed = max_compressed
        self._max_decoded = max_decoded
        self.wire_bytes = 0
        self.decoded_bytes = 0
        self._parts: list[bytes] = []
        self._inflate: zlib._Decompress | None
        if coding in ("", "identity"):
            self._inflate = None
        elif coding in ("gzip", "x-gzip"):
            self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            self._inflate = zlib.decompressobj(32 + zlib.MAX_WBITS)  # zlib or gzip header, auto-detected
        else:
            raise UnsupportedEncoding(f"unsupported Content-Encoding {coding[:40]!r}")

    def feed(self, chunk: bytes) -> None:
        self.wire_bytes += len(chunk)
        if self.wire_bytes > self._max_compressed:
            raise BodyLimitExceeded("compressed", self._max_compressed)
        if self._inflate is None:
            self._add(chunk)
            return
        data = chunk
        while data:
            room = self._max_decoded - self.decoded_bytes
            try:
                out = self._inflate.decompress(data, min(room + 1, _STEP))
            except zlib.error as exc:
                raise BadEncoding(f"corrupt compressed body ({exc})") from None
            self._add(out)
            data = self._inflate.unconsumed_tail
            if self._inflate.eof or (not out and not data):
                break

    def _add(self, data: bytes) -> None:
        self.decoded_bytes += len(data)
        if self.decoded_bytes > self._max_decoded:
            self._parts.clear()
            raise BodyLimitExceeded("decompressed", self._max_decoded)
        if data:
            self._parts.append(data)

    def finish(self) -> bytes:
        if self._inflate is not None:
            try:
                self._add(self._inflate.flush())
            except zlib.error as exc:
                raise BadEncoding(f"corrupt compressed body ({exc})") from None
        body = b"".join(self._parts)
        self._parts.clear()
        return body

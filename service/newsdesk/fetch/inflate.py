"""Decompress gzip/deflate response bodies in bounded pieces (see :class:`_Inflater`)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Final

# Decompress in pieces this big, so a bomb never inflates past the cap by more than this.
_PIECE: Final = 64 * 1024


class _Inflater:
    """Incremental gzip/deflate decoder that never produces more than _PIECE at once.

    httpx's own decoders inflate each network chunk in one go, so a 64 kB chunk of a gzip
    bomb becomes ~64 MB before anyone can count it; this one yields bounded pieces.
    """

    def __init__(self, encoding: str) -> None:
        gzip = encoding in ("gzip", "x-gzip")
        self._z = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
        # "deflate" is meant to be zlib-wrapped (RFC 9110), but some servers send raw.
        self._may_be_raw = not gzip
        self._started = False

    @staticmethod
    def for_encoding(encoding: str) -> _Inflater | None:
        """The decoder for a Content-Encoding; None for identity; ValueError if unknown."""
        if encoding in ("", "identity"):
            return None
        if encoding in ("gzip", "x-gzip", "deflate"):
            return _Inflater(encoding)
        raise ValueError(encoding)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decompress one network chunk, in pieces of at most _PIECE bytes."""
        while data and not self._z.eof:
            try:
                piece = self._z.decompress(data, _PIECE)
            except zlib.error:
                if self._started or not self._may_be_raw:
                    raise
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                self._may_be_raw = False
                continue
            self._started = True
            yield piece
            data = self._z.unconsumed_tail

    def flush(self) -> bytes:
        """What the decoder still holds once the body has ended (at most a window)."""
        return self._z.flush()

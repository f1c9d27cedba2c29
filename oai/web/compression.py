"""gzip and deflate response bodies, and a page's compression done ahead of its request.

Compressing a list page costs more CPU than serving it from the read-ahead (about 3 ms against 1 for
100 oai_dc records), and harvesters ask for compression by default (sickle, through requests). A page
rendered ahead is therefore compressed ahead too, all but its head: the responseDate is written when
the page is sent, so the head is compressed then and put before the tail's stream. A DEFLATE stream
may be cut into pieces that way: the head's piece ends byte-aligned (a sync flush, no final block)
and the tail's piece, compressed on its own, refers to nothing before it. Only the checksum covers
the whole body, and it is computed when sending (a fraction of compressing).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

# zlib level 3: about half the CPU of the default 6 for a list page (XML compresses about 7.5x
# at 3 and 10x at 6); levels 1 and 2 cost the same as 3 here and compress less.
LEVEL = 3
ENCODINGS = ("gzip", "deflate")

_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no flags, no mtime, unknown OS
_ZLIB_HEADER = b"\x78\x5e"  # 32K window, level 2-5 (a header check of 31)


@dataclass(frozen=True)
class Tail:
    """The last `length` bytes of a body, compressed ahead as a raw DEFLATE stream of their own."""

    length: int
    deflated: bytes


def encode(body: bytes, encoding: str, tail: Tail | None = None) -> bytes:
    """`body` as a gzip (RFC 1952) or deflate (zlib, RFC 1950) content coding; its last tail.length bytes taken
    as `tail` compressed them ahead, if given (the same body once decoded, not byte for byte the same stream)."""
    if tail is None:
        comp = zlib.compressobj(LEVEL, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
        return comp.compress(body) + comp.flush()
    comp = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    stream = comp.compress(body[:len(body) - tail.length]) + comp.flush(zlib.Z_SYNC_FLUSH) + tail.deflated
    if encoding == "gzip":
        return _GZIP_HEADER + stream + struct.pack("<II", zlib.crc32(body), len(body) & 0xFFFFFFFF)
    return _ZLIB_HEADER + stream + struct.pack(">I", zlib.adler32(body))


def tail_of(body: bytes, start: int) -> Tail:
    """Compress `body[start:]` ahead, for encode() to send once the head is final."""
    comp = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    return Tail(len(body) - start, comp.compress(body[start:]) + comp.flush())

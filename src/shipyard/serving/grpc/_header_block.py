"""HPACK for the gRPC server: response header blocks as plain literals, and request
header blocks decoded with ``hpack`` behind a cache.

Literals without indexing never touch our encoder's dynamic table, so a block is valid
whatever the peer's decoder holds and can be built once and reused for every call.
"""

from __future__ import annotations

import hpack

__all__ = ["HeaderBlockError", "HeaderDecoder", "encode_header_block", "hpack_int"]


class HeaderBlockError(Exception):
    """A request header block that does not decode (a COMPRESSION_ERROR)."""


def hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_header_block(headers: list[tuple[str, str]], table_size: int | None = None) -> bytes:
    """HPACK literals without indexing: valid whatever the peer's decoder state.

    ``table_size`` prepends a dynamic table size update (needed once after the peer
    lowers SETTINGS_HEADER_TABLE_SIZE).
    """
    out = bytearray() if table_size is None else bytearray(hpack_int(table_size, 5, 0x20))
    for name, value in headers:
        raw_name, raw_value = name.encode("ascii"), value.encode("utf-8")
        out += b"\x00" + hpack_int(len(raw_name), 7) + raw_name
        out += hpack_int(len(raw_value), 7) + raw_value
    return bytes(out)


class HeaderDecoder:
    """HPACK decoding with a cache of blocks that leave the dynamic table as it was.

    A client re-sends the same block for the same call once its headers are in the
    table (every field a one-byte index), and such a block means the same thing for as
    long as the table does not change. Decoding it again costs ~15 us of pure Python.
    The table changes only through ``add`` (counted) or by shrinking (its length).
    """

    _CACHE_SIZE = 64

    def __init__(self, max_header_list_bytes: int) -> None:
        self._decoder = hpack.Decoder()
        self._decoder.max_header_list_size = max_header_list_bytes
        self._table = self._decoder.header_table
        self._adds = 0
        self._cache: dict[bytes, tuple[tuple[int, int], dict[str, str]]] = {}
        add = self._table.add

        def counted_add(name: bytes, value: bytes) -> None:
            self._adds += 1
            add(name, value)

        self._table.add = counted_add  # type: ignore[method-assign]

    def decode(self, block: bytes) -> dict[str, str]:
        """The headers of ``block``; the dict is shared between calls: read it only."""
        state = (self._adds, len(self._table.dynamic_entries))
        hit = self._cache.get(block)
        if hit is not None and hit[0] == state:
            return hit[1]
        try:
            decoded = self._decoder.decode(block)
        except hpack.HPACKError as err:
            raise HeaderBlockError(f"bad header block: {err}") from err
        headers = {str(name): str(value) for name, value in decoded}
        if (self._adds, len(self._table.dynamic_entries)) == state:
            if len(self._cache) >= self._CACHE_SIZE:
                self._cache.clear()
            self._cache[block] = (state, headers)
        return headers

"""HPACK for the gRPC server: the literal blocks we send decode with an independent
decoder, and the request decoder's cache never outlives the table state it relied on."""

from __future__ import annotations

import hpack
import pytest

from shipyard.serving.grpc._header_block import (
    HeaderBlockError,
    HeaderDecoder,
    encode_header_block,
)


def _pairs(decoded: object) -> list[tuple[str, str]]:
    # hpack's stubs type decode() as bytes tuples; with raw=False (the default) it is str.
    return [(str(name), str(value)) for name, value in decoded]  # type: ignore[attr-defined]


def test_literal_blocks_decode_the_same_in_any_decoder_state() -> None:
    headers = [(":status", "200"), ("grpc-message", "x" * 300), ("content-type", "a/b")]
    block = encode_header_block(headers)
    peer = hpack.Decoder()
    peer.decode(hpack.Encoder().encode([("x-filler", "1")]))  # a non-empty peer table
    for _ in range(2):
        assert _pairs(peer.decode(block)) == headers
    # A table size update goes first, and the peer applies it.
    assert _pairs(peer.decode(encode_header_block(headers, table_size=0))) == headers
    assert peer.header_table_size == 0


def test_a_cached_block_is_decoded_again_once_the_table_changes() -> None:
    client, server = hpack.Encoder(), HeaderDecoder(64 * 1024)
    first = client.encode([("x-call", "one")])  # a literal with indexing: the table grows
    assert server.decode(first) == {"x-call": "one"}
    again = client.encode([("x-call", "one")])  # now one indexed byte: cacheable
    assert again != first and min(again) >= 0x80
    assert server.decode(again) == {"x-call": "one"}
    assert server.decode(again) == {"x-call": "one"}  # from the cache
    # A new entry shifts the dynamic indices: the same bytes now mean another header.
    assert server.decode(client.encode([("x-call", "two")])) == {"x-call": "two"}
    assert server.decode(again) == {"x-call": "two"}


def test_a_broken_block_is_a_header_block_error() -> None:
    with pytest.raises(HeaderBlockError, match="bad header block"):
        HeaderDecoder(64 * 1024).decode(b"\xff\xff\xff\xff\xff\xff")

"""The compiled fast path for numeric JSON tensors: the ordinary path's answers, bit for
bit, and its errors, message for message."""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.errors import ShipyardError
from shipyard.serving.codecs import v2
from shipyard.serving.codecs._numbers import NumberParser, load_number_parser


@pytest.fixture(scope="module")
def parser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NumberParser]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        mp.delenv("SHIPYARD_FAST_JSON", raising=False)
        got = load_number_parser()
    assert got is not None, "the test machine has a C compiler"
    yield got


def _body(tokens: list[str], datatype: str = "FP64", extra: str = "") -> bytes:
    data = "[" + ", ".join(tokens) + "]"
    head = f'{{"inputs": [{{"name": "x", "shape": [{len(tokens)}], "datatype": "{datatype}"'
    return f'{head}, "data": {data}{extra}}}]}}'.encode()


def _bits(a: np.ndarray[Any, Any]) -> tuple[str, bytes]:
    return a.dtype.str, a.tobytes()


def _same(body: bytes, parser: NumberParser) -> None:
    """Both paths give the same tensors (bit for bit) or the same error."""
    try:
        want = v2.decode_request(body)
    except ShipyardError as err:
        with pytest.raises(type(err)) as got:
            v2.decode_request(body, None, parser)
        assert str(got.value) == str(err)
        return
    fast = v2.decode_request(body, None, parser)
    assert [(t.name, t.datatype, t.shape) for t in fast.inputs] == [
        (t.name, t.datatype, t.shape) for t in want.inputs
    ]
    for a, b in zip(fast.inputs, want.inputs, strict=True):
        assert _bits(a.data) == _bits(b.data)
    assert (fast.id, fast.parameters, fast.outputs) == (want.id, want.parameters, want.outputs)


def _formats(x: float) -> list[str]:
    return [repr(x), orjson.dumps(x).decode(), f"{x:.17g}", f"{x:.6e}", f"{x:.3E}", f"{x:.19g}"]


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=20),
    fmt=st.integers(0, 5),
    datatype=st.sampled_from(["FP64", "FP32", "FP16"]),
)
def test_floats_are_the_ordinary_paths_bit_for_bit(
    parser: NumberParser, values: list[float], fmt: int, datatype: str
) -> None:
    tokens = [_formats(v)[fmt] for v in values]
    tokens = [t if "inf" not in t else "1e999" for t in tokens]  # %.19g of max float
    _same(_body(tokens, datatype), parser)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.integers(-(10**20), 10**20), st.floats(-1e6, 1e6)), min_size=1, max_size=12
    ),
    datatype=st.sampled_from(["FP64", "FP32"]),
)
def test_integers_and_mixes_are_the_ordinary_paths(
    parser: NumberParser, values: list[Any], datatype: str
) -> None:
    _same(_body([json.dumps(v) for v in values], datatype), parser)


def test_the_bench_payload_takes_the_fast_path(parser: NumberParser) -> None:
    rng = np.random.default_rng(0)
    tokens = [repr(float(v)) for v in rng.standard_normal(2000)]
    body = _body(tokens)
    cut = parser.cut(body)
    assert cut is not None and len(cut[1]) == 1  # the C parser took the whole array
    _same(body, parser)


def _double_midpoints_near_a_decimal(count: int) -> list[str]:
    """Decimals of at most 19 digits whose quotient w / 10^k, rounded to 64 bits, lands
    exactly on a midpoint between two doubles without being it: rounding twice (64 then
    53 bits, as an x87 long double would) is wrong for some of them."""
    rng = random.Random(7)
    found: list[str] = []
    while len(found) < count:
        d = rng.uniform(1.0, 2.0) * 10 ** rng.randint(-5, 5)
        bits = struct.unpack("<Q", struct.pack("<d", d))[0]
        nxt = struct.unpack("<d", struct.pack("<Q", bits + 1))[0]
        mid = (Fraction(d) + Fraction(nxt)) / 2
        k = 18 - len(str(int(mid)))
        w = round(mid * 10**k)
        value = Fraction(w, 10**k)
        if value == mid:
            continue
        # Round value to a 64-bit significand.
        e = value.numerator.bit_length() - value.denominator.bit_length()
        scale = Fraction(2) ** (63 - e)
        while value * scale >= 2**64:
            scale /= 2
        while value * scale < 2**63:
            scale *= 2
        if Fraction(round(value * scale)) / scale == mid:
            found.append(f"{w}e-{k}")
    return found


def _parsed(parser: NumberParser, tokens: list[str]) -> list[str]:
    """What the C parser makes of ``tokens``, as exact hex (it must take them all)."""
    got = parser.array(("[" + ", ".join(tokens) + "]").encode(), 0)
    assert got is not None, tokens
    return [float(v).hex() for v in got[0]]


def test_double_rounding_traps_are_converted_exactly(parser: NumberParser) -> None:
    tokens = _double_midpoints_near_a_decimal(20)
    assert _parsed(parser, tokens) == [float(t).hex() for t in tokens]
    fast = v2.decode_request(_body(tokens), None, parser).inputs[0].data
    assert fast.tolist() == [float(t) for t in tokens]


def _exact_midpoints(count: int) -> list[str]:
    """Decimals that are exactly half-way between two doubles (ties go to even): an odd
    54-bit integer times 2^e has 17 to 19 digits for e in [-2, 5]."""
    rng = random.Random(11)
    found: list[str] = []
    while len(found) < count:
        odd = rng.getrandbits(52) | (1 << 53) | 1
        exponent = rng.randint(-2, 5)
        if exponent >= 0:
            text = f"{odd << exponent}.0"
        else:
            scaled = str(odd * 5**-exponent)  # odd / 2^k == odd * 5^k / 10^k
            text = f"{scaled[:exponent]}.{scaled[exponent:]}"
        if Fraction(text) == Fraction(odd) * Fraction(2) ** exponent and len(text) <= 20:
            found.append(text)
    return found


def test_exact_midpoints_round_to_even(parser: NumberParser) -> None:
    tokens = _exact_midpoints(30)
    assert _parsed(parser, tokens) == [float(t).hex() for t in tokens]


@settings(max_examples=300, deadline=None)
@given(
    mantissas=st.lists(st.integers(1, 10**19 - 1), min_size=1, max_size=40),
    exponent=st.integers(-27, 27),
)
def test_long_mantissas_at_every_power_of_ten_are_exact(
    parser: NumberParser, mantissas: list[int], exponent: int
) -> None:
    # Up to 19 digits times 10^-27..10^27: the range of the 128-bit powers of five.
    tokens = [f"{m}e{exponent - len(str(m)) + 1}" for m in mantissas]
    tokens = [t for t in tokens if -27 <= int(t.split("e")[1]) <= 27] or ["1e0"]
    assert _parsed(parser, tokens) == [float(t).hex() for t in tokens]


@pytest.mark.parametrize(
    "tokens",
    [
        ["-0"],
        ["-0.0"],
        ["0e5", "-0E-5"],
        ["1.5e308", "-2.2250738585072014e-308", "5e-324"],
        ["123456789012345", "1234567890123456", "12345678901234567890"],
        ["0.000000000000000000000000000001"],
        ["9007199254740993.0", "9007199254740993"],
        ["1.7976931348623157e308", "1e400", "-1e400"],
        ["3.4028235e38", "3.5e38"],
    ],
)
@pytest.mark.parametrize("datatype", ["FP64", "FP32", "FP16", "INT64", "INT8", "BOOL"])
def test_edge_numbers(parser: NumberParser, tokens: list[str], datatype: str) -> None:
    _same(_body(tokens, datatype), parser)


MALFORMED = [
    b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1, 2,]}]}',
    b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [01]}]}',
    b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.]}]}',
    b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [.5]}]}',
    b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [+1]}]}',
    b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [NaN]}]}',
    b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1e]}]}',
    b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [-]}]}',
    b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1 2]}]}',
    b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1, 2]',
    b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1, 2] "a": 1}]}',
    b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1, "a"]}]}',
    b'{"inputs": [{"name": "x", "shape": [2, 1], "datatype": "FP64", "data": [[1], [2]]}]}',
    b'{"inputs": [{"name": "x", "shape": [3], "datatype": "FP64", "data": [1, 2]}]}',
    b'{"inputs": [{"name": "x", "shape": [2], "datatype": "INT32", "data": [1.5, 2]}]}',
    b'{"inputs": [{"name": "x", "shape": [2], "datatype": "BYTES", "data": [1, 2]}]}',
    b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP99", "data": [1, 2]}]}',
    b'{"inputs": [{"shape": [2], "datatype": "FP64", "data": [1, 2]}]}',
    b'{"inputs": [{"name": "x", "shape": [2], "datatype": {"data": [1]}, "data": [1, 2]}]}',
    b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", '
    b'"data": "\\u0000shipyard-data-0"}]}',
    # A marker with another letter escaped too, and the array it names cut from elsewhere.
    b'{"parameters": {"data": [3, 4]}, "inputs": [{"name": "x", "shape": [2], '
    b'"datatype": "FP64", "data": "\\u0000\\u0073hipyard-data-0"}]}',
    b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1, 2], '
    b'"parameters": {"data": [3, 4]}}], "parameters": {"data": [5]}}',
    b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1], "data": [2]}]}',
    b'{"inputs": [{"name": "x \\"data": [1], "shape": [1], "datatype": "FP64", "data": [2]}]}',
    b'{"inputs": [], "data": [1]}',
    b'[{"data": [1]}]',
    b'{"data": [1, 2]}',
    b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}], "id": 5, '
    b'"outputs": [{"name": "y"}]}',
    b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": []}]}',
    b'{"inputs": [{"name": "x", "shape": [0], "datatype": "FP64", "data": [ ]}]}',
    b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data":\n[\t1\r]}]}',
]


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_and_odd_bodies_get_the_ordinary_answer_or_error(
    parser: NumberParser, body: bytes
) -> None:
    _same(body, parser)


def test_switched_off_or_without_a_compiler_there_is_no_parser(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHIPYARD_FAST_JSON", "off")
    assert load_number_parser() is None
    monkeypatch.delenv("SHIPYARD_FAST_JSON")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    assert load_number_parser() is None

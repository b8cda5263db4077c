"""Signature inference, input checks and input-example JSON, with properties over many inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from shipyard.errors import InvalidInputError
from shipyard.models import (
    Signature,
    TensorSpec,
    check_inputs,
    datatype_for_dtype,
    dtype_for_datatype,
    infer_signature,
)
from shipyard.models._example import decode_example, encode_example
from shipyard.models._signature import InputChecker

NUMERIC = [
    np.bool_,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.float16,
    np.float32,
    np.float64,
]

arrays = st.sampled_from(NUMERIC).flatmap(
    lambda dt: hnp.arrays(
        dtype=dt, shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5)
    )
)


@given(arrays)
def test_an_example_fits_its_own_signature(arr: np.ndarray[Any, Any]) -> None:
    sig = infer_signature(arr)
    (spec,) = sig.inputs
    assert spec.name == "input-0"
    assert spec.shape == [-1, *arr.shape[1:]]
    assert dtype_for_datatype(spec.datatype) == arr.dtype
    check_inputs(sig, {"input-0": arr})
    # The batch axis is variable: any row count fits.
    check_inputs(sig, {"input-0": np.concatenate([arr, arr])})


@given(arrays, st.integers(min_value=1, max_value=3))
def test_a_different_fixed_dim_is_refused(arr: np.ndarray[Any, Any], extra: int) -> None:
    if arr.ndim < 2:
        arr = arr.reshape(-1, 1)
    sig = infer_signature(arr)
    wrong = np.zeros((arr.shape[0], arr.shape[1] + extra, *arr.shape[2:]), dtype=arr.dtype)
    with pytest.raises(InvalidInputError, match=r"'input-0' has size \d+ on axis 1"):
        check_inputs(sig, {"input-0": wrong})


@given(st.sampled_from(NUMERIC))
def test_datatype_round_trip(dtype: Any) -> None:
    assert dtype_for_datatype(datatype_for_dtype(dtype)) == np.dtype(dtype)


@given(
    st.dictionaries(
        st.text(alphabet="abcdefgh_", min_size=1, max_size=6), arrays, min_size=1, max_size=4
    )
)
def test_dict_examples_fit_and_missing_or_unknown_names_do_not(
    example: dict[str, np.ndarray[Any, Any]],
) -> None:
    sig = infer_signature(example)
    assert [s.name for s in sig.inputs] == list(example)
    check_inputs(sig, example)
    first = next(iter(example))
    without = {k: v for k, v in example.items() if k != first}
    with pytest.raises(InvalidInputError, match=f"Missing input '{first}'"):
        check_inputs(sig, without)
    with pytest.raises(InvalidInputError, match=r"Unknown input.*'zz-extra'"):
        check_inputs(sig, {**example, "zz-extra": example[first]})


def _spec(**kw: Any) -> Signature:
    base: dict[str, Any] = {"name": "x", "datatype": "FP32", "shape": [-1, 3]}
    return Signature(inputs=[TensorSpec(**{**base, **kw})])


@pytest.mark.parametrize(
    ("spec", "value", "message"),
    [
        ({}, np.zeros((2, 3), dtype=np.int64), None),  # ints are castable to floats
        (
            {"datatype": "INT64"},
            np.zeros((2, 3)),
            r"'x' has datatype FP64.*cannot be cast to INT64",
        ),
        ({}, np.array([["a", "b", "c"]]), r"'x' has datatype BYTES.*cannot be cast to FP32"),
        ({"datatype": "BYTES", "shape": [-1]}, np.array(["a", "b"]), None),
        ({"datatype": "BYTES", "shape": [-1]}, np.array([1.0]), r"cannot be cast to BYTES"),
        ({}, np.zeros((2, 3, 1)), r"'x' has 3 dimension\(s\), expected 2"),
        ({}, np.zeros((0, 3)), r"'x' is empty \(0 rows"),
        ({"shape": [2, 3]}, np.zeros((3, 3)), r"size 3 on axis 0, expected 2"),
        ({"allow_nan": False}, np.array([[1, 2, 3], [1, np.nan, 3]]), r"NaN in 1 row.*row 1"),
        ({"allow_nan": True}, np.array([[1, np.nan, 3]]), None),
        ({}, np.array([[1, "2", 3]], dtype=object), None),  # JSON-ish objects that convert
        ({}, np.array([[1, "two", 3]], dtype=object), r"cannot be cast to FP32"),
        # numpy would wrap 300 to 44 and turn 1e6 into inf: refused instead.
        ({"datatype": "UINT8"}, np.array([[300, 1, 2]]), r"outside the range of UINT8.*max 300"),
        ({"datatype": "INT8"}, np.array([[5, 1, 2]]), None),
        ({"datatype": "FP16"}, np.array([[1e6, 1, 1]]), r"too large for FP16"),
        ({"allow_nan": False}, np.array([[1, None, 3]], dtype=object), r"NaN in 1 row"),
    ],
)
def test_check_inputs_cases(spec: dict[str, Any], value: Any, message: str | None) -> None:
    if message is None:
        check_inputs(_spec(**spec), {"x": value})
    else:
        with pytest.raises(InvalidInputError, match=message):
            check_inputs(_spec(**spec), {"x": value})


def test_dataframe_signatures() -> None:
    pd = pytest.importorskip("pandas")
    numeric = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
    (spec,) = infer_signature(numeric).inputs
    assert (spec.name, spec.datatype, spec.shape, spec.columns) == (
        "input-0",
        "FP64",
        [-1, 2],
        ["a", "b"],
    )
    mixed = pd.DataFrame({"age": [30, 40], "city": ["Oslo", "Lima"], "vip": [True, False]})
    sig = infer_signature(mixed)
    assert [(s.name, s.datatype, s.shape) for s in sig.inputs] == [
        ("age", "INT64", [-1]),
        ("city", "BYTES", [-1]),
        ("vip", "BOOL", [-1]),
    ]


def test_scalar_and_unsupported_examples_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="scalar"):
        infer_signature(np.float64(3.0))
    with pytest.raises(InvalidInputError, match="complex128"):
        infer_signature(np.zeros((2, 2), dtype=complex))
    with pytest.raises(InvalidInputError, match="empty dict"):
        infer_signature({})


def test_list_example() -> None:
    sig = infer_signature([[1.0, 2.0], [3.0, 4.0]])
    assert [(s.datatype, s.shape) for s in sig.inputs] == [("FP64", [-1, 2])]


example_arrays = st.one_of(
    arrays,
    hnp.arrays(dtype=hnp.unicode_string_dtypes(max_len=4), shape=st.integers(1, 4)),
    hnp.arrays(dtype=np.dtype("S3"), shape=st.integers(1, 4)),
)


@settings(max_examples=60)
@given(
    st.one_of(example_arrays, st.dictionaries(st.sampled_from("xyz"), example_arrays, min_size=1))
)
def test_input_example_json_round_trip(example: Any) -> None:
    import json

    back = decode_example(json.loads(json.dumps(encode_example(example))))
    pairs = (
        [(example[k], back[k]) for k in example] if isinstance(example, dict) else [(example, back)]
    )
    if isinstance(example, dict):
        assert list(back) == list(example)
    for want, got in pairs:
        assert got.shape == want.shape
        if want.dtype.kind == "S":
            assert [bytes(v) for v in got.flat] == [bytes(v) for v in want.flat]
        else:
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)


def test_dataframe_example_round_trip(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    from shipyard.models._example import read_input_example, write_input_example

    frame = pd.DataFrame({"a": [1.5, float("nan")], "s": ["x", "y"], "n": [1, 2]})
    read = read_input_example(tmp_path / write_input_example(tmp_path, frame))
    pd.testing.assert_frame_equal(read, frame)


any_arrays = st.one_of(
    arrays,
    hnp.arrays(dtype=hnp.unicode_string_dtypes(max_len=3), shape=hnp.array_shapes(max_dims=2)),
    hnp.arrays(dtype=st.sampled_from(NUMERIC), shape=()),
    st.lists(
        st.one_of(st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=3), st.none()),
        max_size=4,
    ).map(lambda xs: np.array(xs, dtype=object)),
)
specs = st.builds(
    TensorSpec,
    name=st.just("x"),
    datatype=st.sampled_from(
        ["BOOL", "UINT8", "INT8", "INT32", "INT64", "UINT64", "FP16", "FP32", "FP64", "BYTES"]
    ),
    shape=st.lists(st.sampled_from([-1, 1, 2, 3]), min_size=0, max_size=3),
    allow_nan=st.booleans(),
)


@settings(max_examples=150)
@given(specs, any_arrays)
def test_check_inputs_only_ever_raises_invalid_input(spec: TensorSpec, arr: Any) -> None:
    # Whatever a client sends, the answer is a 400 naming the input, never a crash (500).
    try:
        check_inputs(Signature(inputs=[spec]), {"x": arr})
    except InvalidInputError as err:
        assert "'x'" in str(err)
        return
    # Accepted input converts to the declared type, and honours allow_nan.
    if spec.datatype != "BYTES":
        converted = arr.astype(dtype_for_datatype(spec.datatype))
        if not spec.allow_nan and converted.dtype.kind == "f":
            assert not np.isnan(converted).any()


def _verdict(check: Any, arr: np.ndarray[Any, Any]) -> str | None:
    try:
        check({"x": arr})
    except InvalidInputError as err:
        return str(err)
    return None


@settings(max_examples=200)
@given(specs, st.sampled_from([*NUMERIC, np.float16, np.uint8]), st.data())
def test_a_checker_gives_the_verdict_of_check_inputs_on_every_request(
    spec: TensorSpec, dtype: Any, data: st.DataObject
) -> None:
    # The checker remembers layouts it accepted; later requests of the same layout with
    # other values (NaN, out of range, no rows) must still get check_inputs' own answer.
    signature = Signature(inputs=[spec])
    checker = InputChecker(signature)
    trailing = data.draw(st.lists(st.sampled_from([1, 2, 3]), max_size=2))
    for _ in range(4):
        rows = data.draw(st.integers(0, 3))
        arr = data.draw(hnp.arrays(np.dtype(dtype), (rows, *trailing)))
        assert _verdict(checker, arr) == _verdict(
            lambda inputs: check_inputs(signature, inputs), arr
        )


def test_a_checker_remembers_only_layouts_whose_values_cannot_matter() -> None:
    free = InputChecker(Signature(inputs=[TensorSpec(name="x", datatype="FP64", shape=[-1, 3])]))
    free({"x": np.zeros((2, 3))})
    assert free._accepted == {(("x", np.dtype(np.float64), (3,)),)}
    narrowing = InputChecker(
        Signature(inputs=[TensorSpec(name="x", datatype="UINT8", shape=[-1, 3])])
    )
    narrowing({"x": np.ones((2, 3), dtype=np.int64)})
    with pytest.raises(InvalidInputError, match="outside the range of UINT8"):
        narrowing({"x": np.full((2, 3), 300, dtype=np.int64)})
    no_nan = InputChecker(
        Signature(inputs=[TensorSpec(name="x", datatype="FP64", shape=[-1, 3], allow_nan=False)])
    )
    no_nan({"x": np.zeros((2, 3))})
    with pytest.raises(InvalidInputError, match="NaN in 1 row"):
        no_nan({"x": np.array([[0.0, np.nan, 1.0]])})
    assert not narrowing._accepted and not no_nan._accepted

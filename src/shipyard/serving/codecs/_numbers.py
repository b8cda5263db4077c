"""The fast path for numeric JSON tensors: ``"data": [numbers]`` parsed by C into numpy.

``NumberParser.cut(body)`` finds each ``"data": [...]`` whose value is a flat array of
JSON numbers, parses it with ``_numbers.c`` (compiled once per machine into the user's
cache, at server start) and replaces it in the body by a marker string; orjson then
parses only the small rest. The V2 decoder accepts the result only when every marker
came back exactly where a float tensor's ``data`` is (see ``v2.decode_request``);
anything else takes the ordinary path, so malformed input gets the same 4xx errors.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import re
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from shipyard._switches import switched_off

__all__ = ["ENV_SWITCH", "MARK", "MIN_BODY_BYTES", "NumberParser", "load_number_parser"]

log = logging.getLogger("shipyard.serving")

#: ``SHIPYARD_FAST_JSON=off`` turns the fast path off (orjson and numpy decode alone).
ENV_SWITCH = "SHIPYARD_FAST_JSON"
#: Bodies shorter than this decode the ordinary way: the fast path's fixed cost (finding
#: the arrays, the C call, cutting the body) is more than orjson and numpy spend on a few
#: hundred numbers (measured side by side: 1 row of 20 floats, 493 bytes, took about twice
#: as long on the fast path; from about 10 KB, 500 numbers, it wins, 2x at 20 KB).
MIN_BODY_BYTES = 8192
#: What a cut-out array becomes in the JSON: a string no client sends (checked).
MARK = "\x00shipyard-data-"
_MARK_JSON = b"\\u0000shipyard-data-"
_FLAGS = ["-O2", "-fPIC", "-shared", "-fno-fast-math", "-ffp-contract=off"]
# JSON whitespace only (a regex \s would also take \v and \f, which JSON refuses).
_DATA = re.compile(rb'"data"[ \t\r\n]*:[ \t\r\n]*\[')


class NumberParser:
    """The loaded ``_numbers.c``; ``cut`` is reentrant."""

    def __init__(self, path: Path) -> None:
        lib = ctypes.CDLL(str(path))
        if lib.shipyard_numbers_abi() != 1:
            raise OSError(f"{path} is a parser of another ABI")
        fn = lib.shipyard_json_f64
        fn.restype = ctypes.c_int64
        fn.argtypes = [
            ctypes.c_char_p,
            ctypes.c_int64,
            ctypes.c_int64,
            ctypes.c_void_p,
            ctypes.c_int64,
            ctypes.POINTER(ctypes.c_int64),
        ]
        self._fn = fn
        self.path = path

    def array(self, body: bytes, pos: int) -> tuple[np.ndarray[Any, Any], int] | None:
        """The float64 values of the array at ``body[pos]`` ('[') and the offset past
        it, or None when the C parser does not take it."""
        # At least one digit and one comma per value.
        cap = (len(body) - pos) // 2 + 1
        out = np.empty(cap, dtype=np.float64)
        end = ctypes.c_int64(0)
        n = self._fn(body, len(body), pos, out.ctypes.data, cap, ctypes.byref(end))
        if n < 0:
            return None
        return out[:n].copy(), end.value

    def cut(self, body: bytes) -> tuple[bytes, dict[str, np.ndarray[Any, Any]]] | None:
        """``body`` with each flat numeric ``data`` array replaced by a marker, and the
        arrays by marker; None when there is none (or the body has an escape, which a
        marker sent by the client would need)."""
        if b"\\" in body:
            # A marker in the client's own JSON needs an escape (NUL is written \u0000,
            # and any other letter may be escaped too), so a body without a backslash
            # cannot hold one; one with a backslash takes the ordinary path. (One byte
            # is searched with memchr: 1 us for 40 KB, against 9 for the whole marker.)
            return None
        arrays: dict[str, np.ndarray[Any, Any]] = {}
        pieces: list[bytes] = []
        last = 0
        found = _DATA.search(body)
        while found is not None:
            start = found.end() - 1
            got = self.array(body, start)
            if got is None:
                found = _DATA.search(body, found.end())
                continue
            values, end = got
            pieces += [body[last:start], b'"', _MARK_JSON, str(len(arrays)).encode(), b'"']
            arrays[f"{MARK}{len(arrays)}"] = values
            last = end
            found = _DATA.search(body, end)
        if not arrays:
            return None
        pieces.append(body[last:])
        return b"".join(pieces), arrays


def _cache_path() -> Path:
    source = _source()
    digest = hashlib.sha256(source + " ".join(_FLAGS).encode()).hexdigest()[:12]
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "shipyard" / "numbers" / f"numbers-{digest}-{platform.machine()}.so"


def _source() -> bytes:
    return resources.files("shipyard.serving.codecs").joinpath("_numbers.c").read_bytes()


def load_number_parser() -> NumberParser | None:
    """The compiled parser (compiled now if this machine has none yet), or None when it
    is switched off or cannot be built here: the ordinary path then decodes alone."""
    if switched_off(ENV_SWITCH):
        return None
    from shipyard.models.trees._native import NoCompiler, compile_library

    path = _cache_path()
    try:
        if not path.is_file():
            compile_library(_source(), _FLAGS, path)
        return NumberParser(path)
    except (NoCompiler, OSError, AttributeError) as err:
        log.warning("JSON tensors decode without the fast path: %s", err)
        return None

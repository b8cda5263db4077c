"""Compile ``_kernel.c`` with the machine's C compiler, load it with ctypes, call it.

The library does not depend on the model: it is keyed by the kernel's source (the
engine version) and by the CPU it was compiled for (``-march=native``), and built
once per model directory's cache (or the user cache when that is read-only).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.models.trees._ensemble import Ensemble, Unsupported

__all__ = [
    "ENGINE",
    "Kernel",
    "NoCompiler",
    "compile_library",
    "cpu_key",
    "engine_version",
    "library",
]

#: The engine's name; its version is the hash of the kernel source (a change rebuilds).
ENGINE = "shipyard-trees"
_FLAGS = [
    "-O2",
    "-march=native",
    "-fno-tree-vectorize",
    "-fPIC",
    "-shared",
    "-fno-fast-math",
    "-ffp-contract=off",
]


class NoCompiler(Unsupported):
    """No working C compiler here: the framework predicts."""


@cache
def _source() -> bytes:
    return resources.files("shipyard.models.trees").joinpath("_kernel.c").read_bytes()


#: Extra compiler flags (e.g. ``-march=x86-64-v3`` for a portable build); part of the
#: engine version, so a change rebuilds.
FLAGS_ENV = "SHIPYARD_TREES_CFLAGS"


def _flags() -> list[str]:
    return [*_FLAGS, *os.environ.get(FLAGS_ENV, "").split()]


def engine_version() -> str:
    """``shipyard-trees-<hash of the kernel source and compiler flags>``."""
    digest = hashlib.sha256(_source() + " ".join(_flags()).encode()).hexdigest()[:12]
    return f"{ENGINE}-{digest}"


@cache
def cpu_key() -> str:
    """The CPU a ``-march=native`` library is valid for: model name and feature flags."""
    info = ""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        first = text.split("\n\n", 1)[0]
        info = "\n".join(
            line
            for line in first.splitlines()
            if line.split(":")[0].strip() in ("vendor_id", "model name", "flags", "cpu family")
        )
    except OSError:
        pass
    digest = hashlib.sha256(f"{platform.machine()}\n{info}".encode()).hexdigest()[:12]
    return f"{platform.machine()}-{digest}"


def compiler() -> str:
    """The C compiler to use: ``$CC``, else cc, gcc or clang on PATH."""
    cc = os.environ.get("CC")
    if cc:
        return cc
    for name in ("cc", "gcc", "clang"):
        found = shutil.which(name)
        if found:
            return found
    raise NoCompiler("no C compiler (cc, gcc or clang) on PATH and $CC is not set")


def compile_library(source: bytes, flags: list[str], dest: Path) -> None:
    """Compile the C ``source`` into the shared library ``dest`` (atomically), or raise
    ``NoCompiler`` saying why not."""
    cc = compiler()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="shipyard-cc-") as tmp:
        src = Path(tmp) / "lib.c"
        src.write_bytes(source)
        out = Path(tmp) / "lib.so"
        try:
            done = subprocess.run(
                [cc, *flags, "-o", str(out), str(src)],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise NoCompiler(f"the C compiler {cc!r} did not run: {err}") from err
        if done.returncode != 0:
            raise NoCompiler(
                f"the C compiler {cc!r} failed ({done.returncode}): {done.stderr.strip()[:300]}"
            )
        # Write then rename: a concurrent loader sees no library or a whole one.
        partial = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        shutil.copyfile(out, partial)
        os.replace(partial, dest)


def kernel_path(cache_dir: Path) -> Path:
    """Where the kernel of this engine version for this CPU is (or goes) in ``cache_dir``."""
    return cache_dir / f"kernel-{engine_version()}-{cpu_key()}.so"


def library(cache_dir: Path) -> Path:
    """The compiled kernel in ``cache_dir``, compiled now if it is not there yet."""
    path = kernel_path(cache_dir)
    if not path.is_file():
        compile_library(_source(), _flags(), path)
    return path


_P = ctypes.c_void_p
_I = ctypes.c_int64


class Kernel:
    """The loaded library; ``run`` is reentrant and releases the GIL (ctypes.CDLL)."""

    def __init__(self, path: Path) -> None:
        try:
            lib = ctypes.CDLL(str(path))
            if lib.shipyard_trees_abi() != 5:
                raise NoCompiler(f"{path} is a kernel of another ABI")
            #: Whether the AVX-512 walk is compiled in (``-march=native`` on such a CPU).
            self.vector = bool(lib.shipyard_trees_vector())
        except (OSError, AttributeError) as err:
            raise NoCompiler(f"cannot load the compiled kernel {path}: {err}") from err
        self.path = path
        self._fns: dict[tuple[bool, bool, bool, bool], Any] = {}
        for perfect in (True, False):
            for in32 in (True, False):
                for acc32 in (True, False):
                    for nan in (True, False):
                        name = "shipyard_{}_{}_{}{}".format(
                            "perfect" if perfect else "trees",
                            "f32" if in32 else "f64",
                            "f32" if acc32 else "f64",
                            "_nan" if nan else "",
                        )
                        fn = getattr(lib, name)
                        fn.restype = None
                        fn.argtypes = [_P, _I, _I, _P, _P, _P, _P, *([_P] if perfect else [])]
                        fn.argtypes += [_I, _P, _I, _I, _P]
                        self._fns[(perfect, in32, acc32, nan)] = fn
        self._calls: dict[tuple[int, bool], _Call] = {}

    def run(self, ens: Ensemble, x: np.ndarray[Any, Any], nan: bool) -> np.ndarray[Any, Any]:
        """Raw sums, (rows, outputs): ``init`` plus every tree's leaf value, in tree order.

        ``x`` must be C-contiguous, (rows, features), float32 if ``ens.input32`` else
        float64; ``nan``: it may hold NaN (without, the faster kernel skips the test).
        """
        if x.dtype != (np.float32 if ens.input32 else np.float64) or not x.flags.c_contiguous:
            raise ValueError("internal error: wrong input layout for the tree kernel")
        call = self._calls.get((id(ens), nan))
        if call is None or call.ensemble is not ens:
            call = self._calls[(id(ens), nan)] = _Call(self._fns, ens, nan)
        out = np.empty((x.shape[0], call.init.shape[0]), dtype=call.init.dtype)
        out[:] = call.init
        call.fn(x.ctypes.data, x.shape[0], x.shape[1], *call.model, out.ctypes.data)
        return out


class _Call:
    """The kernel function and the ensemble's arguments of one ``(ensemble, nan)``, found
    once: reading an array's address through ``.ctypes`` costs about 1 us, and there are
    eight per call (a request's predict is a few tens of microseconds)."""

    __slots__ = ("ensemble", "fn", "init", "model")

    def __init__(self, fns: dict[tuple[bool, bool, bool, bool], Any], ens: Ensemble, nan: bool):
        #: Held so the id it is filed under is not reused while it is cached.
        self.ensemble = ens
        self.fn = fns[(ens.perfect, ens.input32, ens.acc32, nan)]
        self.init = ens.init.astype(np.float32 if ens.acc32 else np.float64)
        self.model = (
            ens.nodes.ctypes.data,
            ens.roots.ctypes.data,
            ens.depths.ctypes.data,
            ens.groups.ctypes.data,
            *([ens.leafbase.ctypes.data] if ens.perfect else []),
            ens.roots.shape[0],
            ens.values.ctypes.data,
            ens.width,
            ens.n_outputs,
        )

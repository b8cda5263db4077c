"""Pinned models: a deploy serves a private, content-addressed copy, not the user's folder.

A model folder changes after a deploy (saved again, moved, deleted); a server restarted
later must still serve what was deployed. So the local flavor copies the model (a local
path, or what a remote or ``models:/`` URI resolved to) into
``$SHIPYARD_HOME/snapshots/<sha256>/<name>`` and the server loads that copy.

* The folder name is the SHA-256 of the model's files (names and contents): the same
  content deployed again, by any service, is the same snapshot, copied once.
* Each service holding a snapshot has a reference file in it (``.refs/<uuid>``); a
  snapshot is removed when its last reference is released.
* Hashing every file on every redeploy would be slow for large models: a digest is
  remembered per "stat fingerprint" (names, sizes, mtimes: ``serving.fingerprint``), so an
  unchanged folder is hashed once.
* Private: folders 0700, files 0600. A copy lands in a staging folder first and is renamed
  into place, so a crash never leaves half a snapshot under a digest.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shipyard.config import get_settings
from shipyard.errors import DeploymentError
from shipyard.serving.fingerprint import model_fingerprint

__all__ = [
    "Snapshot",
    "content_digest",
    "digest_in_path",
    "digest_of_uri",
    "pin",
    "release",
    "release_all",
    "snapshot_path",
]

_REFS = ".refs"
_DIGESTS = ".digests"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Snapshot:
    """A pinned model: its content digest and the copy a server loads."""

    digest: str
    path: Path


def _root() -> Path:
    root = get_settings().snapshots_dir
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One process at a time adds or drops references (a drop may delete a snapshot)."""
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def content_digest(path: Path) -> str:
    """SHA-256 over the relative names and contents of ``path``'s files."""
    stat_key = model_fingerprint(str(path))
    memo = _root() / _DIGESTS / stat_key if stat_key else None
    if memo is not None:
        with contextlib.suppress(OSError):
            return memo.read_text(encoding="ascii").strip()
    digest = hashlib.sha256()
    for file in _files(path):
        name = file.name if file == path else str(file.relative_to(path))
        digest.update(f"{name}\0{file.stat().st_size}\0".encode())
        with file.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    result = digest.hexdigest()
    if memo is not None:
        memo.parent.mkdir(mode=0o700, exist_ok=True)
        tmp = memo.with_name(f".{memo.name}.{os.getpid()}")
        tmp.write_text(result, encoding="ascii")
        tmp.chmod(0o600)
        os.replace(tmp, memo)
    return result


def _resolve(uri: str) -> Path:
    """The local files of ``uri``: the path itself, or the fetched copy of a remote one."""
    from shipyard.models._uri import resolve_model_uri

    return resolve_model_uri(uri)


def digest_of_uri(uri: str) -> str:
    """The content digest of the model at ``uri`` (fetching a remote one into the cache)."""
    return content_digest(_resolve(uri))


def digest_in_path(path: str) -> str:
    """The digest of the snapshot ``path`` is in, or "" when it is not a snapshot."""
    try:
        relative = Path(path).relative_to(get_settings().snapshots_dir)
    except ValueError:
        return ""
    return relative.parts[0] if len(relative.parts) >= 2 else ""


def snapshot_path(digest: str) -> Path | None:
    """The model inside snapshot ``digest``, if it exists."""
    if not digest:
        return None
    folder = get_settings().snapshots_dir / digest
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            if not entry.name.startswith("."):
                return entry
    return None


def _make_private(path: Path) -> None:
    for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
        item.chmod(0o700 if item.is_dir() else 0o600)


def _copy(source: Path, root: Path) -> tuple[Path, str]:
    """Copy ``source`` into a staging folder; return it and the digest of the copy."""
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    name = source.name.lstrip(".") or "model"
    target = staging / name
    try:
        if source.is_dir():
            shutil.copytree(source, target, copy_function=shutil.copyfile)
        else:
            shutil.copyfile(source, target)
        _make_private(target)
        return staging, content_digest(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def pin(uri: str, owner: str) -> Snapshot:
    """Pin the model at ``uri`` for service ``owner``: reuse the snapshot of the same
    content or copy it, and record ``owner`` as a holder."""
    source = _resolve(uri)
    root = _root()
    digest = content_digest(source)
    staging: Path | None = None
    try:
        if snapshot_path(digest) is None:
            # The digest of the copy names it: a folder changed while being copied is
            # stored under what was copied, never under what was hashed before.
            staging, digest = _copy(source, root)
        with _locked(root):
            folder = root / digest
            if staging is not None and not folder.exists():
                staging.rename(folder)
                staging = None
            path = snapshot_path(digest)
            if path is None:
                raise DeploymentError(
                    f"The snapshot {folder} of {uri} is incomplete; delete that folder and "
                    "deploy again."
                )
            refs = folder / _REFS
            refs.mkdir(mode=0o700, exist_ok=True)
            (refs / owner).touch(mode=0o600)
    except OSError as err:
        raise DeploymentError(
            f"Could not copy the model {uri} into {root} (a deploy serves its own copy): "
            f"{err}. Free some space or fix the permissions, then deploy again."
        ) from err
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return Snapshot(digest=digest, path=path)


def _drop(root: Path, digest: str, owner: str) -> None:
    folder = root / digest
    (folder / _REFS / owner).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        if any((folder / _REFS).iterdir()):
            return
    # Renamed away first: a reader never sees half a snapshot under its digest.
    doomed = root / f".deleting-{digest}-{os.getpid()}"
    with contextlib.suppress(OSError):
        folder.rename(doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def release(digest: str, owner: str) -> None:
    """``owner`` no longer needs snapshot ``digest``; the last holder's release removes it."""
    root = get_settings().snapshots_dir
    if not digest or not (root / digest).is_dir():
        return
    with _locked(root):
        _drop(root, digest, owner)


def release_all(owner: str, keep: frozenset[str] = frozenset()) -> None:
    """Release every snapshot ``owner`` holds except those in ``keep``."""
    root = get_settings().snapshots_dir
    if not root.is_dir():
        return
    with _locked(root):
        for ref in root.glob(f"*/{_REFS}/{owner}"):
            digest = ref.parent.parent.name
            if digest not in keep:
                _drop(root, digest, owner)

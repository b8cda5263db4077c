"""The key that encrypts secrets at rest: ``$SHIPYARD_HOME/secrets.key``, 0600.

Why a key file and not the OS keyring: Shipyard runs on headless machines, in CI and as
detached model-server daemons, where a keyring either has no backend (no D-Bus session)
or asks a person to unlock it. The key file is private to the owner, like the rest of
``SHIPYARD_HOME`` (0700); the database (``store.db``, or a shared PostgreSQL store) only
ever holds Fernet tokens (AES-128-CBC + HMAC-SHA256), useless without the key. A copied
or leaked ``store.db`` therefore reveals no secret value.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.errors import SecretError, StoreUnwritableError

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

__all__ = ["KEY_FILE", "cipher"]

#: File name of the key, in SHIPYARD_HOME.
KEY_FILE = "secrets.key"


def _create_key(path: Path) -> None:
    """Write a new key next to ``path`` and link it into place: a crash or a full disk
    never leaves a partial key, and of two processes creating it at once one wins."""
    from cryptography.fernet import Fernet

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, Fernet.generate_key())
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # another process was first: use theirs
            os.link(tmp, path)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StoreUnwritableError(
                f"Cannot create the secrets key {path}: the disk is full ({err.strerror}). "
                "Free some space and retry."
            ) from err
        if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise StoreUnwritableError(
                f"Cannot create the secrets key {path}: the folder is read-only "
                f"({err.strerror}). Make it writable to store secrets."
            ) from err
        raise SecretError(f"Cannot create the secrets key {path}: {err}.") from err
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def cipher(home: Path, *, create: bool) -> Fernet:
    """The Fernet cipher of ``home``'s key; with ``create``, a new key if there is none."""
    from cryptography.fernet import Fernet

    path = home.expanduser() / KEY_FILE
    if create and not path.exists():
        _create_key(path)
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        raise SecretError(
            f"The secrets key {path} is missing, so no stored secret can be read. Restore "
            "the file from a backup, or create the secrets again (`shipyard secret create`)."
        ) from None
    except OSError as err:
        raise SecretError(f"Cannot read the secrets key {path}: {err}.") from err
    try:
        return Fernet(key)
    except ValueError as err:
        raise SecretError(
            f"The secrets key {path} is damaged ({err}). Restore it from a backup."
        ) from err

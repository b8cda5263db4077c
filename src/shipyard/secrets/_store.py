"""The secrets store: named values, encrypted at rest, never printed.

Values are Fernet tokens in the store's ``secrets`` table; the key is a file in
SHIPYARD_HOME (``_crypto``). Configs hold ``{{secret.NAME}}`` and are resolved only
where the value is used (a server's environment, a component being built).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from shipyard.errors import SecretError
from shipyard.secrets._crypto import cipher
from shipyard.secrets._refs import check_name, resolve_references
from shipyard.store import _schema as t

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

    from shipyard.store import Store

__all__ = ["SecretInfo", "SecretStore", "get_secret"]


class SecretInfo(BaseModel):
    """What may be shown about a secret: its name and dates, never its value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    created: datetime | None = None
    updated: datetime | None = None


class SecretStore:
    """The secrets of one store (``SecretStore(store)``); the key is its home's."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cipher: Fernet | None = None

    def _fernet(self, create: bool) -> Fernet:
        if self._cipher is None:
            self._cipher = cipher(self._store.settings.home, create=create)
        return self._cipher

    def set(self, name: str, value: str, *, replace: bool = True) -> SecretInfo:
        """Store ``value`` under ``name`` (encrypted); ``replace=False`` refuses an
        existing name."""
        check_name(name)
        if not value:
            raise SecretError(f"The secret '{name}' needs a value; an empty one is refused.")
        token = self._fernet(create=True).encrypt(value.encode()).decode()
        with self._store.transaction(write=True) as conn:
            exists = conn.execute(sa.select(t.secrets.c.name).where(t.secrets.c.name == name))
            if exists.first() is not None:
                if not replace:
                    raise SecretError(
                        f"A secret named '{name}' already exists; delete it first "
                        f"(`shipyard secret delete {name}`) or pass --replace."
                    )
                conn.execute(
                    t.secrets.update()
                    .where(t.secrets.c.name == name)
                    .values(ciphertext=token, updated=sa.func.current_timestamp())
                )
            else:
                conn.execute(t.secrets.insert().values(name=name, ciphertext=token))
        return self.info(name)

    def create(self, name: str, value: str) -> SecretInfo:
        """A new secret; an existing name is refused."""
        return self.set(name, value, replace=False)

    def info(self, name: str) -> SecretInfo:
        query = sa.select(t.secrets.c.name, t.secrets.c.created, t.secrets.c.updated)
        with self._store.transaction() as conn:
            row = conn.execute(query.where(t.secrets.c.name == name)).mappings().first()
        if row is None:
            raise _missing(name)
        return SecretInfo(**row)

    def get(self, name: str) -> str:
        """The value of the secret ``name`` (decrypted); SecretError if there is none."""
        check_name(name)
        with self._store.transaction() as conn:
            query = sa.select(t.secrets.c.ciphertext).where(t.secrets.c.name == name)
            token = conn.execute(query).scalar()
        if token is None:
            raise _missing(name)
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet(create=False).decrypt(str(token).encode()).decode()
        except InvalidToken:
            raise SecretError(
                f"The secret '{name}' cannot be decrypted: it was stored with another "
                f"secrets key than {self._store.settings.home / 'secrets.key'}. Restore that "
                f"key, or set the secret again (`shipyard secret create {name} --replace`)."
            ) from None

    def list(self) -> list[SecretInfo]:
        query = sa.select(t.secrets.c.name, t.secrets.c.created, t.secrets.c.updated)
        with self._store.transaction() as conn:
            rows = conn.execute(query.order_by(t.secrets.c.name)).mappings().all()
        return [SecretInfo(**row) for row in rows]

    def delete(self, name: str) -> None:
        with self._store.transaction(write=True) as conn:
            deleted = conn.execute(t.secrets.delete().where(t.secrets.c.name == name)).rowcount
        if not deleted:
            raise _missing(name)

    def resolve(self, text: str) -> str:
        """``text`` with every ``{{secret.NAME}}`` replaced by that secret's value."""
        return resolve_references(text, self.get)


def _missing(name: str) -> SecretError:
    return SecretError(
        f"No secret named '{name}'. Create it with `shipyard secret create {name}` "
        "(see `shipyard secret list`)."
    )


def get_secret(name: str, store: Store | None = None) -> str:
    """The value of the secret ``name``, from ``store`` (default: the store of the
    current SHIPYARD_HOME / SHIPYARD_STORE_URL). SecretError if it does not exist."""
    if store is not None:
        return SecretStore(store).get(name)
    from shipyard.store import Store

    with Store.open() as opened:
        return SecretStore(opened).get(name)

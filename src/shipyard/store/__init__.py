"""The metadata store: SQLite at ``$SHIPYARD_HOME/store.db`` or PostgreSQL by URL."""

from shipyard.store._records import (
    ComponentRecord,
    FlavorSourceRecord,
    ServiceRecord,
    StackRecord,
)
from shipyard.store.store import Store

__all__ = ["ComponentRecord", "FlavorSourceRecord", "ServiceRecord", "StackRecord", "Store"]

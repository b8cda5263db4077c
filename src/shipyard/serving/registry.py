"""The models one worker serves, by name: each with its predictor hooks and batcher.

Swapping a model (hot reload) replaces the entry in one dict assignment; requests that
already hold the old entry finish on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from shipyard.errors import ModelNotFoundError, ModelNotReadyError
from shipyard.models._inputs import InputType
from shipyard.models._signature import InputChecker
from shipyard.models.manifest import ModelManifest, Signature
from shipyard.serving._deadlines import Deadlines
from shipyard.serving._hooks import Hooks
from shipyard.serving.batching import AdaptiveBatcher
from shipyard.serving.config import AdmissionConfig, BatchingConfig

__all__ = ["LoadedModelLike", "ModelEntry", "ModelRegistry"]


class LoadedModelLike(Protocol):
    """What ``shipyard.models.load_model`` returns, as far as the server cares."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str | None: ...
    @property
    def manifest(self) -> ModelManifest | None: ...
    @property
    def predictor(self) -> Any: ...
    @property
    def signature(self) -> Signature | None: ...
    @property
    def input_example(self) -> Any: ...


@dataclass
class ModelEntry:
    """One served model: metadata, how to call its predictor, and its batcher (if any)."""

    name: str
    version: str | None
    uri: str
    model: LoadedModelLike
    hooks: Hooks
    batching: BatchingConfig
    batcher: AdaptiveBatcher | None = None
    admission: AdmissionConfig = field(default_factory=AdmissionConfig)
    #: Requests admitted and not answered yet (queued, predicting, or being encoded).
    inflight: int = 0
    ready: bool = True
    platform: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    text_inputs: frozenset[str] = frozenset()
    """BYTES inputs whose input example held ``str``: the predictor gets them decoded, as
    it would from ``load_model`` or a batch job."""
    input_type: InputType | None = None
    """What the predictor receives from every route: numpy, pandas, dict, or (None) as decoded."""
    input_check: InputChecker | None = field(init=False, repr=False)
    """The signature's checker, which remembers the layouts it accepted (None: no signature)."""
    deadlines: Deadlines = field(init=False, repr=False)
    """The running requests' deadlines (``admission.request_timeout`` each)."""

    def __post_init__(self) -> None:
        signature = self.signature
        self.input_check = InputChecker(signature) if signature is not None else None
        self.deadlines = Deadlines(self.admission.request_timeout)

    @property
    def signature(self) -> Signature | None:
        return self.model.signature

    def saturated(self) -> bool:
        """Nine tenths of the queue or more in use: readiness says no, so a balancer
        sends new traffic elsewhere before requests have to be refused."""
        return self.inflight * 10 >= self.admission.max_queue * 9

    def metadata(self) -> dict[str, Any]:
        """Open Inference Protocol model metadata."""
        sig = self.signature
        meta: dict[str, Any] = {
            "name": self.name,
            "versions": [self.version] if self.version else [],
            "platform": self.platform,
            "inputs": [
                {"name": s.name, "datatype": s.datatype, "shape": s.shape}
                for s in (sig.inputs if sig else [])
            ],
            "outputs": [
                {"name": s.name, "datatype": s.datatype, "shape": s.shape}
                for s in (sig.outputs if sig else [])
            ],
        }
        return meta


class ModelRegistry:
    """Models by name; lookups raise the errors the transports turn into 404/503."""

    def __init__(self) -> None:
        self._entries: dict[str, ModelEntry] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[ModelEntry]:
        return list(self._entries.values())

    def put(self, entry: ModelEntry) -> ModelEntry | None:
        """Serve ``entry`` under its name; returns the entry it replaced, if any."""
        old = self._entries.get(entry.name)
        self._entries[entry.name] = entry
        return old

    def find(self, name: str) -> ModelEntry | None:
        """The entry served under ``name``, ready or not; ``None`` if there is none."""
        return self._entries.get(name)

    def get(self, name: str, version: str | None = None) -> ModelEntry:
        entry = self._entries.get(name)
        if entry is None:
            served = ", ".join(repr(n) for n in self._entries) or "none"
            raise ModelNotFoundError(f"No model named {name!r} is served here; served: {served}.")
        if version is not None and version != entry.version:
            raise ModelNotFoundError(
                f"Model {name!r} has no version {version!r}; served version: "
                f"{entry.version or 'none (use the path without /versions/...)'}."
            )
        if not entry.ready:
            raise ModelNotReadyError(f"Model {name!r} is still loading; retry shortly.")
        return entry

    def only(self) -> ModelEntry:
        """The single model, for protocols whose URL names none (MLflow, Seldon)."""
        if len(self._entries) != 1:
            served = ", ".join(repr(n) for n in self._entries) or "none"
            raise ModelNotFoundError(
                f"This server serves {len(self._entries)} models ({served}); name one with "
                "the ?model=NAME query parameter."
            )
        return self.get(next(iter(self._entries)))

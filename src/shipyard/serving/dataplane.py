"""The one inference path every transport calls: validate → preprocess → batch → predict
→ split → postprocess → encode. It imports neither the web framework nor grpc.

Hot reload is two calls, so a supervisor can make several workers agree first:
``prepare_reload`` loads the new model beside the serving one and health-checks it with its
input example (raising ``ModelLoadError`` without touching what is served);
``commit_reload`` swaps it in, and requests already in flight finish on the old model.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard import __version__
from shipyard.errors import (
    BadRequestError,
    DeadlineExceededError,
    ModelLoadError,
    OverloadedError,
    PredictorError,
    ShipyardError,
)
from shipyard.models._inputs import as_input_type, input_type_for
from shipyard.serving._convert import model_inputs, output_tensors, text_inputs
from shipyard.serving._hooks import Hooks
from shipyard.serving.batching import AdaptiveBatcher
from shipyard.serving.config import AdmissionConfig, BatchingConfig, ModelSpec
from shipyard.serving.metrics import Metrics
from shipyard.serving.registry import LoadedModelLike, ModelEntry, ModelRegistry
from shipyard.serving.types import InferenceRequest, InferenceResponse, RequestedOutput

__all__ = ["DataPlane", "ReloadHandle"]

log = logging.getLogger("shipyard.serving")

#: Extensions of the Open Inference Protocol this server speaks.
EXTENSIONS = ["binary_tensor_data", "model_repository_health"]


@dataclass
class ReloadHandle:
    """A model loaded and checked by ``prepare_reload``, waiting for ``commit_reload``."""

    entry: ModelEntry


def _runs_inline(predictor: Any, config: BatchingConfig) -> bool:
    if config.executor != "auto":
        return config.executor == "inline"
    # Built-in CPU runtimes answer in well under a millisecond for small batches: handing
    # them to a thread costs more than it saves. A user's predictor may block for long
    # (network, GPU), so it runs in a thread and the event loop keeps reading requests.
    return type(predictor).__module__.startswith("shipyard.models.runtimes")


class DataPlane:
    """Serves the models of one worker process."""

    def __init__(self, metrics: Metrics | None = None, *, expose_errors: bool = False) -> None:
        self.registry = ModelRegistry()
        self.metrics = metrics
        #: Send a predictor's own exception text to clients (development only): it may
        #: hold paths, data or secrets. Off: a generic message with a request id, and
        #: the text in the server log under that id.
        self.expose_errors = expose_errors
        self._loading = 0
        #: Set when the server is broken for good (the supervisor gave up restarting a
        #: worker): readiness is then false, with this as the reason.
        self.not_ready_reason: str | None = None

    # -- lifecycle -------------------------------------------------------------------

    def build_entry(
        self,
        model: LoadedModelLike,
        uri: str,
        batching: BatchingConfig,
        name: str | None = None,
        admission: AdmissionConfig | None = None,
    ) -> ModelEntry:
        """Wrap a loaded model for serving (hooks classified once, batcher set up)."""
        served_name = name or model.name
        hooks = Hooks(model.predictor, inline=_runs_inline(model.predictor, batching))
        entry = ModelEntry(
            name=served_name,
            version=model.version,
            uri=uri,
            model=model,
            hooks=hooks,
            batching=batching,
            admission=admission or AdmissionConfig(),
            platform=model.manifest.format if model.manifest is not None else "",
            text_inputs=text_inputs(model.signature, model.input_example),
            input_type=input_type_for(model.predictor, model.signature),
        )
        enabled = batching.enabled if batching.enabled is not None else hooks.supports_batching
        if enabled:
            metrics = self.metrics

            def on_batch(rows: int, requests: int) -> None:
                if metrics is not None:
                    metrics.observe_batch(served_name, rows, requests)

            entry.batcher = AdaptiveBatcher(
                hooks.predict,
                batching,
                predictor_name=hooks.name,
                on_batch=on_batch,
                in_thread=not hooks.inline and not hooks.predict_is_async,
            )
        return entry

    def load_model(
        self, spec: ModelSpec, batching: BatchingConfig, admission: AdmissionConfig | None = None
    ) -> ModelEntry:
        """Load ``spec`` (blocking) and build its entry; not yet served."""
        from shipyard.models import load_model

        model = load_model(spec.uri, name=spec.name, **spec.load_options())
        return self.build_entry(model, spec.uri, batching, spec.name, admission)

    def add(self, entry: ModelEntry) -> None:
        """Serve ``entry`` (replacing a model of the same name)."""
        self.registry.put(entry)

    async def check(self, entry: ModelEntry) -> None:
        """Run the model's input example through it; ``ModelLoadError`` if that fails."""
        example = entry.model.input_example
        if example is None:
            return
        try:
            if isinstance(example, dict):
                example = {str(k): np.asarray(v) for k, v in example.items()}
            inputs = as_input_type(example, entry.input_type, entry.signature)
            pre = await entry.hooks.preprocess(inputs)
            out = await entry.hooks.predict(pre)
            post = await entry.hooks.postprocess(out)
            output_tensors(post, entry.signature, None)
        except Exception as err:
            raise ModelLoadError(
                f"Model {entry.name!r} from {entry.uri} failed its health check (predicting "
                f"its input example): {err}"
            ) from err

    async def prepare_reload(
        self,
        uri: str,
        name: str,
        batching: BatchingConfig | None = None,
        trust: dict[str, Any] | None = None,
    ) -> ReloadHandle:
        """Load ``uri`` to replace model ``name`` and health-check it; serve nothing yet.

        Raises ``ModelLoadError`` (the serving model untouched) if it cannot load or answer.
        """
        current = self.registry.find(name)
        config = batching or (current.batching if current else BatchingConfig())
        admission = current.admission if current else None
        spec = ModelSpec(uri=uri, name=name, **(trust or {}))
        try:
            entry = await asyncio.to_thread(self.load_model, spec, config, admission)
        except ShipyardError as err:
            if isinstance(err, ModelLoadError):
                raise
            raise ModelLoadError(f"Cannot load {uri} as model {name!r}: {err}") from err
        except Exception as err:
            raise ModelLoadError(
                f"Cannot load {uri} as model {name!r}: {type(err).__name__}: {err}"
            ) from err
        await self.check(entry)
        return ReloadHandle(entry)

    def commit_reload(self, handle: ReloadHandle) -> None:
        """Serve the prepared model; in-flight requests finish on the old one."""
        self.registry.put(handle.entry)

    # -- health and metadata ---------------------------------------------------------

    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        """Every model loaded and none saturated (see ``ModelEntry.saturated``), and the
        server not broken for good (``not_ready_reason``)."""
        entries = self.registry.entries()
        return (
            self.not_ready_reason is None
            and len(entries) > 0
            and all(e.ready and not e.saturated() for e in entries)
        )

    def server_metadata(self) -> dict[str, Any]:
        return {"name": "shipyard", "version": __version__, "extensions": EXTENSIONS}

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        return self.registry.get(name, version).metadata()

    def model_ready(self, name: str, version: str | None = None) -> bool:
        entry = self.registry.get(name, version)
        return entry.ready and not entry.saturated()

    # -- inference -------------------------------------------------------------------

    async def infer(
        self,
        name: str,
        version: str | None,
        request: InferenceRequest,
        timeout: float | None = None,
    ) -> InferenceResponse:
        """Answer one Open Inference Protocol request (or a tabular one, see ``dataframe``).

        ``timeout`` is the client's own deadline in seconds (gRPC's ``grpc-timeout``), if
        shorter than the model's. Cancelling the calling task (the client went away)
        drops the request from the queue before it reaches ``predict``.
        """
        entry = self.registry.get(name, version)
        if request.dataframe is not None:
            inputs = request.dataframe
        else:
            inputs = model_inputs(
                request.inputs, entry.signature, entry.text_inputs, entry.input_check
            )
        inputs = as_input_type(inputs, entry.input_type, entry.signature)
        if request.params is not None and not entry.hooks.takes_params:
            raise BadRequestError(
                f'The request has "params", but model {entry.name!r} ({entry.hooks.name}) '
                'takes none: drop "params", or give the predictor '
                "predict(self, inputs, params=None)."
            )
        return await self._admit(
            entry, inputs, request.id, request.outputs, timeout, request.params
        )

    async def infer_dataframe(
        self,
        name: str,
        version: str | None,
        frame: Any,
        request_id: str | None = None,
    ) -> InferenceResponse:
        """Answer a tabular request (MLflow ``dataframe_split``/``records``/CSV)."""
        entry = self.registry.get(name, version)
        inputs = as_input_type(frame, entry.input_type, entry.signature)
        return await self._admit(entry, inputs, request_id, None, None)

    async def _admit(
        self,
        entry: ModelEntry,
        inputs: Any,
        request_id: str | None,
        requested: list[RequestedOutput] | None,
        timeout: float | None,
        params: dict[str, Any] | None = None,
    ) -> InferenceResponse:
        """Refuse at once when the model's queue is full; else run within the deadline.
        Every request comes through here, MLflow ``params`` or not."""
        admission = entry.admission
        if entry.inflight >= admission.max_queue:
            raise OverloadedError(
                f"Model {entry.name!r} has {entry.inflight} requests in progress, the most "
                f"this worker holds (--max-queue {admission.max_queue}); retry shortly."
            )
        seconds = admission.request_timeout
        if timeout is not None and timeout < seconds:
            seconds = timeout
        entry.inflight += 1
        deadline = entry.deadlines.start(seconds)
        try:
            return await self._run(entry, inputs, request_id, requested, params)
        except PredictorError as err:
            if self.expose_errors:
                raise
            raise _hidden(entry.name, err) from err
        except asyncio.CancelledError:
            # Cancelled by its deadline: the queued request has left the batcher's
            # queue unpredicted; one inside a running predict is not torn out of it.
            if not deadline.caused():
                raise
            raise DeadlineExceededError(
                f"Model {entry.name!r} did not answer within {seconds:g} s (the request "
                "timeout); the server is busy or the model is slow: retry later or raise "
                "--request-timeout."
            ) from None
        finally:
            entry.deadlines.end(deadline)
            entry.inflight -= 1

    async def _run(
        self,
        entry: ModelEntry,
        inputs: Any,
        request_id: str | None,
        requested: list[RequestedOutput] | None,
        params: dict[str, Any] | None = None,
    ) -> InferenceResponse:
        hooks = entry.hooks
        # A request with MLflow ``params`` is never merged with others (their params may
        # differ): it runs alone, past the batcher.
        batcher = entry.batcher if params is None else None
        if hooks.pre_is_async and batcher is not None:
            batcher.arriving += 1
            try:
                pre = await hooks.preprocess(inputs)
            finally:
                batcher.arriving -= 1
        else:
            pre = await hooks.preprocess(inputs)
        if batcher is not None:
            out = await batcher.submit(pre)
        else:
            out = await hooks.predict(pre, params)
            if self.metrics is not None:
                rows = getattr(pre, "shape", (1,))[0] if getattr(pre, "ndim", 0) else 1
                self.metrics.observe_batch(entry.name, int(rows), 1)
        post = await hooks.postprocess(out)
        tensors, is_frame = output_tensors(post, entry.signature, requested)
        return InferenceResponse(
            model_name=entry.name,
            model_version=entry.version,
            id=request_id,
            outputs=tensors,
            parameters={"content_type": "pd"} if is_frame else {},
        )


def _hidden(model: str, err: PredictorError) -> PredictorError:
    """What the client sees of a predictor's failure: a request id to find it in the log."""
    request_id = uuid.uuid4().hex[:16]
    log.error("request %s: model %r: %s", request_id, model, err.message, exc_info=err)
    hidden = PredictorError(
        f"Model {model!r} failed on this request (request id {request_id}); the server log "
        "has the details under that id. Start the server with --expose-errors to send "
        "them to clients (development only)."
    )
    hidden.logged = True  # type: ignore[attr-defined]
    return hidden

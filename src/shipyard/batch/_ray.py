"""The ``ray`` engine: the same job, with Ray actors on a cluster doing the shards.

Planning, the manifest, ``--resume`` (exactly once per row, input order), ``--on-error``
and the output are the local engine's (``_job``): this module is only a pool with the
interface of ``_pool.Pool``, whose workers are Ray actors instead of local processes. Each
actor loads the model once and reads its shards from the input itself (on whichever node
it runs), predicts them and writes their parts; only shard descriptions and results travel
through Ray, never rows, so there is no per-row cost (Ray Data's ``map_batches`` moves
every block through the object store).

Start-up: each actor is a new process on its node, so it pays the imports and the model
load itself (the local engine's workers share one load across a fork). A scikit-learn
tree ensemble is loaded from its compiled tree cache alone (``WorkerSpec.lazy``, see
``models.trees._cached``), which ``prepare_tree_cache`` completes here first.

No deadlock: one actor per free CPU of the cluster at most, and no other tasks are needed
(Ray Data's read tasks need CPUs of their own, which actors holding every CPU starve).

Credentials (a model URI's, a model server's bearer token) never go into the actors'
arguments, which Ray keeps and shows: the arguments carry ``{{secret.NAME}}`` references,
the values wait on the cluster under the job's own scope (``shipyard._ray.secrets``) and
are dropped when the pool stops. Trust is checked where each actor loads the model.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

from shipyard.batch._pool import apply_worker_state
from shipyard.batch._worker import THREAD_VARS, WorkerSpec
from shipyard.errors import ConfigError, PredictorError

if TYPE_CHECKING:
    from shipyard.batch._plan import Plan
    from shipyard.batch._shard import ShardTask

__all__ = ["RayPool", "prepare_tree_cache", "start_ray_pool"]


class _ShardActor:
    """Runs in a Ray worker process: one scorer, many shards."""

    def __init__(self, spec: WorkerSpec) -> None:
        for var in THREAD_VARS:
            os.environ.setdefault(var, str(spec.threads))
        import ray

        from shipyard.batch._worker import make_scorer

        #: What Ray created the actor with: references, never the credentials.
        self.spec = spec
        self.node: str = ray.get_runtime_context().get_node_id()
        self.error: tuple[str, str] | None = None
        self.scorer: Any = None
        try:
            self.scorer = make_scorer(_resolved(spec))
        except Exception as err:
            self.error = _masked_payload(err)

    def ready(self) -> tuple[Any, ...]:
        if self.error is not None:
            return ("fatal", *self.error)
        return ("ready", self.node, self.scorer.name, self.scorer.features_default())

    def run(self, task: ShardTask) -> tuple[Any, ...]:
        import dataclasses

        from shipyard.batch._shard import run_shard

        if self.error is not None:  # shards may be queued before the model failed to load
            return ("fatal", *self.error)
        counts = [0, 0]

        def progress(rows: int, rejected: int) -> None:
            counts[0] += rows
            counts[1] += rejected

        try:
            result = run_shard(task, self.scorer, progress)
        except Exception as err:
            return ("fatal", *_masked_payload(err))
        # The node that read and predicted the shard goes into the job's manifest.
        return ("done", dataclasses.replace(result, node=self.node), counts[0], counts[1])


def _masked_payload(err: BaseException) -> tuple[str, str]:
    """``error_payload`` with credentials masked (a fetch library's message may quote the
    URI the actor resolved)."""
    from shipyard._redact import mask_credentials
    from shipyard.batch._shard import error_payload

    name, message = error_payload(err)
    return name, mask_credentials(message)


def _resolved(spec: WorkerSpec) -> WorkerSpec:
    """``spec`` with its references replaced by the values kept on the cluster."""
    if spec.secrets_scope is None:
        return spec
    from shipyard._ray.secrets import resolve_on_cluster

    scope = spec.secrets_scope
    headers = spec.service_headers
    return dataclasses.replace(
        spec,
        model_uri=None if spec.model_uri is None else resolve_on_cluster(spec.model_uri, scope),
        service_headers=None
        if headers is None
        else {k: resolve_on_cluster(v, scope) for k, v in headers.items()},
    )


def _without_secrets(spec: WorkerSpec) -> tuple[WorkerSpec, dict[str, str]]:
    """``spec`` with references in place of its credentials, and their values."""
    from shipyard._redact import mask_credentials

    if not spec.service_headers and (
        spec.model_uri is None or mask_credentials(spec.model_uri) == spec.model_uri
    ):
        # Nothing to hand over: the secrets package (and SQLAlchemy under it) stays
        # unimported while the actors wait to be created.
        return spec, {}
    from shipyard.secrets import reference, split_credentials

    values: dict[str, str] = {}
    uri = spec.model_uri
    if uri is not None:
        uri, values = split_credentials(uri)
    headers = spec.service_headers
    if headers:
        for i, value in enumerate(headers.values()):
            values[f"header-{i}"] = value
        headers = {key: reference(f"header-{i}") for i, key in enumerate(headers)}
    return dataclasses.replace(spec, model_uri=uri, service_headers=headers), values


def _caller_trust(spec: WorkerSpec) -> dict[str, Any] | None:
    """The trust options with the caller's allow-list applied here: the actors'
    environment is the cluster's, not the caller's (``SHIPYARD_TRUSTED_MODEL_URIS``)."""
    if spec.model_uri is None or spec.trust is None:
        return spec.trust
    from shipyard.config import get_settings
    from shipyard.models._trust import allow_listed

    listed = allow_listed(spec.model_uri, get_settings().trusted_model_uris)
    return {**spec.trust, "trusted": bool(spec.trust.get("trusted")) or listed}


class _Conn:
    """What the coordinator calls ``conn``: ``send(task)`` starts the shard on the actor."""

    def __init__(self, child: _ActorChild) -> None:
        self.child = child

    def send(self, task: ShardTask) -> None:
        self.child.running = self.child.actor.run.remote(task)
        self.child.shard = task.shard.index


class _ActorChild:
    def __init__(self, key: int, actor: Any) -> None:
        self.key = key
        self.actor = actor
        self.conn = _Conn(self)
        self.ready = False
        self.info: tuple[str, list[str] | None] | None = None
        self.shard: int | None = None
        self.node: str | None = None
        #: The answer to ``ready()`` until it came; the shard being run.
        self.loading: Any = actor.ready.remote()
        self.running: Any = None


class RayPool:
    """Ray actors with the interface ``_job`` expects of a worker pool."""

    def __init__(self, placements: list[tuple[str, float]], spec: WorkerSpec) -> None:
        """One actor per (node id, CPUs) placement, pinned to that node."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        remote: Any = ray.remote(_ShardActor)
        #: What every actor is created with (references in place of credentials).
        self.spec = spec
        #: The node of each actor, in order.
        self.placed = [node for node, _ in placements]
        self.children = [
            _ActorChild(
                i,
                remote.options(
                    num_cpus=cpus,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
                ).remote(spec),
            )
            for i, (node, cpus) in enumerate(placements)
        ]

    def keep(self, n: int) -> None:
        import ray

        extra, self.children = self.children[n:], self.children[:n]
        for child in extra:
            ray.kill(child.actor)

    def idle(self) -> list[_ActorChild]:
        """Actors with no shard, loaded or not: once one actor has loaded the model, the
        others get their first shard too (Ray queues it until their model is loaded), so
        every actor, hence every node, reads and predicts from the start."""
        return [c for c in self.children if c.shard is None and c.running is None]

    def receive(self, timeout: float) -> list[tuple[Any, ...]]:
        import ray

        waiting = {c.loading: c for c in self.children if c.loading is not None}
        waiting.update({c.running: c for c in self.children if c.running is not None})
        if not waiting:
            return []
        done, _ = ray.wait(list(waiting), num_returns=1, timeout=timeout)
        if done:
            more, _ = ray.wait(list(waiting), num_returns=len(waiting), timeout=0)
            done = list(dict.fromkeys([*done, *more]))
        messages: list[tuple[Any, ...]] = []
        for ref in done:
            child = waiting[ref]
            if ref == child.loading:
                child.loading = None
            else:
                child.running = None
            try:
                answer = ray.get(ref)
            except ray.exceptions.RayError as err:
                messages.append(("died", child.key, str(err).splitlines()[0]))
                continue
            kind = answer[0]
            if kind == "ready":
                child.node = answer[1]
                messages.append(("ready", child.key, answer[2], answer[3]))
            elif kind == "done":
                messages.append(("progress", child.key, answer[2], answer[3]))
                messages.append(("done", child.key, answer[1]))
            else:  # fatal: (kind, class name, message)
                messages.append(("fatal", child.key, child.shard, answer[-2], answer[-1]))
        return messages

    def handle(self, msg: tuple[Any, ...], plan: Plan) -> _ActorChild | None:
        kind, key = msg[0], msg[1]
        child = next((c for c in self.children if c.key == key), None)
        if child is None:
            return None
        if kind == "died":
            where = (
                f" on {plan.shards[child.shard].describe(plan)}" if child.shard is not None else ""
            )
            raise PredictorError(
                f"A Ray actor died{where}: {msg[2]}. Finished shards are kept: fix the cause "
                "and run again with --resume."
            )
        apply_worker_state(child, msg)
        return child

    def wait_ready(self, plan: Plan, timeout: float = 300.0) -> tuple[str, list[str] | None]:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in self.receive(1.0):
                child = self.handle(msg, plan)
                if child is not None and child.info is not None:
                    return child.info
        raise ConfigError(
            f"No Ray actor loaded the model within {timeout:.0f}s: the cluster may lack the "
            "CPUs they reserve (see `ray status`), or the model loads very slowly."
        )

    def stop(self, graceful: bool) -> None:
        import ray

        for child in self.children:
            ray.kill(child.actor)
        _drop(self.spec)


def _drop(spec: WorkerSpec) -> None:
    if spec.secrets_scope is not None:
        from shipyard._ray.secrets import drop_secrets

        drop_secrets(spec.secrets_scope)


def _free_cpus_per_node(ray: Any, wait: float = 15.0) -> dict[str, float]:
    """Free CPUs of each alive node; a moment is given to actors just killed (a previous
    job's) to hand theirs back, as Ray reports it a little later."""
    import time

    from ray._private.state import state

    deadline = time.monotonic() + wait
    while True:
        alive = {n["NodeID"] for n in ray.nodes() if n.get("Alive")}
        free = {
            node: float(resources.get("CPU", 0.0))
            for node, resources in state.available_resources_per_node().items()
            if node in alive
        }
        total = float(ray.cluster_resources().get("CPU", 0.0))
        if sum(free.values()) >= min(1.0, total) or time.monotonic() > deadline:
            return free
        time.sleep(0.25)


def placements(free: dict[str, float], workers: int | None) -> list[tuple[str, float]]:
    """Where the actors go: each on one node, within what that node has free, so none
    waits for CPUs that only exist summed over several nodes (an actor of 1 CPU never
    fits two nodes with 0.5 free each: that job would wait forever). One actor per free
    CPU (a node's fraction too), round-robin over the nodes; with ``workers``, that many,
    sharing what is free."""
    slots: list[tuple[str, float]] = []
    for node, cpus in sorted(free.items(), key=lambda item: -item[1]):
        whole, part = divmod(cpus, 1.0)
        slots += [(node, 1.0)] * int(whole)
        if part >= 0.05:
            slots.append((node, round(part, 2)))
    # Round-robin over nodes, so even two actors land on two nodes.
    by_node: dict[str, list[tuple[str, float]]] = {}
    for slot in slots:
        by_node.setdefault(slot[0], []).append(slot)
    ordered: list[tuple[str, float]] = []
    while any(by_node.values()):
        for node in list(by_node):
            if by_node[node]:
                ordered.append(by_node[node].pop(0))
    if workers is None or workers <= len(ordered):
        return ordered[: workers or len(ordered)]
    # More actors than free slots: they share each node's free CPUs.
    shared: list[tuple[str, float]] = []
    nodes = [node for node, cpus in free.items() if cpus >= 0.05]
    for i in range(workers):
        node = nodes[i % len(nodes)]
        count = len(range(i % len(nodes), workers, len(nodes)))
        shared.append((node, round(free[node] / count, 2)))
    return shared


def prepare_tree_cache(spec: WorkerSpec) -> None:
    """Complete a local scikit-learn tree ensemble's compiled cache here, before the
    actors start, so each of them loads from the cache alone (``load_model(lazy=True)``:
    no scikit-learn import, no unpickling: seconds of CPU saved on every node).

    Only for a model the cache has converted before (``save_model`` does, as does any
    earlier load) whose cache is not complete for this engine version: a complete cache
    is only checked (its files and the model file's hash), and other models are left to
    the actors as always (a full load here would cost every job seconds for nothing).
    On a cluster of several machines an actor whose node does not see this directory
    finds no cache there and loads the model in full. Any error is left to the actors,
    which report it as they always did.
    """
    if spec.model_uri is None:
        return
    from shipyard.models._uri import is_local_uri

    if not is_local_uri(spec.model_uri):
        return  # the driver does not fetch a remote model only to warm a cache
    try:
        from shipyard.models import load_model
        from shipyard.models._detect import detect_model
        from shipyard.models._uri import resolve_model_uri
        from shipyard.models.runtimes.sklearn import SklearnPredictor
        from shipyard.models.trees._cached import converted_before, load_cached

        model_dir, manifest = detect_model(resolve_model_uri(spec.model_uri))
        if manifest.format != "sklearn" or manifest.predictor:
            return
        runtime = SklearnPredictor(manifest)
        runtime.model_dir = model_dir
        model_file = runtime.model_path()
        if manifest.serialization == "skops" or model_file.suffix == ".skops":
            return  # always loaded in full (its type check is its load)
        trees, _ = load_cached(model_file, manifest.method or "predict")
        if trees is None and converted_before(model_file):
            load_model(spec.model_uri, lazy=True, **(spec.trust or {}))
    except Exception as err:
        import logging

        logging.getLogger("shipyard.batch").debug("No tree cache prepared: %s", err)


def start_ray_pool(address: str | None, workers: int | None, spec: WorkerSpec) -> RayPool:
    """Connect to the cluster and start the actors: ``workers`` of them, default one per
    free CPU of the cluster, each placed on a node that has its CPUs free."""
    from shipyard._ray.connect import connect

    prepare_tree_cache(spec)

    connect(address or "auto")
    import ray

    where = placements(_free_cpus_per_node(ray), workers)
    if not where:
        raise ConfigError(
            "The Ray cluster has no free CPU for batch actors (Serve replicas or other jobs "
            "hold them all); free some, or add a node."
        )
    import uuid

    clean, values = _without_secrets(dataclasses.replace(spec, trust=_caller_trust(spec)))
    # One thread per actor (each holds its CPUs); a tree ensemble from its cache alone.
    clean = dataclasses.replace(
        clean,
        threads=1,
        secrets_scope=f"batch-{uuid.uuid4().hex}" if values else None,
        lazy=True,
    )
    if clean.secrets_scope is not None:
        from shipyard._ray.secrets import put_secrets

        put_secrets(clean.secrets_scope, values)
    try:
        return RayPool(where, clean)
    except BaseException:
        _drop(clean)
        raise

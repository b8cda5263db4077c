"""An emulated Kubernetes API server for the kserve/seldon tests: kmock's
``KubernetesEmulator`` (a maintained, stateful emulator that speaks the real REST paths),
run on 127.0.0.1 in a thread of its own so the official synchronous client can talk to it.

On top of kmock's store we add the few API-server rules our flavors rely on (201 on
create, ``metadata.generation`` bumped when the spec changes, a uid) and refusals scripted
*before* any state changes (403, 409, 422 as a real server sends them). The tests play the
operator: ``controller`` runs a function over every stored object, as a reconcile loop.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import enums

#: (verb, plural, name or "") -> (HTTP status, Status reason, message, causes)
Refusal = tuple[int, str, str, list[dict[str, str]]]
Reconcile = Callable[[dict[str, Any]], dict[str, Any] | None]


@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesEmulator):
    """kmock's emulator with generation bookkeeping and scripted refusals."""

    refusals: dict[tuple[str, str, str], Refusal] = attrs.field(factory=dict)

    async def _handle(self, request: Any) -> aiohttp.web.StreamResponse:
        verb = {
            enums.action.CREATE: "create",
            enums.action.UPDATE: "patch",
            enums.action.DELETE: "delete",
            enums.action.FETCH: "get",
            enums.action.LIST: "list",
        }.get(request.action, "")
        plural = request.resource.plural if request.resource is not None else ""
        name = request.name or ((request.data or {}).get("metadata") or {}).get("name") or ""
        refusal = self.refusals.get((verb, plural, name)) or self.refusals.get((verb, plural, ""))
        if refusal is not None:
            code, reason, message, causes = refusal
            status = {
                "apiVersion": "v1",
                "kind": "Status",
                "status": "Failure",
                "code": code,
                "reason": reason,
                "message": message,
                "details": {"name": name, "kind": plural, "causes": causes},
            }
            return aiohttp.web.json_response(status, status=code)
        response: aiohttp.web.StreamResponse = await super()._handle(request)
        if request.action == enums.action.CREATE and response.status == 200:
            response.set_status(201)
        return response

    def _bump(self, request: Any, created: bool) -> dict[str, Any]:
        namespace = request.namespace or ((request.data or {}).get("metadata") or {}).get(
            "namespace"
        )
        name = request.name or request.data["metadata"]["name"]
        obj = self.objects[request.resource, namespace, name]
        history = [v for v in obj.history if v is not None]
        metadata = dict(obj.get("metadata") or {})
        if created:
            changes = {"generation": 1, "uid": str(uuid.uuid4())}
        else:
            before = history[-2] if len(history) > 1 else {}
            generation = int((before.get("metadata") or {}).get("generation") or 1)
            if before.get("spec") != obj.get("spec"):
                generation += 1
            changes = {"generation": generation}
        obj.patch({"metadata": {**changes, "resourceVersion": str(len(history))}})
        del metadata
        return dict(obj.raw)

    async def _serve_create(self, request: Any) -> Any:
        return self._bump(request, created=True)

    async def _serve_update(self, request: Any) -> Any:
        return self._bump(request, created=False)


def _key(resource: Any) -> str:
    return "/".join(part for part in (resource.group, resource.version, resource.plural) if part)


class Cluster:
    """The running emulator: its URL, a kubeconfig for it, and the test's operator."""

    def __init__(self, server: ApiServer, url: str, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.url = url.rstrip("/")
        self.loop = loop
        self.kubeconfig: Path | None = None
        self._controllers: list[asyncio.Task[None]] = []

    def _run(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the emulator's loop (its store is not thread-safe) and return."""

        async def call() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout=10)

    def declare(self, api_version: str, plural: str, kind: str, namespaced: bool = True) -> None:
        key = f"{api_version}/{plural}"

        def add() -> None:
            self.server.resources[key] = kmock.ResourceInfo(kind=kind, namespaced=namespaced)

        self._run(add)

    def get(self, api_version: str, plural: str, namespace: str | None, name: str) -> Any:
        """The stored object, or None (never created, or deleted)."""
        for item in self.items(api_version, plural):
            meta = item.get("metadata") or {}
            if meta.get("name") == name and meta.get("namespace", namespace) == namespace:
                return item
        return None

    def history(self, api_version: str, plural: str, name: str) -> list[dict[str, Any]]:
        """Every version the object had, oldest first (deletions left out)."""

        def read() -> list[dict[str, Any]]:
            for (resource, _, obj_name), obj in self.server.objects.items():
                if obj_name == name and _key(resource) == f"{api_version}/{plural}":
                    return [copy.deepcopy(dict(v)) for v in obj.history if v is not None]
            return []

        found: list[dict[str, Any]] = self._run(read)
        return found

    def items(self, api_version: str, plural: str) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            found = []
            for (resource, _, _), obj in self.server.objects.items():
                if _key(resource) == f"{api_version}/{plural}" and not obj.deleted:
                    found.append(copy.deepcopy(dict(obj.raw)))
            return found

        found: list[dict[str, Any]] = self._run(read)
        return found

    def put(
        self, api_version: str, plural: str, namespace: str | None, body: dict[str, Any]
    ) -> None:
        """Store an object directly (as if created by someone else)."""

        def write() -> None:
            key = (f"{api_version}/{plural}", namespace, body["metadata"]["name"])
            self.server.objects[key] = body

        self._run(write)

    def refuse(
        self,
        verb: str,
        plural: str,
        code: int,
        message: str,
        name: str = "",
        reason: str = "",
        causes: list[dict[str, str]] | None = None,
    ) -> None:
        def add() -> None:
            self.server.refusals[(verb, plural, name)] = (
                code,
                reason or {403: "Forbidden", 409: "Conflict", 422: "Invalid"}.get(code, ""),
                message,
                causes or [],
            )

        self._run(add)

    def allow(self) -> None:
        self._run(self.server.refusals.clear)

    @contextmanager
    def controller(
        self, api_version: str, plural: str, reconcile: Reconcile, every: float = 0.02
    ) -> Iterator[None]:
        """Run ``reconcile(obj)`` on each stored object every ``every`` seconds while the
        block runs; a dict it returns is merged into the object's ``status``, as an
        operator writing its status subresource."""
        stop = threading.Event()

        async def loop() -> None:
            while not stop.is_set():
                for (resource, _, _), obj in list(self.server.objects.items()):
                    if obj.deleted or _key(resource) != f"{api_version}/{plural}":
                        continue
                    status = reconcile(copy.deepcopy(dict(obj.raw)))
                    if status is not None and status != obj.get("status"):
                        obj.patch({"status": None})
                        obj.patch({"status": status})
                await asyncio.sleep(every)

        future = asyncio.run_coroutine_threadsafe(loop(), self.loop)
        try:
            yield
        finally:
            stop.set()
            future.result(timeout=10)

    def write_kubeconfig(self, directory: Path, namespace: str = "models") -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulated", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "not-a-secret"}}],
            "contexts": [
                {
                    "name": "emulated",
                    "context": {"cluster": "emulated", "user": "tester", "namespace": namespace},
                }
            ],
            "current-context": "emulated",
        }
        path = directory / "kubeconfig.yaml"
        path.write_text(json.dumps(config))
        self.kubeconfig = path
        return path


@contextmanager
def running_cluster(timeout: float = 10.0) -> Iterator[Cluster]:
    """Start the emulator on 127.0.0.1 (a free port) in a thread; stop it at the end."""
    started = threading.Event()
    box: dict[str, Any] = {}

    def serve() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)

        async def main() -> None:
            stop = asyncio.Event()
            async with ApiServer() as server, kmock.Server(server, host="127.0.0.1") as http:
                box.update(cluster=Cluster(server, str(http.url), loop), stop=stop)
                started.set()
                await stop.wait()

        try:
            loop.run_until_complete(main())
        except BaseException as err:  # reported to the test below, not lost in a thread
            box["error"] = err
            started.set()
        finally:
            loop.close()

    thread = threading.Thread(target=serve, name="kube-emulator", daemon=True)
    thread.start()
    if not started.wait(timeout) or "error" in box:
        raise RuntimeError(f"The emulated API server did not start: {box.get('error')}")
    cluster: Cluster = box["cluster"]
    try:
        yield cluster
    finally:
        cluster.loop.call_soon_threadsafe(box["stop"].set)
        thread.join(timeout)


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Poll ``condition`` until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"Timed out after {timeout} s waiting for {what or condition}")
        time.sleep(0.02)

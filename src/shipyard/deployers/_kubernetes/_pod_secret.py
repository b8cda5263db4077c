"""The pods' Kubernetes Secret, as a model deployer builds and applies it (the values in
``_secrets``); and credential-named ``env`` values turned into secret references."""

from __future__ import annotations

import re
from typing import Any, cast

from shipyard.deployers._kubernetes._client import KubernetesClient
from shipyard.deployers._kubernetes._config import KubernetesDeploymentConfig
from shipyard.deployers._kubernetes._labels import ownership
from shipyard.deployers._kubernetes._pod import server_env
from shipyard.deployers._kubernetes._secrets import (
    TOKEN_KEY,
    decoded,
    env_entries,
    new_token,
    pod_secret_name,
    secret_manifest,
    storage_credentials,
)
from shipyard.deployers._kubernetes._service import KubernetesModelService
from shipyard.services.service import ServiceConfig, service_type_of
from shipyard.store import Store

__all__ = ["PodSecrets", "references_only"]


class PodSecrets:
    """What ``KubernetesModelDeployer`` does about its pods' Secret (a mixin: it needs
    the deployer's ``store``, ``flavor``, ``client()`` and ``runs_shipyard_server``)."""

    store: Store
    flavor: str

    def client(self) -> KubernetesClient:
        raise NotImplementedError

    def runs_shipyard_server(self, service: KubernetesModelService) -> bool:
        raise NotImplementedError

    def pod_env(self, service: KubernetesModelService) -> list[dict[str, Any]]:
        """The model container's env: the config's (credentials as ``secretKeyRef``s) and,
        for Shipyard's server, its token and trust decision."""
        config = cast(KubernetesDeploymentConfig, service.config)
        secret = pod_secret_name(service.resource_name)
        entries, _ = env_entries(config.env, secret, lambda text: text)
        if self.runs_shipyard_server(service):
            entries += server_env(
                secret=secret,
                auth=config.auth,
                origin=service.storage_uri,
                trusted=service.model_trusted,
                sha256=config.sha256,
            )
        return entries

    def storage_secret(self, service: KubernetesModelService) -> bool:
        """Whether the model URI's credentials go to the storage initializer in the
        pods' Secret."""
        return bool(storage_credentials(service.config.model_uri, lambda text: text)[1])

    def pod_secret_data(
        self, service: KubernetesModelService, token: str, resolve: Any = None
    ) -> dict[str, str]:
        """What the pods' Secret holds, resolved from the secrets store ({} for none)."""
        config = cast(KubernetesDeploymentConfig, service.config)
        resolve = resolve or self._resolver()
        secret = pod_secret_name(service.resource_name)
        _, data = env_entries(config.env, secret, resolve)
        data.update(storage_credentials(config.model_uri, resolve)[1])
        if self.runs_shipyard_server(service) and config.auth:
            data[TOKEN_KEY] = token
        return data

    def _resolver(self) -> Any:
        from shipyard.secrets import SecretStore

        return SecretStore(self.store).resolve

    def pod_secret(self, service: KubernetesModelService, masked: bool = False) -> dict[str, Any]:
        """The pods' Secret manifest (values hidden with ``masked``); {} when none."""
        data = (
            self.pod_secret_data(service, "", lambda text: text)
            if masked
            else self.pod_secret_data(service, new_token())
        )
        if not data:
            return {}
        labels, _ = ownership(self.flavor, service.uuid, service_type_of(type(service)), {})
        return secret_manifest(
            pod_secret_name(service.resource_name),
            service.cluster.namespace,
            labels,
            data,
            masked=masked,
        )

    def apply_secret(
        self, service: KubernetesModelService, owner: dict[str, Any] | None = None
    ) -> None:
        """Create or update the pods' Secret (its token kept), owned by ``owner`` (the
        resource, once it exists): the cluster deletes it with the resource."""
        name = pod_secret_name(service.resource_name)
        client = self.client()
        current = client.get_secret(name)
        data = self.pod_secret_data(service, decoded(current, TOKEN_KEY) or new_token())
        if not data:
            if current is not None:
                client.delete_secret(name)
            service.secret = ""
            return
        labels, _ = ownership(self.flavor, service.uuid, service_type_of(type(service)), {})
        body = secret_manifest(name, service.cluster.namespace, labels, data)
        if owner is not None and (owner.get("metadata") or {}).get("uid"):
            body["metadata"]["ownerReferences"] = [
                {
                    "apiVersion": owner["apiVersion"],
                    "kind": owner["kind"],
                    "name": owner["metadata"]["name"],
                    "uid": owner["metadata"]["uid"],
                }
            ]
        client.apply_secret(body)
        service.secret = name


def references_only(config: ServiceConfig, save: Any) -> ServiceConfig:
    """``config`` with each credential-named ``env`` value replaced by a ``{{secret.X}}``
    reference, the value given to ``save(X, value)`` (None: a dry run, nothing saved)."""
    from shipyard._redact import secret_key_name
    from shipyard.secrets import has_references, reference

    env: dict[str, str] = dict(getattr(config, "env", None) or {})
    moved = dict(env)
    for name, value in env.items():
        if value and secret_key_name(name) and not has_references(value):
            # Named by model and variable: a redeploy of the same config is a no-op.
            key = re.sub(r"[^A-Za-z0-9_.-]", "-", f"env-{config.model_name}-{name}")[:128]
            if save is not None:
                save(key, value)
            moved[name] = reference(key)
    return config.model_copy(update={"env": moved}) if moved != env else config

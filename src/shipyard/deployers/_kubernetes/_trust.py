"""Model trust at deploy time, on the client's side, for a pod's model.

The pod loads a local copy (/mnt/models) of the model URI, so the loader there cannot
tell a downloaded pickle from the user's own file: the decision is taken here, with the
rule of ``models._trust`` (a local folder is the user's own; a remote pickle/joblib needs
``trusted``, a pinned ``sha256`` or an allow-listed URI prefix), and handed to the pod
explicitly (``_pod.server_env``). A platform runtime (MLServer's scikit-learn or MLflow
server) cannot be told, so for those this check is the only one.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import urlsplit

from shipyard._redact import mask_credentials
from shipyard.errors import UntrustedModelError

__all__ = ["PICKLE_SUFFIXES", "check_deploy_trust", "names_pickle"]

PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")


def names_pickle(uri: str) -> bool:
    """Whether ``uri``'s path names a pickle or joblib file."""
    path = urlsplit(uri).path if "://" in uri else uri
    return PurePosixPath(path).suffix.lower() in PICKLE_SUFFIXES


def check_deploy_trust(
    uri: str,
    *,
    remote: bool,
    risk: str | None,
    trusted: bool,
    sha256: str | None,
    checks_pin: bool,
) -> bool:
    """Whether the pods' loader is told to trust the model; ``UntrustedModelError`` when a
    remote model that runs code (``risk`` says how) was trusted by nobody. A pinned
    ``sha256`` counts only where the pod's server checks it (``checks_pin``: Shipyard's).

    A local model directory (uploaded by the deployer) is the user's own choice: trusted.
    """
    if not remote:
        return True
    from shipyard.config import get_settings
    from shipyard.models._trust import SAFE_FORMATS, allow_listed

    listed = allow_listed(uri, get_settings().trusted_model_uris)
    if risk is None or trusted or listed:
        return trusted or listed
    if sha256 and checks_pin:
        return False  # the pod's server checks the pin before loading
    if sha256:
        raise UntrustedModelError(
            f"Refusing to deploy {mask_credentials(uri)}: {risk}, and the pinned --sha256 "
            "can only be checked by Shipyard's server in the pod, not by this runtime. Pass "
            "--trust if you trust the model's source, or deploy it with Shipyard's runtime "
            "(kserve: predictor=custom; seldon: implementation=custom)."
        )
    raise UntrustedModelError(
        f"Refusing to deploy {mask_credentials(uri)}: {risk}, and loading it runs whatever "
        "code its author put in it. If you trust its source, pass --trust (trusted=True), "
        "pin its content with --sha256 HEX, or add its URI prefix to "
        f"SHIPYARD_TRUSTED_MODEL_URIS; or save the model as {SAFE_FORMATS}, which run no code."
    )

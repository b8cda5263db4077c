"""The exception hierarchy: one root, with the HTTP status (and so the gRPC code) on the class.

Messages are written for the person who reads them: what happened, with which object,
and how to fix it.
"""

from __future__ import annotations

from shipyard._redact import mask_credentials

__all__ = [
    "BadRequestError",
    "ConfigError",
    "DeadlineExceededError",
    "DeploymentError",
    "IllegalTransitionError",
    "InvalidInputError",
    "MethodNotAllowedError",
    "MissingDependencyError",
    "ModelLoadError",
    "ModelNotFoundError",
    "ModelNotReadyError",
    "NotFoundError",
    "OverloadedError",
    "PayloadTooLargeError",
    "PredictorError",
    "SecretError",
    "ServiceError",
    "ServiceNotFoundError",
    "ShipyardError",
    "StackError",
    "StoreError",
    "StoreUnwritableError",
    "UnauthorizedError",
    "UnsupportedMediaTypeError",
    "UntrustedModelError",
]


class ShipyardError(Exception):
    """Root of every error Shipyard raises on purpose."""

    #: HTTP status the REST layer answers with; the gRPC layer maps it to a status code.
    status_code: int = 500

    def __init__(self, message: str) -> None:
        # Every message may quote a URI: its credentials are hidden here, once, so no
        # terminal, log line, JSON error or registry field shows them.
        message = mask_credentials(message)
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadRequestError(ShipyardError):
    """The caller sent something we cannot use."""

    status_code = 400


class InvalidInputError(BadRequestError):
    """Request data does not fit the model's signature (name, dtype, shape or value)."""


class UnsupportedMediaTypeError(ShipyardError):
    status_code = 415


class PayloadTooLargeError(ShipyardError):
    status_code = 413


class UnauthorizedError(ShipyardError):
    """The server wants a bearer token and the request had none, or a wrong one."""

    status_code = 401


class NotFoundError(ShipyardError):
    status_code = 404


class MethodNotAllowedError(ShipyardError):
    """The path exists, not with this method; ``allow`` lists the methods it takes (the
    REST layer sends it as the ``Allow`` header)."""

    status_code = 405

    def __init__(self, message: str, allow: str) -> None:
        super().__init__(message)
        self.allow = allow


class ModelNotFoundError(NotFoundError):
    """No model of that name (or version) is served here."""


class ModelNotReadyError(ShipyardError):
    status_code = 503


class OverloadedError(ShipyardError):
    """The model's queue is full: the request was refused at once (load shedding), without
    being queued. Retrying after ``retry_after`` seconds is safe."""

    status_code = 503
    retry_after = 1
    #: How ``/metrics`` counts it among the requests that were not served.
    unserved = "shed"


class DeadlineExceededError(ShipyardError):
    """The request's deadline (``--request-timeout``, the model's own, or the client's
    ``grpc-timeout``) passed before its answer was ready; it was not predicted if it was
    still queued."""

    status_code = 504
    unserved = "timeout"


class ConfigError(ShipyardError):
    """A configuration value is wrong; the message names the key and what is allowed."""

    status_code = 400


class MissingDependencyError(ShipyardError):
    """An optional framework is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str, purpose: str = "") -> None:
        what = f" for {purpose}" if purpose else ""
        super().__init__(
            f"The package '{package}' is needed{what} but is not installed. "
            f"Install it with: pip install 'shipyard[{extra}]'"
        )
        self.package = package
        self.extra = extra


class ModelLoadError(ShipyardError):
    """A model directory or file could not be loaded."""


class UntrustedModelError(ModelLoadError):
    """A model whose format runs code when loaded (pickle, joblib, cloudpickle) came from
    somewhere the caller did not say they trust; the message names the ways to trust it
    and the formats that run no code."""

    status_code = 403


class PredictorError(ShipyardError):
    """The user's predictor raised; the message carries its own message."""


class StoreError(ShipyardError):
    """The metadata store failed or holds something unexpected."""


class StoreUnwritableError(StoreError):
    """The store (or a service's run directory) cannot be written now: a read-only file
    or file system, or a full disk. Reading still works."""

    status_code = 503


class SecretError(ShipyardError):
    """A secret is missing, badly named, or cannot be decrypted with this home's key."""

    status_code = 400


class StackError(ShipyardError):
    """Stacks and stack components: unknown names, bad flavors, illegal changes."""

    status_code = 400


class ServiceError(ShipyardError):
    """A model server (Service) could not be started, stopped, checked or updated."""


class ServiceNotFoundError(NotFoundError):
    """No model server with that UUID (or name) is in the registry."""


class DeploymentError(ServiceError):
    """A deployment failed; the previous server (if any) keeps serving."""


class IllegalTransitionError(ServiceError):
    """A service was moved between two states its lifecycle does not connect (the table
    is ``shipyard.services.state.TRANSITIONS``)."""

    status_code = 409

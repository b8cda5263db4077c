"""Model deployers: the base API and one sub-package per flavor."""

from shipyard.deployers.base import BaseModelDeployer, ModelDeployer

__all__ = ["BaseModelDeployer", "ModelDeployer"]

"""The HTTP side of the model server: a raw ASGI app over the data plane."""

from shipyard.serving.http.app import HttpApp

__all__ = ["HttpApp"]

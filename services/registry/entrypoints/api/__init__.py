"""The operator REST API of a registry node, versioned under ``/v1``."""

from registry.entrypoints.api.app import create_app

__all__ = ["create_app"]

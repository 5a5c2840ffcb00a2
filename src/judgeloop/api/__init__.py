"""The HTTP API."""

from judgeloop.api.app import create_app

__all__ = ["create_app"]

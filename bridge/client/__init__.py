"""The Python client: `from bridge.client import Client`."""

from bridge.client.client import Client, FrameMsg, ServerError

__all__ = ["Client", "FrameMsg", "ServerError"]

"""The Python client: `from bridge.client import Client`; guidance buffers to send (1.3): GuidanceBuffers."""

from bridge.client.client import Client, FrameMsg, ServerError
from bridge.protocol.guidance import GuidanceBuffers

__all__ = ["Client", "FrameMsg", "GuidanceBuffers", "ServerError"]

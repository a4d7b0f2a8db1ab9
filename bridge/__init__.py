"""WorldBridge daemon side: wire protocol, sessions, scheduler, Python client and CLI."""

__version__ = "0.1.0"

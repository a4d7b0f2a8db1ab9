"""Open a client on a world: a daemon this command starts (`--world`) or one already running (`--connect`).

Used by `worldbridge play` and `worldbridge rollout`. Turns the usual mistakes (no daemon at the address,
a wrong token, a world that does not load, a port in use) into one-line UserErrors.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import zmq

from bridge.client.client import Client, ServerError
from bridge.client.launch import DaemonProcess
from bridge.tools.errors import UserError


@dataclass
class Connection:
    client: Client
    address: str
    daemon: DaemonProcess | None  # the daemon this command started, if any (stopped on exit)


def _daemon_failure(world: str, log: str) -> str:
    """The daemon's own one-line complaint (its last line), without the command prefix."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip() and ln.strip() != "daemon did not start:"]
    last = lines[-1] if lines else "no output"
    return f"could not start a daemon for --world {world}: {last.removeprefix('worldbridge serve: ')}"


@contextmanager
def open_world(
    world: str | None = None, address: str | None = None, *, width: int = 128, height: int = 128,
    name: str = "python", token: str = "", seed: int = 0, serve_args: Sequence[str] = (),
    connect_timeout: float = 5.0, frame_timeout: float = 30.0,
) -> Iterator[Connection]:
    """Yield a connected Connection; a daemon started here is stopped when the block ends."""
    if (world is None) == (address is None):
        raise UserError("give either --world (start a daemon) or --connect (use a running one)")
    daemon = None
    if world is not None:
        try:
            daemon = DaemonProcess(world, *serve_args)
        except RuntimeError as e:
            raise UserError(_daemon_failure(world, str(e))) from None
        address = daemon.address
    try:
        try:
            client = Client(address, width=width, height=height, name=name, token=token, seed=seed,
                            timeout=connect_timeout)
        except TimeoutError:
            raise UserError(f"no WorldBridge daemon answered at {address} within {connect_timeout:g} s "
                            "(start one with `worldbridge serve`, or use --world to start one)") from None
        except zmq.ZMQError as e:
            raise UserError(f"{address} is not a ZeroMQ endpoint like tcp://127.0.0.1:5557 ({e})") from None
        except ServerError as e:
            if e.code == 401:
                raise UserError(f"the daemon at {address} needs a token: pass --token or set WORLDBRIDGE_TOKEN"
                                ) from None
            raise UserError(f"the daemon at {address} refused the session: {e}") from None
        client.timeout_ms = int(frame_timeout * 1000)  # a neural world's first frames can take a while
        try:
            yield Connection(client, address, daemon)
        finally:
            client.close()
    finally:
        if daemon is not None:
            daemon.stop()

"""ZMTP 3.1 framing written from RFC 23/37, for tests and vectors: what a library-free client sends.

The daemon itself uses libzmq; this module exists to prove that a client built from docs/protocol.md section 8
interoperates with it, and to generate the byte vectors the C# and GDScript clients test against.
"""

from __future__ import annotations

import socket
import struct

GREETING = b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x01" + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31
MORE, LONG, COMMAND = 0x01, 0x02, 0x04


def frame(body: bytes, more: bool = False, command: bool = False) -> bytes:
    flags = (MORE if more else 0) | (COMMAND if command else 0)
    if len(body) > 255:
        return bytes([flags | LONG]) + struct.pack(">Q", len(body)) + body
    return bytes([flags, len(body)]) + body


def command(name: str, data: bytes = b"") -> bytes:
    return frame(bytes([len(name)]) + name.encode() + data, command=True)


def ready(socket_type: str) -> bytes:
    name, value = b"Socket-Type", socket_type.encode()
    return command("READY", bytes([len(name)]) + name + struct.pack(">I", len(value)) + value)


def ping(ttl_ds: int, context: bytes) -> bytes:
    return command("PING", struct.pack(">H", ttl_ds) + context)


def pong(context: bytes) -> bytes:
    return command("PONG", context)


def error(reason: str) -> bytes:
    return command("ERROR", bytes([len(reason)]) + reason.encode())


def message(frames: list[bytes]) -> bytes:
    return b"".join(frame(f, more=i < len(frames) - 1) for i, f in enumerate(frames))


class RawDealer:
    """A blocking ZMTP 3.1 DEALER over a plain TCP socket (tests only)."""

    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.sendall(GREETING)
        peer = self._read(64)
        assert peer[0] == 0xFF and peer[9] == 0x7F and peer[10] == 3, f"not a ZMTP 3 greeting: {peer!r}"
        self.sock.sendall(ready("DEALER"))
        kind, body = self._read_frame()
        assert kind == "command" and body[1:6] == b"READY", body

    def _read(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("peer closed")
            buf += chunk
        return buf

    def _read_frame(self) -> tuple[str, bytes, bool]:
        flags = self._read(1)[0]
        size = struct.unpack(">Q", self._read(8))[0] if flags & LONG else self._read(1)[0]
        body = self._read(size)
        if flags & COMMAND:
            return "command", body
        return ("more" if flags & MORE else "last"), body

    def send(self, frames: list[bytes]) -> None:
        self.sock.sendall(message(frames))

    def recv(self) -> list[bytes]:
        """Next message's frames; answers PING commands on the way."""
        frames: list[bytes] = []
        while True:
            kind, body = self._read_frame()
            if kind == "command":
                if body[1:5] == b"PING":
                    self.sock.sendall(pong(body[7:]))
                continue
            frames.append(body)
            if kind == "last":
                return frames

    def close(self) -> None:
        self.sock.close()

"""Python client for the WorldBridge daemon: handshake, inputs, credits, frames as numpy arrays, latency.

    with Client("tcp://127.0.0.1:5557", width=128, height=128) as c:
        c.grant(2)
        c.send_input(move=(0, 1))
        f = c.recv_frame()        # f.image: (H, W, 3) uint8, f.latency_ms

Used by the tests, `worldbridge bench` and the viewer. Speaks docs/protocol.md through pyzmq.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import zmq
from PIL import Image

from bridge import protocol


class ServerError(Exception):
    """The daemon answered with an error message."""

    def __init__(self, msg: dict[str, Any]):
        super().__init__(f"{msg['name']} ({msg['code']}): {msg['message']}")
        self.code, self.name, self.message = msg["code"], msg["name"], msg["message"]


@dataclass
class FrameMsg:
    header: dict[str, Any]
    image: np.ndarray  # (H, W, 3|4) uint8, top row first
    latency_ms: float  # input-to-frame on this client's clock (nan before any input)


class Client:
    def __init__(
        self, address: str = "tcp://127.0.0.1:5557", *, engine: str = "opencv", width: int = 128,
        height: int = 128, format: str = "rgb8", row_order: str = "top_down", credits: int = 0,
        name: str = "python", token: str = "", seed: int = 0, timeout: float = 10.0,
    ):
        self.timeout_ms = int(timeout * 1000)
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(address)
        self.seq = 0
        self.welcome = self._handshake(
            protocol.hello(name, engine, width, height, format, row_order, credits, ["pose"], token, seed=seed)
        )

    def _handshake(self, hello: dict[str, Any]) -> dict[str, Any]:
        self.send(hello)
        msg, _ = self.recv()
        if msg["type"] == "error":
            self.sock.close(0)
            raise ServerError(msg)
        if msg["type"] != "welcome":
            raise ConnectionError(f"expected welcome, got {msg['type']}")
        return msg

    # ------------------------------------------------------------------------------------ raw messages

    def send(self, msg: dict[str, Any], payload: bytes | None = None) -> None:
        self.sock.send_multipart([protocol.pack(msg)] + ([payload] if payload is not None else []))

    def recv(self, timeout: float | None = None) -> tuple[dict[str, Any], bytes | None]:
        """Next message from the daemon as (map, payload or None); TimeoutError if none arrives."""
        ms = self.timeout_ms if timeout is None else int(timeout * 1000)
        if not self.sock.poll(ms):
            raise TimeoutError(f"no message from the daemon within {ms} ms")
        frames = self.sock.recv_multipart()
        return protocol.unpack(frames[0]), (frames[1] if len(frames) > 1 else None)

    # ----------------------------------------------------------------------------------------- helpers

    def send_input(
        self, move=(0.0, 0.0), look=(0.0, 0.0), buttons: int = 0, pose: dict | None = None,
        fov_deg: float | None = None, image: np.ndarray | None = None,
    ) -> int:
        """Send controller state (and, while recording, the engine's frame `image`: (H, W, 3|4) uint8, top
        row first, at the welcome's size, rendered from `pose`). Returns the input's seq."""
        self.seq += 1
        spec = payload = None
        if image is not None:
            h, w, c = image.shape
            spec = {"width": w, "height": h, "format": "rgb8" if c == 3 else "rgba8", "row_order": "top_down"}
            payload = np.ascontiguousarray(image, dtype=np.uint8).tobytes()
        self.send(protocol.input_msg(self.seq, time.monotonic(), move, look, buttons, pose, fov_deg, spec), payload)
        return self.seq

    def grant(self, n: int = 1) -> None:
        self.send(protocol.credit(n))

    def recv_frame(self, timeout: float | None = None) -> FrameMsg:
        """Next frame; raises ServerError on an error message. Other replies (pong, reset_ok) are skipped."""
        while True:
            msg, payload = self.recv(timeout)
            if msg["type"] == "error":
                raise ServerError(msg)
            if msg["type"] == "frame":
                now = time.monotonic()
                latency = (now - msg["input_t"]) * 1e3 if msg["input_seq"] >= 0 else float("nan")
                return FrameMsg(msg, self._decode(msg, payload), latency)

    @staticmethod
    def _decode(h: dict[str, Any], payload: bytes) -> np.ndarray:
        if h["format"] == "jpeg":
            return np.asarray(Image.open(io.BytesIO(payload)).convert("RGB"))
        img = np.frombuffer(payload, np.uint8).reshape(h["height"], h["width"], 3 if h["format"] == "rgb8" else 4)
        return img[::-1] if h["row_order"] == "bottom_up" else img

    def expect(self, kind: str, timeout: float | None = None) -> dict[str, Any]:
        """Skip frames until a message of `kind` arrives; raises ServerError on an error."""
        while True:
            msg, _ = self.recv(timeout)
            if msg["type"] == kind:
                return msg
            if msg["type"] == "error":
                raise ServerError(msg)

    def reset(self, seed: int = 0, pose: dict | None = None, image: np.ndarray | None = None) -> dict[str, Any]:
        """Start a new episode; returns reset_ok. Frames of the old episode still in flight are skipped."""
        spec = None
        if image is not None:
            h, w = image.shape[:2]
            spec = {"width": w, "height": h, "format": "rgb8", "row_order": "top_down"}
            image = np.ascontiguousarray(image[..., :3], dtype=np.uint8).tobytes()
        self.send(protocol.reset(seed, pose, spec), image)
        return self.expect("reset_ok")

    def start_recording(self, name: str = "") -> dict[str, Any]:
        """Ask the daemon to record this session; returns record_ok (the name the daemon chose, the size
        images must have). Raises ServerError (403 when the daemon has no recording directory)."""
        self.send(protocol.record_start(name))
        return self.expect("record_ok")

    def stop_recording(self, timeout: float | None = None) -> dict[str, Any]:
        """Stop recording; returns record_done once the daemon has written the files (path, frames)."""
        self.send(protocol.record_stop())
        return self.expect("record_done", timeout)

    def ping(self) -> float:
        """Round trip to the daemon in ms."""
        t = time.monotonic()
        self.send(protocol.ping(t))
        self.expect("pong")
        return (time.monotonic() - t) * 1e3

    def close(self) -> None:
        if not self.sock.closed:
            try:
                self.send(protocol.bye())
            finally:
                self.sock.close(0)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

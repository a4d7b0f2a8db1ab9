"""Python client for the WorldBridge daemon: handshake, inputs, credits, frames as numpy arrays, latency.

    with Client("tcp://127.0.0.1:5557", width=128, height=128) as c:
        c.grant(2)
        c.send_input(move=(0, 1))
        f = c.recv_frame()        # f.image: (H, W, 3) uint8, f.latency_ms

Used by the tests, `worldbridge bench` and the viewer. Speaks docs/protocol.md through pyzmq.

A session can end under a client (the daemon restarted, shut down, or reaped it): recv_frame() then raises
SessionClosed (the daemon said bye), ServerError 408/409 (it no longer knows this session) or TimeoutError
(no daemon at all). reconnect() opens a new connection with the same settings and retries with backoff until
a daemon welcomes it; the new session starts a new episode (frame seq 0) and holds no credits.

Guided worlds (protocol 1.3): `guidance_offer` is the welcome's guidance map (None for other worlds);
send_input(pose=..., guidance=GuidanceBuffers(colour=..., depth=...)) sends the engine's buffers of that camera.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import zmq
from PIL import Image

from bridge.protocol import guidance as wire_guidance
from bridge.protocol import messages as protocol


class SessionClosed(ConnectionError):
    """The daemon ended the session unasked (it is shutting down): reconnect() to go on."""


class ServerError(Exception):
    """The daemon answered with an error message."""

    def __init__(self, msg: dict[str, Any]):
        super().__init__(f"{msg['name']} ({msg['code']}): {msg['message']}")
        self.code, self.name, self.message = msg["code"], msg["name"], msg["message"]

    @property
    def session_lost(self) -> bool:
        """The daemon no longer has this client's session (expired, a daemon restarted, or the replica hosting it
        was lost: 503): reconnect()."""
        return self.code in (protocol.ErrorCode.EXPIRED, protocol.ErrorCode.NO_SESSION, protocol.ErrorCode.UNAVAILABLE)


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
        curve_server_key: str = "", prompt: str = "",
    ):
        """`curve_server_key`: the daemon's CurveZMQ public key (z85, from `serve --curve-secret-file`); when
        given, the connection is encrypted and only a daemon holding the matching secret key can answer.
        `prompt` (protocol 1.2): the scene in text for worlds with the "prompt" capability ("": the world's)."""
        self.address, self.curve_server_key = address, curve_server_key
        self.timeout_ms = int(timeout * 1000)
        self.ctx = zmq.Context.instance()
        self.seq = 0
        self.hello = protocol.hello(name, engine, width, height, format, row_order, credits, ["pose"], token,
                                    seed=seed, prompt=prompt)
        self.sock = self._connect()
        self.welcome = self._handshake(self.hello)

    def _connect(self) -> zmq.Socket:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        if self.curve_server_key:
            public, secret = zmq.curve_keypair()  # a throwaway client key: the token authenticates the client
            sock.curve_serverkey = self.curve_server_key.encode()
            sock.curve_publickey, sock.curve_secretkey = public, secret
        sock.connect(self.address)
        return sock

    def reconnect(self, timeout: float = 30.0) -> dict[str, Any]:
        """A new connection and session with the same settings (a new episode, no credits); returns the welcome.

        Retries with backoff while no daemon answers or it is full or shutting down (503), up to `timeout`
        seconds; other refusals (401, 426) raise at once."""
        deadline, backoff = time.monotonic() + timeout, 0.1
        while True:
            self.sock.close(0)
            self.sock = self._connect()  # a fresh socket: nothing of the old session can arrive on it
            left = deadline - time.monotonic()
            try:
                self.welcome = self._handshake({**self.hello, "credits": 0}, timeout=max(0.1, min(left, 2.0)))
                return self.welcome
            except (TimeoutError, ServerError) as e:
                if isinstance(e, ServerError) and e.code != protocol.ErrorCode.UNAVAILABLE:
                    raise
                if time.monotonic() + backoff > deadline:
                    raise TimeoutError(f"no daemon at {self.address} welcomed us within {timeout:g} s") from e
            time.sleep(backoff)
            backoff = min(2.0, backoff * 2)

    def _handshake(self, hello: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        self.send(hello)
        msg, _ = self.recv(timeout)
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

    @property
    def guidance_offer(self) -> dict[str, Any] | None:
        """1.3: the welcome's `guidance` map ({buffers, width, height, scales}) of a guided world, else None."""
        return self.welcome.get("guidance")

    def send_input(
        self, move=(0.0, 0.0), look=(0.0, 0.0), buttons: int = 0, pose: dict | None = None,
        fov_deg: float | None = None, image: np.ndarray | None = None, guidance: Any = None,
        depth_format: str = "f32",
    ) -> int:
        """Send controller state (and, while recording, the engine's frame `image`: (H, W, 3|4) uint8, top
        row first, at the welcome's size, rendered from `pose`). Returns the input's seq.

        `guidance` (1.3): the engine's buffers of the camera `pose` places, top row first: an object with
        colour/depth/ids arrays (bridge.protocol.guidance.GuidanceBuffers, runtime.guidance.Guidance) sent with
        `depth_format` ("f32" or "f16"), or a ready wire map (bridge.protocol.guidance.encode's). Its size must be
        one guidance_offer allows; the daemon holds it until a newer one (or a reset)."""
        self.seq += 1
        spec = payload = None
        if image is not None:
            h, w, c = image.shape
            spec = {"width": w, "height": h, "format": "rgb8" if c == 3 else "rgba8", "row_order": "top_down"}
            payload = np.ascontiguousarray(image, dtype=np.uint8).tobytes()
        if guidance is not None and not isinstance(guidance, dict):
            guidance = wire_guidance.encode(guidance, depth_format=depth_format)
        self.send(protocol.input_msg(self.seq, time.monotonic(), move, look, buttons, pose, fov_deg, spec, guidance),
                  payload)
        return self.seq

    def grant(self, n: int = 1) -> None:
        self.send(protocol.credit(n))

    def recv_frame(self, timeout: float | None = None) -> FrameMsg:
        """Next frame; raises ServerError on an error message, SessionClosed when the daemon says bye. Other
        replies (pong, reset_ok) are skipped."""
        while True:
            msg, payload = self.recv(timeout)
            if msg["type"] == "error":
                raise ServerError(msg)
            if msg["type"] == "bye":
                raise SessionClosed("the daemon closed the session (shutting down)")
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
            if msg["type"] == "bye":
                raise SessionClosed("the daemon closed the session (shutting down)")

    def reset(self, seed: int = 0, pose: dict | None = None, image: np.ndarray | None = None,
              prompt: str = "") -> dict[str, Any]:
        """Start a new episode; returns reset_ok. Frames of the old episode still in flight are skipped.
        `prompt` (1.2) describes the scene from this episode on ("": keep this session's); reconnect() sends it
        in its hello."""
        spec = None
        if image is not None:
            h, w = image.shape[:2]
            spec = {"width": w, "height": h, "format": "rgb8", "row_order": "top_down"}
            image = np.ascontiguousarray(image[..., :3], dtype=np.uint8).tobytes()
        self.send(protocol.reset(seed, pose, spec, prompt), image)
        ok = self.expect("reset_ok")
        if prompt:
            self.hello = {**self.hello, "prompt": prompt}
        return ok

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

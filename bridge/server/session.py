"""One client session: what the handshake agreed, the newest input, credits, and pending episode changes.

Sessions are plain state, shared between the daemon's socket thread (which writes inputs, credits, resets) and its
stepping thread (which consumes them). The fields fall in two groups:
- the handshake's (identity, sid, client, engine, width, height, format, row_order, jpeg_quality, guidance_offer)
  are set when the session is made and never written again, so either thread reads them (and encode(),
  wire_pose()) freely;
- every other field is read and written only under the daemon's one lock. The stepping thread snapshots what a
  step needs into a Job (bridge/server/daemon.py) under the lock, steps and encodes from that without it, and
  writes its results (frame_seq, in_flight) back under the lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bridge.protocol import images, poses
from bridge.protocol.guidance import GuidanceBuffers
from runtime.guidance import Guidance
from runtime.world import Action


@dataclass
class PendingReset:
    seed: int
    pose: np.ndarray | None = None  # (4, 4) canonical camera-to-world
    image: np.ndarray | None = None  # (H, W, 3) uint8, top row first
    reply: bool = True  # answer with reset_ok (not for the hello's first episode)


@dataclass(frozen=True)
class SentGuidance:
    """1.3: an input's guidance as the engine sent it, for the recorder (docs/protocol.md 4a): every buffer, also
    those the world does not read (a recording keeps what the engine knows), and the depth encoding it chose."""

    buffers: GuidanceBuffers  # top-down arrays at the size sent
    depth_format: str  # "f32" or "f16": what a recording stores depth as


@dataclass
class Session:
    # fixed by the handshake: read by both threads without the lock
    identity: bytes  # ZeroMQ routing id
    sid: str
    client: str
    engine: str
    width: int
    height: int
    format: str
    row_order: str
    jpeg_quality: int
    # 1.3: the welcome's guidance map (the sizes and buffers this session's world takes); None: not a guided world
    guidance_offer: dict[str, Any] | None = None
    # mutable: only under the daemon's lock
    credits: int = 0
    episode: int = 0
    frame_seq: int = 0
    in_flight: bool = False
    last_seen: float = field(default_factory=time.monotonic)
    reset: PendingReset | None = None
    prompt: str = ""  # 1.2: the session's scene text, set in the world after each of its resets ("": the default)
    # newest input; look deltas accumulate until a step consumes them
    input_seq: int = -1
    input_t: float = 0.0
    input_arrived: float = 0.0
    move: tuple[float, float] = (0.0, 0.0)
    look: tuple[float, float] = (0.0, 0.0)
    buttons: int = 0
    pose: np.ndarray | None = None
    fov_deg: float | None = None
    guidance: Guidance | None = None  # 1.3: held from the newest input that carried one until a reset
    sent_guidance: SentGuidance | None = None  # the same, whole, for recording (daemons with --record-dir only)

    def apply_input(self, msg: dict[str, Any], guidance: Guidance | None = None,
                    sent: SentGuidance | None = None) -> None:
        """Take a validated input; `guidance`: its decoded buffers the world reads, `sent`: all of them as sent
        (None: it carried none, or nothing records; the held ones stay)."""
        self.input_seq, self.input_t, self.input_arrived = msg["seq"], msg["t"], time.monotonic()
        self.move = tuple(max(-1.0, min(1.0, v)) for v in msg["move"])
        self.look = (self.look[0] + msg["look"][0], self.look[1] + msg["look"][1])
        self.buttons = msg["buttons"]
        if msg["pose"] is not None:
            self.pose = poses.to_canonical(self.engine, msg["pose"]["p"], msg["pose"]["q"])
        if msg["fov_deg"] is not None:
            self.fov_deg = msg["fov_deg"]
        if guidance is not None:
            self.guidance = guidance
        if sent is not None:
            self.sent_guidance = sent

    def take_action(self) -> Action:
        """The action for the next step; consumes the accumulated look deltas."""
        action = Action(self.move, self.look, self.buttons, self.pose, self.fov_deg, self.guidance)
        self.look = (0.0, 0.0)
        return action

    def wire_pose(self, c2w: np.ndarray) -> dict[str, list[float]]:
        p, q = poses.from_canonical(self.engine, c2w)
        return {"p": p.tolist(), "q": q.tolist()}

    def encode(self, pixels: np.ndarray) -> bytes | memoryview:
        """(H, W, 3) uint8 top-down RGB -> the bytes this client asked for (no copy when none is needed)."""
        return images.encode(pixels, self.format, self.row_order, self.jpeg_quality)

"""The one interface between the daemon and anything that produces frames.

A world hosts many episodes at once (one per client session), each identified by an opaque hashable key.
`step` advances every given episode by one frame; worlds that can batch (the neural model, the maze's
vectorised renderer) do all of them in one call.

Camera convention everywhere in runtime/: OpenCV camera-to-world 4x4 matrices (camera x right, y down,
z forward) in the canonical world frame: x east, y down, z north. The floor is the plane y = 0, so a point
h units above the floor has y = -h. Engines' conventions are converted in bridge/protocol/poses.py, nowhere else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from runtime.guidance import Guidance

BUTTON_RUN = 1 << 0  # bit 0 of Action.buttons: move faster
FPS = 16  # frames per second of every world here: one step is 1/16 s (LingBot-World's video rate too)


class CheckpointError(ValueError):
    """A model directory that cannot be served: a file missing, or weights that do not match the architecture.
    The message names the file and every offending tensor."""


@dataclass(frozen=True)
class Action:
    """Controller state for one step.

    move: (strafe right, forward), each in [-1, 1].
    look: (yaw right, pitch up) in degrees, accumulated since the previous step.
    buttons: bitmask (BUTTON_RUN, ...).
    pose: optional (4, 4) float64 camera-to-world (OpenCV, canonical world). When given, the camera is placed
        there and move/look are ignored for positioning (the engine owns the camera).
    fov_deg: optional vertical field of view in degrees; the world's default when None.
    guidance: optional buffers of the engine's camera for this frame (runtime/guidance.py); worlds with the
        "guidance" capability render from them, others ignore them.
    """

    move: tuple[float, float] = (0.0, 0.0)
    look: tuple[float, float] = (0.0, 0.0)
    buttons: int = 0
    pose: np.ndarray | None = None
    fov_deg: float | None = None
    guidance: Guidance | None = None


IDLE = Action()


@dataclass
class Frame:
    """What one step of one episode produced."""

    pixels: np.ndarray  # (H, W, 3) uint8 RGB, first row = top of the image
    pose: np.ndarray  # (4, 4) camera-to-world of this frame, OpenCV, canonical world


class World(ABC):
    """Many episodes of one world. Implementations need not be thread-safe: the daemon calls them from one
    stepping thread only."""

    name: str = "world"
    fps: float = FPS  # frames per second of play: one step advances time by 1 / fps
    fov_deg: float = 60.0  # vertical field of view of its frames when an action does not set one
    # What the world does with optional inputs: "pose" (renders from engine camera poses), "start_image"
    # (begins an episode from an image given at reset), "prompt" (takes a text description of the scene),
    # "guidance" (renders from the engine's guidance buffers, Action.guidance).
    capabilities: tuple[str, ...] = ("pose",)
    # With "guidance": the buffers it reads (runtime/guidance.py BUFFERS), and the frame-size fractions it takes
    # them at (1: the frame's size, 2: half of it, ...).
    guidance_buffers: tuple[str, ...] = ()
    guidance_scales: tuple[int, ...] = (1,)

    @abstractmethod
    def frame_size(self, width: int, height: int) -> tuple[int, int]:
        """The (width, height) this world will actually render when a client asks for (width, height)."""

    @abstractmethod
    def reset(
        self,
        key: Hashable,
        seed: int,
        width: int,
        height: int,
        pose: np.ndarray | None = None,
        image: np.ndarray | None = None,
    ) -> None:
        """Start (or restart) episode `key`. `pose` is a start camera-to-world; `image` an optional (H, W, 3)
        uint8 start frame, used by worlds that can begin from an image. Same seed and inputs -> same frames."""

    @abstractmethod
    def step(self, actions: dict[Hashable, Action]) -> dict[Hashable, Frame]:
        """Advance each episode in `actions` by one frame; returns one Frame per key."""

    @abstractmethod
    def close(self, key: Hashable) -> None:
        """Forget episode `key` (no error if unknown)."""

    def episode_bytes(self, width: int, height: int) -> int:
        """Memory one more episode of (width, height) frames holds on the world's device (its KV cache and
        other per-episode state), in bytes: what a replica pool (bridge/server/replicas.py) places sessions by.
        The default, one frame of RGB pixels, is a nominal figure for worlds that keep no model state per
        episode (the maze)."""
        return width * height * 3

    def set_prompt(self, key: Hashable, prompt: str) -> None:
        """Describe episode `key`'s scene in text, from its next frame on. Worlds without the "prompt"
        capability ignore it."""
        return None


class EpisodesLost(RuntimeError):
    """A step that could not make some episodes' frames (their host is gone) but made the others': `frames`
    holds those, `lost` says for each lost key why. Lost episodes are forgotten; the world itself goes on."""

    def __init__(self, frames: dict[Hashable, Frame], lost: dict[Hashable, str]):
        super().__init__(f"{len(lost)} episode(s) lost: " + "; ".join(sorted(set(lost.values()))))
        self.frames, self.lost = frames, lost

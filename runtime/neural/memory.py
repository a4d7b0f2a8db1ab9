"""Pose-indexed memory of one episode: past frames the model can look at again when the camera comes back.

The KV cache (runtime/neural/kv_cache.py) shows the model its first frames (sinks) and the last second (the
window); everything in between is gone, so a place seen 30 s ago is dreamed anew. A memory keeps, every
`stride` frames, the finished frame's keys and values (what the cache pass wrote) together with its camera
pose, in a bounded store. Before each frame the entries whose views overlap the current camera's most
(runtime.camera.frustum_overlap, from the engine's exact pose or the dead-reckoned one) are put into the cache's
memory slots, which the model attends to like extra sinks (WorldMem and Context-as-Memory retrieve by view
overlap the same way). Frames still in the window are not retrieved: the model sees them anyway.

Anchoring: a frame made where a stored frame was made (within ANCHOR_DISTANCE and ANCHOR_DEG: standing still, or
walking back over the same poses) can start from that frame's latent, noised part-way, instead of from pure noise
(SDEdit-style; the sampler's `anchor` time says how far): the model re-renders the place as it first drew it
rather than drawing it anew, so what it drew does not drift away however long the camera stays or comes back.
Stored frames still in the window anchor only a camera at exactly their pose (an engine holding still, or the
first frames at the start image's pose): a walking camera is never pulled back to the frame it just left.

Bounded: at most `capacity` entries; when full, of the two entries nearest each other in position and heading
the newer goes (the store keeps the places it saw, spread out, each as first seen, not the most recent frames),
so memory and the per-frame cost of retrieval are the same at frame 50 and frame 50 000.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from runtime.camera import frustum_overlap

CAPACITY = 128  # entries: with STRIDE 4 a store fills in 512 frames (32 s), then keeps the places it saw
STRIDE = 4
ANCHOR_DISTANCE = 0.1  # world units (about one frame of walking) and
ANCHOR_DEG = 3.0  # degrees between view directions within which a stored frame was made "here"
_ANCHOR_COS = math.cos(math.radians(ANCHOR_DEG))
_SAME_DISTANCE, _SAME_COS = 1e-6, 1.0 - 1e-9  # "exactly this pose", up to float round-off


class Memory:
    """A bounded store of (pose, keys, values) of one episode's past frames."""

    def __init__(self, capacity: int = CAPACITY, stride: int = STRIDE, min_overlap: float = 0.2,
                 dtype: torch.dtype = torch.bfloat16):
        if capacity < 1 or stride < 1:
            raise ValueError("memory capacity and stride must be >= 1")
        self.capacity, self.stride, self.min_overlap, self.dtype = capacity, stride, min_overlap, dtype
        self.poses = np.zeros((0, 4, 4))
        self.frames = np.zeros(0, dtype=np.int64)  # frame index of each entry
        self.k: list[torch.Tensor] = []  # (L, N, H, hd) each
        self.v: list[torch.Tensor] = []
        self.latents: list[torch.Tensor | None] = []  # (C, h, w) float32 each: the finished frame itself

    def __len__(self) -> int:
        return len(self.k)

    @property
    def nbytes(self) -> int:
        return sum(t.nelement() * t.element_size() for t in (*self.k, *self.v))

    def full_nbytes(self, frame_elements: int) -> int:
        """Bytes of a full store whose frames hold `frame_elements` key and value numbers each."""
        return self.capacity * frame_elements * torch.empty(0, dtype=self.dtype).element_size()

    def add(self, frame: int, pose: np.ndarray, k: torch.Tensor, v: torch.Tensor,
            latent: torch.Tensor | None = None) -> None:
        """Offer finished frame `frame` (its pose, cache-pass keys/values and, for anchoring, its latent);
        kept every `stride` frames."""
        if frame % self.stride:
            return
        if len(self) == self.capacity:
            self._forget_most_redundant()
        self.poses = np.concatenate([self.poses, pose[None]])
        self.frames = np.append(self.frames, frame)
        self.k.append(k.detach().to(self.dtype).clone())
        self.v.append(v.detach().to(self.dtype).clone())
        self.latents.append(None if latent is None else latent.detach().float().clone())

    def recall(self, pose: np.ndarray, fov_deg: float, now: int, count: int, recent: int) -> list[int]:
        """Indices of up to `count` entries that overlap the view from `pose` the most (at least min_overlap),
        best first, leaving out frames made within the last `recent` frames before frame `now`."""
        if not len(self) or count < 1:
            return []
        score = frustum_overlap(pose, self.poses, fov_deg)
        score[self.frames >= now - recent] = -1.0
        best = np.argsort(-score, kind="stable")[:count]
        return [int(i) for i in best if score[i] >= self.min_overlap]

    def nearest(self, pose: np.ndarray, now: int, recent: int) -> int | None:
        """The entry made from (nearly) the camera `pose`: within ANCHOR_DISTANCE and ANCHOR_DEG, with a
        latent, and made before the last `recent` frames before frame `now` unless made from exactly `pose`;
        the closest (the oldest of equals), or None."""
        if not len(self):
            return None
        dist = np.linalg.norm(self.poses[:, :3, 3] - pose[:3, 3], axis=1)
        cos = np.clip(self.poses[:, :3, 2] @ pose[:3, 2], -1.0, 1.0)
        same = (dist <= _SAME_DISTANCE) & (cos >= _SAME_COS)
        ok = (dist <= ANCHOR_DISTANCE) & (cos >= _ANCHOR_COS) & ((self.frames < now - recent) | same)
        ok &= np.array([z is not None for z in self.latents])
        if not ok.any():
            return None
        return int(np.argmin(np.where(ok, dist + (1 - cos), np.inf)))

    def _forget_most_redundant(self) -> None:
        pos = self.poses[:, :3, 3]
        heading = self.poses[:, :3, 2]
        d = np.linalg.norm(pos[:, None] - pos[None], axis=-1) + (1 - heading @ heading.T)  # position + turn
        np.fill_diagonal(d, np.inf)
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        gone = int(i if self.frames[i] > self.frames[j] else j)  # keep the first view of a place: revisits match it
        self.poses = np.delete(self.poses, gone, 0)
        self.frames = np.delete(self.frames, gone)
        del self.k[gone], self.v[gone], self.latents[gone]

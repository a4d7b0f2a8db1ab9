"""Pose-indexed memory of one episode: past frames the model can look at again when the camera comes back.

The KV cache (runtime/neural/kv_cache.py) shows the model its first frames (sinks) and the last second (the
window); everything in between is gone, so a place seen 30 s ago is dreamed anew. A memory keeps, every
`stride` frames, the finished frame's keys and values (what the cache pass wrote) together with its camera
pose, in a bounded store. Before each frame the entries whose views overlap the current camera's most
(runtime.camera.frustum_overlap, from the engine's exact pose or the dead-reckoned one) are put into the cache's
memory slots, which the model attends to like extra sinks (WorldMem and Context-as-Memory retrieve by view
overlap the same way). Frames still in the window are not retrieved: the model sees them anyway.

Bounded: at most `capacity` entries; when full, of the two entries nearest each other in position and heading
the newer goes (the store keeps the places it saw, spread out, each as first seen, not the most recent frames),
so memory and the per-frame cost of retrieval are the same at frame 50 and frame 50 000.
"""

from __future__ import annotations

import numpy as np
import torch

from runtime.camera import frustum_overlap

CAPACITY = 128  # entries: with STRIDE 4 a store fills in 512 frames (32 s), then keeps the places it saw
STRIDE = 4


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

    def __len__(self) -> int:
        return len(self.k)

    @property
    def nbytes(self) -> int:
        return sum(t.nelement() * t.element_size() for t in (*self.k, *self.v))

    def full_nbytes(self, frame_elements: int) -> int:
        """Bytes of a full store whose frames hold `frame_elements` key and value numbers each."""
        return self.capacity * frame_elements * torch.empty(0, dtype=self.dtype).element_size()

    def add(self, frame: int, pose: np.ndarray, k: torch.Tensor, v: torch.Tensor) -> None:
        """Offer finished frame `frame` (its pose and cache-pass keys/values); kept every `stride` frames."""
        if frame % self.stride:
            return
        if len(self) == self.capacity:
            self._forget_most_redundant()
        self.poses = np.concatenate([self.poses, pose[None]])
        self.frames = np.append(self.frames, frame)
        self.k.append(k.detach().to(self.dtype).clone())
        self.v.append(v.detach().to(self.dtype).clone())

    def recall(self, pose: np.ndarray, fov_deg: float, now: int, count: int, recent: int) -> list[int]:
        """Indices of up to `count` entries that overlap the view from `pose` the most (at least min_overlap),
        best first, leaving out frames made within the last `recent` frames before frame `now`."""
        if not len(self) or count < 1:
            return []
        score = frustum_overlap(pose, self.poses, fov_deg)
        score[self.frames >= now - recent] = -1.0
        best = np.argsort(-score, kind="stable")[:count]
        return [int(i) for i in best if score[i] >= self.min_overlap]

    def _forget_most_redundant(self) -> None:
        pos = self.poses[:, :3, 3]
        heading = self.poses[:, :3, 2]
        d = np.linalg.norm(pos[:, None] - pos[None], axis=-1) + (1 - heading @ heading.T)  # position + turn
        np.fill_diagonal(d, np.inf)
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        gone = int(i if self.frames[i] > self.frames[j] else j)  # keep the first view of a place: revisits match it
        self.poses = np.delete(self.poses, gone, 0)
        self.frames = np.delete(self.frames, gone)
        del self.k[gone], self.v[gone]

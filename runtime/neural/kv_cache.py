"""KV cache of the causal world model: attention sinks plus a rolling window, for a batch of episodes.

For every layer it holds the keys and values of F = S + M + W frames per episode slot, allocated once as
(L, capacity, F, N, H, hd) and then only written in place:
- slots 0..S-1 keep an episode's first S frames forever (attention sinks, StreamingLLM / Self-Forcing);
- slots S..S+M-1 are memory: older frames put back by `remember` (runtime/neural/memory.py retrieves them by
  camera overlap), each visible only while set; M = 0 for models trained without memory;
- slots S+M..F-1 are a ring buffer of the W most recent later frames (the sliding window of CausVid,
  Matrix-Game 2.0, LingBot-World-Fast).
So memory and per-frame work are bounded however long an episode runs. Keys are stored before the temporal
RoPE; `positions` numbers an episode's slots at attention time (sinks 0..S-1, memory S..S+M-1, window frames
next in time order, the frame being made last), which is what runtime/neural/dit.py's `DiT.step` takes together
with the tensors.

A frame enters the cache only once it is finished: the world runs one extra pass at t = 0 over its clean
latent and `write`s the keys and values of that pass, as LingBot-World-Fast does.
"""

from __future__ import annotations

import torch


class KVCache:
    """Fixed-size per-layer key/value storage for `capacity` episode slots, each with its own length."""

    def __init__(
        self,
        layers: int,
        tokens: int,
        heads: int,
        head_dim: int,
        sinks: int,
        window: int,
        capacity: int = 1,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        memory: int = 0,
    ):
        if window < 1 or sinks < 0 or capacity < 1 or memory < 0:
            raise ValueError("the cache needs window >= 1, sinks >= 0, memory >= 0 and capacity >= 1")
        self.sinks, self.window, self.memory = sinks, window, memory
        shape = (layers, capacity, sinks + memory + window, tokens, heads, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)  # (L, capacity, F, N, H, hd)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.length = torch.zeros(capacity, dtype=torch.long)  # frames written so far, per slot (host side)
        self.remembered = torch.zeros(capacity, memory, dtype=torch.bool)  # memory slot holds a frame

    @property
    def capacity(self) -> int:
        return self.k.shape[1]

    @property
    def nbytes(self) -> int:
        """Bytes of key/value storage: fixed by the shape, whatever the episodes' lengths."""
        return self.k.nbytes + self.v.nbytes

    def grow(self, capacity: int) -> None:
        """Make room for `capacity` episode slots, keeping the existing ones (a reset-time, not per-frame, cost)."""
        if capacity <= self.capacity:
            return
        extra = capacity - self.capacity

        def pad(t: torch.Tensor) -> torch.Tensor:
            return torch.cat([t, t.new_zeros(t.shape[0], extra, *t.shape[2:])], dim=1)

        self.k, self.v = pad(self.k), pad(self.v)
        self.length = torch.cat([self.length, self.length.new_zeros(extra)])
        self.remembered = torch.cat([self.remembered, self.remembered.new_zeros(extra, self.memory)])

    def reset(self, slot: int) -> None:
        """Empty one episode slot; other slots are untouched. Zeroed, not just masked, so nothing stale
        (a NaN from a diverged episode) can leak through the attention mask."""
        self.k[:, slot].zero_()
        self.v[:, slot].zero_()
        self.length[slot] = 0
        self.remembered[slot] = False

    def view(self, slots: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values (L, b, F, N, H, hd) of the given slots: a view when they are consecutive (the usual
        case), a gathered copy otherwise."""
        if slots == list(range(slots[0], slots[0] + len(slots))):
            return self.k[:, slots[0] : slots[0] + len(slots)], self.v[:, slots[0] : slots[0] + len(slots)]
        index = torch.tensor(slots, device=self.k.device)
        return self.k[:, index], self.v[:, index]

    def positions(self, slots: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Attention-time numbering for the next frame of each episode in `slots`.

        Returns past_pos (b, F) long: position of each slot; past_valid (b, F) bool: slot holds a visible frame;
        pos (b,) long: position of the frame being made. Sinks sit at 0..S-1, memory at S..S+M-1, the window's
        frames follow in time order, the new frame comes last; so positions never exceed S + M + W however long
        the episode.
        """
        S, M, W = self.sinks, self.memory, self.window
        length = self.length[slots]  # (b,)
        sink = torch.arange(S)
        sink_valid = sink[None, :] < length[:, None]  # (b, S)
        written = (length - S).clamp(min=0)  # window frames written so far, (b,)
        visible = written.clamp(max=W)
        oldest = written - visible  # window index of the oldest visible frame; frame k lives in ring slot k % W
        age_rank = (torch.arange(W)[None, :] - oldest[:, None]) % W  # (b, W): time order of each ring slot
        memory = torch.arange(S, S + M)
        past_pos = torch.cat([sink.expand(len(slots), S), memory.expand(len(slots), M), S + M + age_rank], dim=1)
        past_valid = torch.cat([sink_valid, self.remembered[slots], age_rank < visible[:, None]], dim=1)
        pos = length.clamp(max=S) + (length >= S) * M + visible
        dev = self.k.device
        return past_pos.to(dev), past_valid.to(dev), pos.to(dev)

    def write(self, slots: list[int], k: torch.Tensor, v: torch.Tensor) -> None:
        """Store one finished frame per episode: k, v (L, b, N, H, hd), in its sink slot while the episode is
        shorter than S frames, else over the oldest window slot."""
        length = self.length[slots]  # (b,)
        dest = self._slot_of(length)
        index, dest = torch.tensor(slots, device=self.k.device), dest.to(self.k.device)
        self.k[:, index, dest] = k.to(self.k.dtype)
        self.v[:, index, dest] = v.to(self.v.dtype)
        self.length[slots] += 1

    def _slot_of(self, frame: torch.Tensor) -> torch.Tensor:
        """Where an episode's frame number `frame` (its index in the episode) is stored."""
        S, M, W = self.sinks, self.memory, self.window
        return torch.where(frame < S, frame, S + M + (frame - S).clamp(min=0) % W)

    def latest(self, slot: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values (L, N, H, hd) of the frame `write` stored last in `slot` (for the memory)."""
        if self.length[slot] == 0:
            raise ValueError(f"cache slot {slot} holds no frame")
        dest = int(self._slot_of(self.length[slot] - 1))
        return self.k[:, slot, dest], self.v[:, slot, dest]

    def remember(self, slot: int, frames: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Fill `slot`'s memory slots with the keys and values (L, N, H, hd) of up to M older frames, best
        first; the memory slots not filled are hidden."""
        if len(frames) > self.memory:
            raise ValueError(f"{len(frames)} frames for {self.memory} memory slots")
        for j, (k, v) in enumerate(frames):
            self.k[:, slot, self.sinks + j] = k.to(self.k.dtype)
            self.v[:, slot, self.sinks + j] = v.to(self.v.dtype)
        self.remembered[slot] = torch.arange(self.memory) < len(frames)

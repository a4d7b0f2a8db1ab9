"""NeuralWorld: a learned world model served through the same World interface as the maze.

Each episode's frames come from the causal transformer (runtime/neural/dit.py) one at a time: fresh noise from the
episode's own generator, a few flow-matching steps (runtime/neural/sampler.py) against the episode's KV cache
(runtime/neural/kv_cache.py), one more pass at t = 0 that writes the finished latent into the cache (as
LingBot-World-Fast does), then the autoencoder's decoder (runtime/neural/autoencoder.py). All episodes that step
together share one batched forward per denoising step.

Poses: a frame's pose is the engine's when the action carries one (the model is then also conditioned on it,
as Plücker rays relative to the episode's reference camera: the reset pose, else the first engine pose);
otherwise it is dead-reckoned from the controller input with the maze's kinematics minus its walls (`walk`),
and the model runs on the controller input alone.

Guidance: a guided model (its config's `guidance` > 0) has the capability "guidance" and reads each action's
colour and depth buffers (runtime/guidance.py): pooled into its tokens and, at full size, into its decoder.
An action without them (or a reset's start frame) runs the same weights without guidance.

Memory: a model with memory slots (config `memory` > 0) keeps a bounded pose-indexed store per episode
(runtime/neural/memory.py); before each frame the stored frames whose views overlap the camera's most are put
into the cache's memory slots, and every few frames the finished frame joins the store.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from runtime.camera import checked_pose, intrinsics
from runtime.guidance import FEATURES, features, position
from runtime.motion import standing_pose, walk
from runtime.neural.autoencoder import from_uint8
from runtime.neural.backend import Backend, TorchBackend
from runtime.neural.checkpoint import load_checkpoint
from runtime.neural.dit import plucker_rays
from runtime.neural.kv_cache import KVCache
from runtime.neural.memory import Memory
from runtime.neural.sampler import episode_noise, timesteps
from runtime.precision import compute_dtype
from runtime.world import Action, Frame, World

ONNX_BACKENDS = ("onnx", "onnx-int8")
LOOK_LIMIT = 90.0  # degrees per frame the model is told about; the camera itself may turn further


@dataclass
class _Episode:
    slot: int  # index in the KV cache
    generator: torch.Generator  # all of the episode's noise
    pose: np.ndarray  # (4, 4) camera-to-world of the latest frame
    reference: np.ndarray | None  # (4, 4) inverse of the reference camera-to-world, once known
    memory: Memory | None = None  # models with memory slots
    frames: int = 0  # frames made (the start frame included)
    look: torch.Tensor | None = None  # (1, look) the decoder's look code of the start frame (models with one)


class NeuralWorld(World):
    """Episodes of a neural world model loaded from a checkpoint directory (runtime/neural/checkpoint.py)."""

    capabilities = ("pose", "start_image")

    def __init__(
        self,
        path: str | Path,
        device: str | torch.device = "cpu",
        steps: int | None = None,
        dtype: str = "float32",
        max_episodes: int = 4,
        backend: str = "torch",
        export_dir: str | Path | None = None,
        memory: bool = True,
    ):
        """device: "cpu", "cuda", "cuda:1"; steps: denoising steps per frame (default: the config's);
        dtype: "float32", "auto" (runtime/precision.py), or "bfloat16" / "float16" (CUDA only) for the torch
        backend; max_episodes: cache slots allocated up front (more are added at reset when needed).
        backend: "torch", or "onnx" / "onnx-int8": ONNX Runtime in float32 or with int8 transformer weights,
        exported to `export_dir` (default <path>/onnx[-int8]) on first use (runtime/neural/onnx.py).
        memory: False serves a model with memory slots without retrieving (the slots stay empty): the same
        weights without memory, for comparisons."""
        if backend != "torch" and backend not in ONNX_BACKENDS:
            raise ValueError(f"backend {backend!r}: not torch, {' or '.join(ONNX_BACKENDS)}")
        if backend != "torch" and dtype not in ("auto", "float32"):
            raise ValueError(f"dtype {dtype} is for the torch backend; {backend} sets its own precision")
        self.device = torch.device(device)
        # ONNX Runtime is fed host tensors: episodes, cache and conditions live on the CPU, in float32
        self.dtype = compute_dtype(dtype, self.device) if backend == "torch" else torch.float32
        checkpoint = load_checkpoint(path, self.device if backend == "torch" else "cpu")
        self.config = cfg = checkpoint.config
        self.name, self.fov_deg = cfg.name, cfg.frame.fov_deg
        self.guided = cfg.dit.guidance > 0
        self.use_memory = memory
        if backend != "torch" and (self.guided or cfg.dit.memory):
            raise ValueError(f"{path} has guidance or memory: backend {backend} runs models without them; use torch")
        if self.guided:
            self.capabilities = (*self.capabilities, "guidance")
            self.guidance_buffers = ("colour", "depth")
            self.guidance_scales = (1, 2, 4)
        self.dit, self.autoencoder, self.start_frames = checkpoint.dit, checkpoint.autoencoder, checkpoint.start_frames
        if steps is not None and steps < 1:
            raise ValueError(f"steps must be >= 1, not {steps}")
        self.schedule = timesteps(steps or cfg.sampler.steps, cfg.sampler.shift)
        # memory anchoring (runtime/neural/memory.py): the schedule time nearest the config's, never the end
        self.anchor = min(self.schedule[:-1], key=lambda t: abs(t - cfg.sampler.anchor)) if cfg.sampler.anchor else 0.0
        self.backend: Backend
        if backend == "torch":
            self.backend = TorchBackend(self.dit, self.autoencoder, self.device, self.dtype)
        else:
            from runtime.neural.onnx import OnnxBackend

            quantize = backend.partition("-")[2] or None
            self.backend = OnnxBackend(path, len(self.schedule) - 1, quantize, device, export_dir)
            self.device = torch.device("cpu")
        self.cache = KVCache(
            cfg.dit.depth,
            self.dit.tokens,
            cfg.dit.heads,
            self.dit.head_dim,
            cfg.dit.sinks,
            cfg.dit.window,
            capacity=max_episodes,
            device=self.device,
            dtype=self.dtype,
            memory=cfg.dit.memory,
        )
        self._episodes: dict[Hashable, _Episode] = {}

    def frame_size(self, width: int, height: int) -> tuple[int, int]:
        """The model's native size, whatever is asked."""
        return self.config.frame.width, self.config.frame.height

    def reset(
        self,
        key: Hashable,
        seed: int,
        width: int,
        height: int,
        pose: np.ndarray | None = None,
        image: np.ndarray | None = None,
    ) -> None:
        """Start episode `key`: its first frame (the cache's first sink) is `image` if given, else the
        checkpoint's start frame number seed % N, else a frame the model generates from the seed's noise."""
        pose = None if pose is None else checked_pose(pose)
        pixels = None if image is None else self._image_to_model(image)  # both checked before anything changes
        old = self._episodes.pop(key, None)
        slot = old.slot if old is not None else self._free_slot()
        self.cache.reset(slot)
        start = standing_pose() if pose is None else pose
        generator = torch.Generator().manual_seed(seed & 0xFFFF_FFFF_FFFF_FFFF)
        reference = None if pose is None else np.linalg.inv(pose)
        memory = Memory() if self.config.dit.memory and self.use_memory else None
        episode = _Episode(slot, generator, start, reference, memory)
        self._episodes[key] = episode
        conditions = self.conditions([episode], [Action(pose=pose)])
        with self._inference():
            if pixels is None and self.start_frames is None:  # no start frame: the model makes one
                noise = episode_noise([generator], self.latent_shape, self.device)
                first = self.backend.generate(self.cache, [slot], noise, conditions, self.schedule)
            else:
                if pixels is None:
                    frame = self.start_frames[seed % len(self.start_frames)][None].to(self.device)
                    pixels = from_uint8(frame).contiguous(memory_format=torch.channels_last)
                first = self.backend.encode(pixels)
                self.backend.commit(self.cache, [slot], first, conditions)
            if self.config.autoencoder.look:  # a generated start frame has no pixels: the all-zero code
                episode.look = (self.autoencoder.look(pixels).float() if pixels is not None
                                else torch.zeros(1, self.config.autoencoder.look, device=self.device))
        self._remember([episode], first)

    def step(self, actions: dict[Hashable, Action]) -> dict[Hashable, Frame]:
        """One frame for every episode in `actions`, all in one batch."""
        return self._advance(actions, None)

    def teacher_forced_step(
        self, actions: dict[Hashable, Action], observed: dict[Hashable, np.ndarray]
    ) -> dict[Hashable, Frame]:
        """step, for evaluation: `observed` holds for every key the frame (H, W, 3) uint8 that truly came next;
        it enters the context instead of the generated one, which is still what is returned."""
        return self._advance(actions, observed)

    def _advance(
        self, actions: dict[Hashable, Action], observed: dict[Hashable, np.ndarray] | None
    ) -> dict[Hashable, Frame]:
        for key, action in actions.items():
            if key not in self._episodes:
                raise KeyError(f"episode {key!r} was never reset")
            if action.pose is not None:
                checked_pose(action.pose)
        keys = sorted(actions, key=lambda k: self._episodes[k].slot)  # consecutive slots: the cache needs no copy
        episodes = [self._episodes[k] for k in keys]
        for episode, key in zip(episodes, keys):
            action = actions[key]
            if action.pose is not None:
                episode.pose = checked_pose(action.pose)
                if episode.reference is None:
                    episode.reference = np.linalg.inv(episode.pose)
            else:
                episode.pose = walk(episode.pose, action)
        conditions = self.conditions(episodes, [actions[k] for k in keys])
        noise = episode_noise([e.generator for e in episodes], self.latent_shape, self.device)
        with self._inference():
            slots = [e.slot for e in episodes]
            self._recall(episodes, [actions[k] for k in keys])
            truth = None
            if observed is not None:
                truth = self.backend.encode(torch.cat([self._image_to_model(observed[k]) for k in keys]))
            begin = self._anchor(episodes, noise)
            latent = self.backend.generate(self.cache, slots, noise, conditions, self.schedule, truth, begin)
            look = torch.cat([e.look for e in episodes]) if self.config.autoencoder.look else None
            pixels = self.backend.decode(latent, conditions[3] if self.guided else None, look)  # (b, H, W, 3)
        self._remember(episodes, latent if truth is None else truth)  # what the cache holds
        by_key = {key: Frame(pixels[i], episode.pose.copy()) for i, (key, episode) in enumerate(zip(keys, episodes))}
        return {key: by_key[key] for key in actions}

    def _recall(self, episodes: list[_Episode], actions: list[Action]) -> None:
        """Put each episode's best-overlapping stored frames into its cache's memory slots (memory models)."""
        W, M = self.config.dit.window, self.config.dit.memory
        for e, a in zip(episodes, actions):
            if e.memory is not None:
                best = e.memory.recall(e.pose, a.fov_deg or self.fov_deg, e.frames, M, recent=W)
                self.cache.remember(e.slot, [(e.memory.k[i], e.memory.v[i]) for i in best])

    def _anchor(self, episodes: list[_Episode], noise: torch.Tensor) -> torch.Tensor | None:
        """Memory anchoring: each episode whose camera is where a stored frame was made starts from that
        frame's latent noised to the anchor time (noise (b, C, h, w) is changed in place for those rows).
        Returns the rows' start times (b,) for the sampler, or None when no row is anchored."""
        if not self.anchor:
            return None
        begin, a = torch.ones(len(episodes), device=noise.device), self.anchor
        for i, e in enumerate(episodes):
            j = None if e.memory is None else e.memory.nearest(e.pose, e.frames, recent=self.config.dit.window)
            if j is not None:
                noise[i] = (1 - a) * e.memory.latents[j].to(noise.device) + a * noise[i]
                begin[i] = a
        return begin if (begin < 1).any() else None

    def _remember(self, episodes: list[_Episode], latents: torch.Tensor) -> None:
        """Count the frame each episode just finished (latents (b, C, h, w)); memory models offer it to the
        store."""
        for e, latent in zip(episodes, latents):
            if e.memory is not None:
                e.memory.add(e.frames, e.pose, *self.cache.latest(e.slot), latent)
            e.frames += 1

    def memory_of(self, key: Hashable) -> Memory | None:
        """Episode `key`'s memory store (None for a model without memory, or served with memory=False)."""
        return self._episodes[key].memory

    def close(self, key: Hashable) -> None:
        self._episodes.pop(key, None)  # the slot is emptied when it is reused

    def episode_bytes(self, width: int, height: int) -> int:
        """One KV-cache slot: keys and values of every layer for sinks + memory + window frames, and a full
        memory store (the frame size is the model's, whatever is asked)."""
        slot = self.cache.nbytes // self.cache.capacity
        if not (self.config.dit.memory and self.use_memory):
            return slot
        frame_elements = slot // self.cache.k.shape[2] // self.cache.k.element_size()  # one frame's k and v
        return slot + Memory().full_nbytes(frame_elements)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.config.autoencoder.latent_channels, *self.config.latent_size)

    def _free_slot(self) -> int:
        used = {e.slot for e in self._episodes.values()}
        free = [s for s in range(self.cache.capacity) if s not in used]
        if not free:
            free = [self.cache.capacity]
            self.cache.grow(2 * self.cache.capacity)
        return free[0]

    @contextlib.contextmanager
    def _inference(self) -> Iterator[None]:
        enabled = self.dtype != torch.float32
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=self.dtype, enabled=enabled):
            yield

    def conditions(self, episodes: list[_Episode], actions: list[Action]) -> tuple:
        """Model inputs for one frame of each episode: action (b, A), rays (b, N, 6), has_pose (b,) and the
        full-size guidance features (b, G, H, W) that the transformer pools and the decoder reads (zeros for an
        action without guidance; None for an unguided model)."""
        buttons = self.config.dit.buttons
        # the model reads the stick as the maze does (within [-1, 1]) and turns of at most LOOK_LIMIT degrees a
        # frame: a client's NaN or 1e308 must not reach the network (the dead reckoning clips the same way)
        move = np.clip(np.nan_to_num([a.move for a in actions]), -1.0, 1.0)
        look = np.clip(np.nan_to_num([a.look for a in actions]), -LOOK_LIMIT, LOOK_LIMIT)
        bits = [[(a.buttons >> i) & 1 for i in range(buttons)] for a in actions]
        rows = np.concatenate([move, look, np.asarray(bits, dtype=np.float64).reshape(len(actions), buttons)], 1)
        has_pose = [a.pose is not None and e.reference is not None for e, a in zip(episodes, actions)]
        relative = [e.reference @ e.pose if p else np.eye(4) for e, p in zip(episodes, has_pose)]
        width, height = self.config.frame.width, self.config.frame.height
        lens = [intrinsics(width, height, a.fov_deg or self.fov_deg) for a in actions]
        rays = plucker_rays(torch.tensor(np.stack(relative)), torch.tensor(lens), (width, height), self.dit.grid)
        dev = self.device
        return (
            torch.tensor(rows, dtype=torch.float32, device=dev),
            rays.to(dev),
            torch.tensor(has_pose, device=dev),
            self._guidance(actions) if self.guided else None,
        )

    def _guidance(self, actions: list[Action]) -> torch.Tensor:
        """(b, G, H, W) full-size guidance features of each action (zeros without guidance), then for a decoder
        that reads them the position features from its depth and engine pose (zeros without either)."""
        width, height = self.config.frame.width, self.config.frame.height
        full = [features(a.guidance, width, height) for a in actions]
        if self.config.autoencoder.guidance > FEATURES:
            full = [np.concatenate([f, f[4:5] * position(None if a.guidance is None else a.guidance.depth, a.pose,
                                                         a.fov_deg or self.fov_deg, width, height)])
                    for f, a in zip(full, actions)]  # f[4]: present (colour and depth given)
        return torch.from_numpy(np.stack(full)).to(self.device)

    def _image_to_model(self, image: np.ndarray) -> torch.Tensor:
        """(H, W, 3 or 4) uint8 -> (1, 3, h, w) in [-1, 1] at the model's size: centre-cropped to the model's
        aspect ratio, then resized with antialiasing."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
            raise ValueError(f"start image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
        x = torch.from_numpy(np.ascontiguousarray(image[..., :3])).permute(2, 0, 1)[None].float()  # (1, 3, H, W)
        width, height = self.config.frame.width, self.config.frame.height
        H, W = x.shape[-2:]
        crop_w, crop_h = min(W, round(H * width / height)), min(H, round(W * height / width))
        top, left = (H - crop_h) // 2, (W - crop_w) // 2
        x = x[..., top : top + crop_h, left : left + crop_w]
        x = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
        return (x / 127.5 - 1).clamp(-1, 1).to(self.device).contiguous(memory_format=torch.channels_last)

"""LingBotWorld: the released LingBot-World-Fast checkpoint served through the World interface.

The model makes video a chunk at a time: 3 latent frames = 12 video frames (the first chunk 9: the start image
and 8 more). The daemon asks for one frame per step, so the step that finds an episode's buffer empty
generates the next chunk with the newest input it has (4 denoising steps + the clean pass that writes the KV
cache + the streaming VAE decode of just this chunk) and returns its first frame; the next 11 steps return the
buffered frames at once. Inputs that arrive meanwhile are kept (the newest wins) and steer the next chunk.

Latency this implies: an input reaches the picture at the start of the next chunk, i.e. after up to 12 frames
(0.75 s at 16 FPS) plus the chunk's compute time; the chunk step itself takes the whole chunk's compute, the
other 11 steps take microseconds. A client pacing at 16 FPS sees smooth video when a chunk takes < 0.75 s.

Per chunk the camera path is planned 12 frames ahead (as the offline scripts read poses.npy ahead): with an
engine pose, by repeating the engine camera's last per-frame motion from its newest pose; without, by dead
reckoning the controller input (runtime.neural.world.walk). The planned pose of each frame is the pose its
Frame carries. Latent frame j is conditioned on the pose of video frame 4j, relative to latent frame j-1
(runtime/lingbot/fast/control.py); "act" checkpoints also get W/A/S/D from the stick (runtime/lingbot/directory.py).

Prompt and start image: the start image is the reset's image (the protocol's reset carries one), else
PATH/image.jpg, else mid-grey. The default prompt: PATH/worldbridge.json {"prompt": ...} or
PATH/prompt.txt; an engine sets it per episode with protocol 1.2's `prompt` (hello, reset).
Episodes run one after another (no batching across sessions): one 14B model serves one or two sessions per GPU.

Sequence parallel (`open_parallel`, under torchrun; runtime/lingbot/fast/parallel.py): rank 0 is this world as
the daemon sees it, with the VAE and the text encoder; it broadcasts what every chunk's DiT work needs, and
the other ranks, which hold the DiT only, replay it (`replay`) in step. Frames come from rank 0.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import deque
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from runtime.camera import checked_pose, intrinsics
from runtime.lingbot.directory import wasd_from_move
from runtime.lingbot.fast.config import (
    CHUNK_FRAMES,
    DEFAULT_SHIFT,
    T5_FILE,
    TOKENIZER_DIR,
    VAE_FILE,
    VAE_STRIDE,
    cache_chunks,
    fast_schedule,
    find_dit_dir,
    read_dit_config,
)
from runtime.lingbot.fast.control import TranslationScale, control_tokens, relative_motion, scene_scale
from runtime.lingbot.fast.dit import COMPILE, ChunkCache, ChunkInputs, WanFastDiT
from runtime.lingbot.fast.loader import load_pth, load_safetensors, shapes_of
from runtime.lingbot.fast.parallel import SequenceParallel, check_heads, follow, ignore_stop_signals, join
from runtime.lingbot.fast.quant import check_quantize
from runtime.lingbot.fast.text import PromptEncoder, T5Encoder, Tokenizer, t5_sizes
from runtime.lingbot.fast.vae import WanVAE, vae_dim
from runtime.motion import standing_pose, walk
from runtime.precision import compute_dtype
from runtime.world import Action, Frame, World

log = logging.getLogger("worldbridge.lingbot")


@dataclass
class LingBotOptions:
    """How to serve the checkpoint; every field can be set in PATH/worldbridge.json."""

    width: int = 832  # output frame size (multiples of 16); the release is trained at 480x832
    height: int = 480
    sinks: int = 1  # chunks kept forever at the start of the KV cache (attention sinks)
    window: int = 3  # most recent chunks kept besides the sinks; cache memory ~ (sinks + window) chunks; -1: all
    # The official spelling of the same, in latent frames (WanModelFast's local_attn_size / sink_size); when
    # given they replace sinks/window (config.cache_chunks): 15 / 3 = sinks 1, window 3; local_attn_size -1 =
    # the official default, all history, a cache that grows by one chunk (~3.8 GB at 480p in bf16) per chunk.
    local_attn_size: int | None = None
    sink_size: int | None = None
    positions: str = "absolute"  # "absolute" (official numbering, unbounded) or "rolling" (bounded)
    shift: float = DEFAULT_SHIFT  # the sampler's timestep shift: 10, what the authors' generate_fast.py runs
    prompt: str = ""
    fov_deg: float = 60.0  # vertical field of view when the engine sends none
    text_offload: bool = True  # keep umT5 on the CPU; on a GPU, move it there only while encoding a prompt
    image: str = "image.jpg"  # default start image, relative to the checkpoint directory
    quantize: str = "none"  # the DiT blocks' linear weights: "none" (serving dtype), "int8" or "fp8" (quant.py)
    overlap: bool = False  # decode a chunk (worker thread / second CUDA stream) while its KV-cache pass runs
    compile: str = "off"  # torch.compile the blocks' fixed-shape parts: off, default, max-autotune-no-cudagraphs,
    # reduce-overhead (CUDA graphs, CUDA only)


def read_options(path: Path, **overrides) -> LingBotOptions:
    """Options from PATH/worldbridge.json and PATH/prompt.txt, then `overrides`."""
    values: dict = {}
    if (path / "worldbridge.json").is_file():
        values.update(json.loads((path / "worldbridge.json").read_text()))
    if "prompt" not in values and (path / "prompt.txt").is_file():
        values["prompt"] = (path / "prompt.txt").read_text().strip()
    values.update(overrides)
    unknown = set(values) - set(LingBotOptions.__dataclass_fields__)
    if unknown:
        raise ValueError(f"{path}/worldbridge.json: unknown options {sorted(unknown)}")
    if values.get("local_attn_size") is not None or values.get("sink_size") is not None:
        if "sinks" in values or "window" in values:
            raise ValueError("give the cache as sinks/window (chunks) or as local_attn_size/sink_size (latent "
                             "frames, the official spelling), not both")
        local = -1 if values.get("local_attn_size") is None else int(values["local_attn_size"])
        values["sinks"], window = cache_chunks(local, int(values.get("sink_size") or 0))
        values["window"] = -1 if window is None else window
    opts = LingBotOptions(**values)
    check_quantize(opts.quantize)
    if opts.compile not in COMPILE:
        raise ValueError(f"compile must be one of {', '.join(COMPILE)}, not {opts.compile!r}")
    if opts.sinks < 0 or not (opts.window >= 1 or opts.window == -1):
        raise ValueError(f"cache sinks {opts.sinks}, window {opts.window}: need sinks >= 0 and window >= 1 "
                         "(or -1: keep all history, growing)")
    if opts.width % 16 or opts.height % 16 or opts.width < 16 or opts.height < 16:
        raise ValueError(f"frame size {opts.width}x{opts.height}: both must be positive multiples of 16")
    return opts


@dataclass
class _Episode:
    generator: torch.Generator | None  # None on ranks > 0 of a sequence-parallel job: rank 0 draws the noise
    cache: ChunkCache
    image: torch.Tensor  # (1, 3, H, W) in [-1, 1]
    prompt: str
    pose: np.ndarray  # (4, 4) camera-to-world of the last planned frame
    latent_pose: np.ndarray | None = None  # camera-to-world of the last latent frame made
    scale: TranslationScale = field(default_factory=TranslationScale)
    decoder: dict = field(default_factory=dict)  # VAE streaming state
    encoder: dict = field(default_factory=dict)
    y_previous: torch.Tensor | None = None
    y_steady: torch.Tensor | None = None  # the encoder's output for zero frames once it stops changing
    engine: deque = field(default_factory=lambda: deque(maxlen=2))  # newest engine poses
    buffer: deque = field(default_factory=deque)  # Frames made but not yet returned
    chunks: int = 0
    id: int = 0  # how rank 0 names the episode to the other ranks (sequence parallel)


class LingBotWorld(World):
    """LingBot-World-Fast from a release directory (runtime/lingbot/fast/config.py)."""

    capabilities = ("pose", "start_image", "prompt")

    def __init__(self, path: str | Path, device: str = "cpu", dtype: str = "float32", steps: int | None = None,
                 parallel: SequenceParallel | None = None, **options):
        """parallel: this process's rank of a sequence-parallel job (open_parallel); ranks > 0 load the DiT
        only and are driven by `replay`."""
        if steps not in (None, len(fast_schedule(1.0))):
            raise ValueError("LingBot-World-Fast is distilled for exactly 4 denoising steps")
        self.path, self.device, self.dtype = Path(path), torch.device(device), compute_dtype(dtype, device)
        self.options = opts = read_options(self.path, **options)
        self.name, self.fov_deg = "lingbot-fast", opts.fov_deg
        dit_dir = find_dit_dir(self.path)
        cfg = read_dit_config(dit_dir)
        shapes = shapes_of(dit_dir)
        if "text_embedding.0.weight" in shapes and "patch_embedding_wancamctrl.weight" in shapes:
            control = shapes["patch_embedding_wancamctrl.weight"][1] // (64 * math.prod(cfg.patch_size))
            cfg = type(cfg)(**{**cfg.__dict__, "text_dim": shapes["text_embedding.0.weight"][1],
                               "control_dim": control})
        if cfg.control_dim not in (6, 7):
            raise ValueError(f"{dit_dir}: {cfg.control_dim} control channels; expected 6 (cam) or 7 (act)")
        self.config = cfg
        self.parallel = parallel if parallel is not None and parallel.size > 1 else None
        if self.parallel is not None:
            check_heads(cfg.num_heads, self.parallel.size)  # before loading tens of GB
        with torch.device("meta"):
            dit = WanFastDiT(cfg)
        self.dit = load_safetensors(dit, dit_dir, self.device, self.dtype, quantize=opts.quantize).eval()
        self.dit.set_parallel(self.parallel)
        if opts.compile != "off":
            self.dit.compile_blocks(opts.compile)
        self.schedule = fast_schedule(opts.shift)
        self._text_kv: dict[str, list] = {}
        self._episodes: dict[Hashable, _Episode] = {}
        self._next_id = 0
        self.last_chunk_ms = 0.0
        self._worker: ThreadPoolExecutor | None = None  # overlap on a CPU: the decode thread
        self._side: torch.cuda.Stream | None = None  # overlap on a GPU: the decode stream
        if self.parallel is not None and self.parallel.rank > 0:  # a follower: the DiT is all it runs
            self.vae, self.text = None, None
            return
        vae_path = self.path / VAE_FILE
        with torch.device("meta"):
            vae = WanVAE(dim=vae_dim(shapes_of(vae_path)) if vae_path.is_file() else 96)
        self.vae = load_pth(vae, vae_path, self.device, self.dtype, "VAE").eval()
        t5_path = self.path / T5_FILE
        with torch.device("meta"):
            t5 = T5Encoder(**t5_sizes(shapes_of(t5_path))) if t5_path.is_file() else T5Encoder(1, 1, 1, 1, 1, 1)
        offload = opts.text_offload and self.device.type == "cuda"
        text_device = "cpu" if opts.text_offload else self.device
        text_dtype = self.dtype if self.dtype != torch.float16 else torch.bfloat16
        t5 = load_pth(t5, t5_path, text_device, text_dtype, "text encoder").eval()
        if t5.token_embedding.embedding_dim != cfg.text_dim:
            raise ValueError(f"text encoder width {t5.token_embedding.embedding_dim} != the DiT's text_dim "
                             f"{cfg.text_dim}")
        self.text = PromptEncoder(t5, Tokenizer(self.path / TOKENIZER_DIR, cfg.text_len), self.device, offload)

    # ------------------------------------------------------------------------------------------- World

    def frame_size(self, width: int, height: int) -> tuple[int, int]:
        return self.options.width, self.options.height

    def reset(self, key: Hashable, seed: int, width: int, height: int, pose: np.ndarray | None = None,
              image: np.ndarray | None = None) -> None:
        pose = None if pose is None else checked_pose(pose)
        start = self._image(image) if image is not None else self._default_image()
        old = self._episodes.pop(key, None)
        prompt = old.prompt if old is not None else self.options.prompt
        self._next_id += 1
        self._episodes[key] = _Episode(
            generator=torch.Generator().manual_seed(seed & 0xFFFF_FFFF_FFFF_FFFF),
            cache=self._new_cache(), image=start, prompt=prompt,
            pose=pose if pose is not None else standing_pose(), id=self._next_id,
        )
        if self.parallel is not None:
            self.parallel.send("reset", self._next_id, None if old is None else old.id)
        self._context(prompt)  # encode the prompt now, not on the first frame

    def step(self, actions: dict[Hashable, Action]) -> dict[Hashable, Frame]:
        out = {}
        for key, action in actions.items():
            episode = self._episodes.get(key)
            if episode is None:
                raise KeyError(f"episode {key!r} was never reset")
            if action.pose is not None:
                episode.engine.append(np.asarray(action.pose, dtype=np.float64))
            if not episode.buffer:
                self._chunk(episode, action)
            out[key] = episode.buffer.popleft()
        return out

    def close(self, key: Hashable) -> None:
        ep = self._episodes.pop(key, None)
        if ep is not None and self.parallel is not None:
            self.parallel.send("close", ep.id)

    def shutdown(self) -> None:
        """Sequence parallel: send the other ranks "stop" and leave the job (the daemon calls it on exit)."""
        if self.parallel is not None:
            self.parallel.stop()
            self.parallel = None
        if self._worker is not None:
            self._worker.shutdown()
            self._worker = None

    def episode_bytes(self, width: int, height: int) -> int:
        """The episode's KV cache once full: keys and values of every layer for sinks + window chunks of 3 latent
        frames, (H/16)(W/16) tokens each, model width wide: 15.3 GB at 480x832 in bfloat16 with 1 + 3 chunks.
        An unbounded window (-1) grows by a chunk every 12 frames; then this counts the sinks and one chunk, a
        floor. Sequence parallel over P ranks: what one rank holds, 1/P of it (each keeps H/P heads)."""
        o, cfg = self.options, self.config
        tokens = CHUNK_FRAMES * (o.height // VAE_STRIDE[1] // cfg.patch_size[1]) * (
            o.width // VAE_STRIDE[2] // cfg.patch_size[2])
        chunks = o.sinks + (1 if o.window == -1 else o.window)
        ranks = 1 if self.parallel is None else self.parallel.size
        return 2 * cfg.num_layers * chunks * tokens * cfg.dim * self.dtype.itemsize // ranks

    def set_prompt(self, key: Hashable, prompt: str) -> None:
        """Change episode `key`'s prompt from its next chunk on (encoded once, then cached)."""
        self._episodes[key].prompt = prompt
        self._context(prompt)

    # --------------------------------------------------------------------------------------- one chunk

    @torch.inference_mode()
    def _chunk(self, ep: _Episode, action: Action) -> None:
        """Generate, commit and decode the episode's next chunk; fill its frame buffer."""
        started = time.perf_counter()
        first = ep.chunks == 0
        video_poses = self._plan(ep, action, 9 if first else 4 * CHUNK_FRAMES, start_here=first)  # (n, 4, 4)
        latent_poses = video_poses[0::4] if first else video_poses[3::4]  # video frames 0, 4, 8 / 4, 8, 12
        motion = ep.scale(relative_motion(ep.latent_pose, latent_poses), scene_scale(ep.latent_pose, latent_poses))
        ep.latent_pose, ep.pose = latent_poses[-1], video_poses[-1]
        W, H = self.options.width, self.options.height
        K = np.tile(intrinsics(W, H, action.fov_deg or self.fov_deg), (CHUNK_FRAMES, 1))
        wasd = np.repeat(wasd_from_move([action.move]), CHUNK_FRAMES, 0) if self.config.control_dim == 7 else None
        y, context = self._condition(ep), self._context(ep.prompt)
        if self.parallel is not None:  # the other ranks replay the DiT part (replay "chunk")
            self.parallel.send("chunk", ep.id, motion, K, wasd, ep.prompt, y.shape, y.dtype)
            self.parallel.share(y, y.shape, y.dtype)
        inputs = ChunkInputs(y, self._control(motion, K, wasd), context)
        x0 = self.sample(ep, inputs)
        if self.options.overlap:
            pixels = self._decode_during(ep, x0, lambda: self.commit(ep, inputs, x0))
        else:
            self.commit(ep, inputs, x0)
            pixels = self._pixels(self.vae.decode_chunk(x0, ep.decoder)).cpu().numpy()
        for frame, pose in zip(pixels, video_poses):
            ep.buffer.append(Frame(frame, pose.copy()))
        ep.chunks += 1
        self.last_chunk_ms = (time.perf_counter() - started) * 1e3

    def _control(self, motion: np.ndarray, K: np.ndarray, wasd: np.ndarray | None) -> torch.Tensor:
        """The chunk's embedded control tokens (1, L, dim) from its camera motion, intrinsics and W/A/S/D."""
        W, H = self.options.width, self.options.height
        tokens = control_tokens(motion, K, H, W, wasd, self.config.patch_size, VAE_STRIDE[1])
        return self.dit.embed_control(tokens.to(self.device))

    def _new_cache(self) -> ChunkCache:
        o = self.options
        return ChunkCache(o.sinks, None if o.window == -1 else o.window, o.positions)

    @torch.inference_mode()
    def replay(self, name: str, *args) -> None:
        """Ranks > 0 (parallel.follow): run what rank 0 sent, the DiT's share of reset, close, a new prompt
        and a chunk (the same sample and commit calls, in the same order, so the collectives pair up)."""
        sp = self.parallel
        if name == "reset":
            eid, old = args
            self._episodes.pop(old, None)
            self._episodes[eid] = _Episode(generator=None, cache=self._new_cache(), image=None, prompt="", pose=None,
                                           id=eid)
        elif name == "close":
            self._episodes.pop(args[0], None)
        elif name == "text":
            prompt, shape, dtype = args
            self._remember(prompt, self.dit.embed_text(sp.share(None, shape, dtype)))
        elif name == "chunk":
            eid, motion, K, wasd, prompt, shape, dtype = args
            ep = self._episodes[eid]
            inputs = ChunkInputs(sp.share(None, shape, dtype), self._control(motion, K, wasd), self._text_kv[prompt])
            self.commit(ep, inputs, self.sample(ep, inputs))
        else:
            raise ValueError(f"unknown command from rank 0: {name!r}")

    @staticmethod
    def _pixels(video: torch.Tensor) -> torch.Tensor:
        """(1, 3, T, H, W) in [-1, 1] -> (T, H, W, 3) uint8, on video's device."""
        return ((video[0].float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 3, 0)

    def _decode_during(self, ep: _Episode, x0: torch.Tensor, work) -> np.ndarray:
        """Decode x0 while `work` (the chunk's KV-cache pass) runs: on a GPU on a second CUDA stream, on a CPU in
        a worker thread. The decode reads only x0 and the VAE's own streaming state; the cache pass reads x0 and
        writes only the DiT's cache, so the result is the same as running one after the other."""
        if x0.is_cuda:
            if self._side is None:
                self._side = torch.cuda.Stream(device=x0.device)
            main = torch.cuda.current_stream(x0.device)
            self._side.wait_stream(main)  # x0 is ready
            with torch.cuda.stream(self._side):
                pixels = self._pixels(self.vae.decode_chunk(x0, ep.decoder))
            x0.record_stream(self._side)  # x0 lives on after main is done with it while the decode reads it
            work()
            main.wait_stream(self._side)
            return pixels.cpu().numpy()
        if self._worker is None:
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="lingbot-decode")

        def decode() -> np.ndarray:
            with torch.inference_mode():  # inference mode is per thread
                return self._pixels(self.vae.decode_chunk(x0, ep.decoder)).numpy()

        future = self._worker.submit(decode)
        try:
            work()
        finally:
            pixels = future.result()
        return pixels

    def denoise(self, ep: _Episode, inputs: ChunkInputs) -> torch.Tensor:
        """The Fast sampler on one chunk, then its cache pass (`sample`, then `commit`)."""
        x0 = self.sample(ep, inputs)
        self.commit(ep, inputs, x0)
        return x0

    def sample(self, ep: _Episode, inputs: ChunkInputs) -> torch.Tensor:
        """x0-prediction at each of the 4 timesteps, re-noised to the next one with fresh noise."""
        h, w = self.options.height // VAE_STRIDE[1], self.options.width // VAE_STRIDE[2]
        shape = (1, self.config.out_dim, CHUNK_FRAMES, h, w)
        x = self._noise(ep, shape)
        x0 = x
        for i, (t, sigma, _) in enumerate(self.schedule):
            flow = self.dit.forward_chunk(x, t, inputs, ep.cache)
            x0 = x - sigma * flow  # flow = noise - x0 and x = (1 - sigma) x0 + sigma noise
            if i + 1 < len(self.schedule):
                nxt = self.schedule[i + 1][2]
                x = (1 - nxt) * x0 + nxt * self._noise(ep, shape)
        return x0

    def _noise(self, ep: _Episode, shape: tuple[int, ...]) -> torch.Tensor:
        """Fresh noise from the episode's generator; sequence parallel: rank 0's, broadcast to every rank."""
        noise = None if ep.generator is None else torch.randn(shape, generator=ep.generator)
        if self.parallel is None:
            return noise.to(self.device)
        return self.parallel.share(noise, shape, torch.float32)

    def commit(self, ep: _Episode, inputs: ChunkInputs, x0: torch.Tensor) -> None:
        """The clean pass at t = 0 whose keys/values the cache keeps: the first DiT work of the next chunk."""
        self.dit.forward_chunk(x0, 0.0, inputs, ep.cache, record=True)
        ep.cache.commit()

    def _plan(self, ep: _Episode, action: Action, n: int, start_here: bool) -> np.ndarray:
        """Camera-to-world of the chunk's n frames, the first being the frame that answers this step.

        Engine pose: that frame is at the engine's newest pose, the others repeat the engine camera's last
        per-frame motion. Controller only: dead reckoning from the previous frame (from the start pose itself
        when `start_here`: the first chunk's frame 0 is the start image)."""

        poses = []
        if action.pose is not None and ep.engine:
            newest = ep.engine[-1]
            step = np.linalg.inv(ep.engine[0]) @ newest if len(ep.engine) == 2 else np.eye(4)
            pose = newest
            for _ in range(n):
                poses.append(pose)
                pose = pose @ step
        else:
            pose = ep.pose
            for i in range(n):
                pose = pose if (start_here and i == 0) else walk(pose, action)
                poses.append(pose)
        return np.stack(poses)

    def _condition(self, ep: _Episode) -> torch.Tensor:
        """(1, 20, 3, h, w): first-frame mask (4) + VAE latent of [start image, zeros...] for this chunk."""
        H, W = self.options.height, self.options.width
        h, w = H // VAE_STRIDE[1], W // VAE_STRIDE[2]
        if ep.y_steady is not None:
            return ep.y_steady
        if ep.chunks == 0:
            frames = torch.cat([ep.image[:, :, None], ep.image.new_zeros(1, 3, 8, H, W)], dim=2)
        else:
            frames = ep.image.new_zeros(1, 3, 4 * CHUNK_FRAMES, H, W)
        latent = self.vae.encode_chunk(frames.to(self.device), ep.encoder)  # (1, 16, 3, h, w)
        mask = latent.new_zeros(1, 4, CHUNK_FRAMES, h, w)
        if ep.chunks == 0:
            mask[:, :, 0] = 1
        y = torch.cat([mask, latent], dim=1)
        if ep.y_previous is not None and ep.chunks > 1 and torch.equal(y, ep.y_previous):
            ep.y_steady, ep.encoder = y, {}  # zeros in, the same latents out from now on
        ep.y_previous = y
        return y

    def _context(self, prompt: str) -> list:
        """Per-layer text keys/values of a prompt (umT5 once per prompt, the DiT's projections once too)."""
        if prompt not in self._text_kv:
            states = self.text(prompt).to(self.device)[None]  # (1, L, text_dim)
            if self.parallel is not None:
                self.parallel.send("text", prompt, states.shape, states.dtype)
                self.parallel.share(states, states.shape, states.dtype)
            with torch.inference_mode():
                self._remember(prompt, self.dit.embed_text(states))
        return self._text_kv[prompt]

    def _remember(self, prompt: str, kv: list) -> None:
        """Keep a prompt's text keys/values, the newest 4 prompts (the same on every rank)."""
        self._text_kv[prompt] = kv
        while len(self._text_kv) > 4:
            self._text_kv.pop(next(iter(self._text_kv)))

    def _image(self, image: np.ndarray) -> torch.Tensor:
        """(H, W, 3 or 4) uint8 -> (1, 3, height, width), [-1, 1] before the resize: centre-cropped to the frame's
        aspect, resized bicubically and not clamped, as the official pipeline does (TF.to_tensor, -0.5, /0.5, then
        F.interpolate bicubic): bicubic overshoots past [-1, 1] at sharp edges, and the VAE sees that."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
            raise ValueError(f"start image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
        x = torch.from_numpy(np.ascontiguousarray(image[..., :3])).permute(2, 0, 1)[None].float()
        W, H = self.options.width, self.options.height
        h0, w0 = x.shape[-2:]
        ch, cw = min(h0, round(w0 * H / W)), min(w0, round(h0 * W / H))
        top, left = (h0 - ch) // 2, (w0 - cw) // 2
        x = x[..., top:top + ch, left:left + cw] / 255.0
        return F.interpolate((x - 0.5) / 0.5, size=(H, W), mode="bicubic", align_corners=False)

    def _default_image(self) -> torch.Tensor:
        path = self.path / self.options.image
        if path.is_file():
            return self._image(np.asarray(Image.open(path).convert("RGB")))
        return torch.zeros(1, 3, self.options.height, self.options.width)


def open_lingbot(path: str | Path, device: str = "cpu", steps: int | None = None, dtype: str = "auto") -> World:
    """The `--world lingbot-fast:PATH` entry point (bridge/server/worlds.py); dtype "auto": runtime/precision.py."""
    return LingBotWorld(path, device=device, dtype=dtype, steps=steps)


def open_parallel(path: str | Path, device: str = "cpu", steps: int | None = None, dtype: str = "auto",
                  **options) -> LingBotWorld | None:
    """This torchrun rank's share of a sequence-parallel LingBotWorld (`serve --sequence-parallel`).

    Rank 0 gets the world to serve (its `shutdown` releases the other ranks). Ranks > 0 load the DiT, follow
    rank 0 until it stops and then return None. One rank (WORLD_SIZE 1): a plain world, no process group."""
    sp = join(device)
    if sp.size == 1:
        return LingBotWorld(path, device=sp.device, dtype=dtype, steps=steps, **options)
    world, error = None, None
    try:
        world = LingBotWorld(path, device=sp.device, dtype=dtype, steps=steps, parallel=sp, **options)
    except Exception as e:  # every rank reaches agree(), so none waits for a rank that failed to load
        error = e
    if sp.rank > 0:  # from here on rank 0 may be serving, and a stop signal is its to act on (parallel.follow)
        ignore_stop_signals()
    if not sp.agree(error is None):
        sp.leave()
        raise error or RuntimeError("another rank of the sequence-parallel job failed to load the world")
    if sp.rank == 0:
        log.info("sequence parallel over %d ranks (%s on %s): %d of %d heads per rank", sp.size,
                 "nccl" if sp.device.type == "cuda" else "gloo", sp.device, world.config.num_heads // sp.size,
                 world.config.num_heads)
        return world
    try:
        follow(world)
    finally:
        world.parallel = None
        sp.leave()
    return None

"""The dataset format shared by generated maze data and engine recordings (docs/dataset.md).

    DIR/meta.json              {"format": "worldbridge-dataset", "version": 1, "world", "width", "height",
                                "fps", "fov_deg", "source", "episodes": [{"file", "frames"}, ...]}
                               generated data may add "levels", "style", "guidance" and, per episode,
                               "level" and "style"; engine recordings may add "guidance" (docs/dataset.md)
    DIR/ep_000000.npz          one episode:
        frames   (T, H, W, 3) uint8   RGB, top row first
        move     (T, 2) float32       (strafe right, forward) that produced frame t from frame t-1
        look     (T, 2) float32       (yaw right, pitch up) degrees, same timing
        buttons  (T,) uint32          bitmask (bit 0 = run)
        poses    (T, 4, 4) float32    camera-to-world of frame t, OpenCV, canonical world
        fov_deg  (T,) float32         vertical field of view of frame t
      and, only in datasets with guidance (meta "guidance": generated with runtime/maze/render.py Guidance,
      or recorded with the engine's guidance, bridge/server/recorder.py):
        ids      (T, H, W) uint16     semantic id per pixel (generated: meta "guidance" "names"[id];
                                      recorded: the engine's own table)
        depth    (T, H, W) float32 or float16   distance along the pixel's ray; inf for sky
        colour   (T, H, W, 3) uint8   the flat colour render (the maze's level colours, or the engine's)
    Row 0 of the actions is the start frame's (all zeros). Optional arrays and meta keys are additions within
    version 1: older datasets (and readers) without them stay valid.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from runtime.guidance import Guidance

FORMAT, VERSION = "worldbridge-dataset", 1
FIELDS = {"frames": np.uint8, "move": np.float32, "look": np.float32, "buttons": np.uint32,
          "poses": np.float32, "fov_deg": np.float32}
# Arrays an episode may have (guidance buffers); stored in the dtype given, depth in float32 or float16.
OPTIONAL = {"ids": (np.uint16,), "depth": (np.float32, np.float16), "colour": (np.uint8,)}


class DatasetWriter:
    """Appends episodes; meta.json is rewritten after each one, so a partial dataset is still valid."""

    def __init__(self, out: Path, world: str, width: int, height: int, fps: float, fov_deg: float,
                 source: str = "generated", extra: dict | None = None):
        """extra: further meta.json keys (JSON values), written before "episodes"."""
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.meta = {"format": FORMAT, "version": VERSION, "world": world, "width": width, "height": height,
                     "fps": fps, "fov_deg": fov_deg, "source": source, **(extra or {}), "episodes": []}

    def add(self, episode: dict[str, np.ndarray], **info: object) -> Path:
        """Write one episode. The OPTIONAL arrays are written when present (in their own dtype when it is one
        of the allowed ones, else the first); `info` (JSON values, e.g. level=3) goes into its meta entry."""
        t = len(episode["frames"])
        for name in FIELDS:
            if name not in episode or len(episode[name]) != t:
                raise ValueError(f"episode field {name!r} missing or not {t} long")
        arrays = {k: np.asarray(episode[k], d) for k, d in FIELDS.items()}
        for k, dtypes in OPTIONAL.items():
            if k in episode:
                a = np.asarray(episode[k])
                want = (t, *arrays["frames"].shape[1:3], *((3,) if k == "colour" else ()))  # colour is RGB
                if a.shape != want:
                    raise ValueError(f"episode field {k!r} is {a.shape}, not {want}")
                arrays[k] = a if a.dtype in dtypes else a.astype(dtypes[0])
        name = f"ep_{len(self.meta['episodes']):06d}.npz"
        np.savez_compressed(self.out / name, **arrays)
        self.meta["episodes"].append({"file": name, "frames": t, **info})
        self.save_meta()
        return self.out / name

    def save_meta(self) -> None:
        """Write meta.json atomically (also before any episode: an empty recording is a valid dataset)."""
        tmp = self.out / "meta.json.tmp"
        tmp.write_text(json.dumps(self.meta, indent=1))
        tmp.replace(self.out / "meta.json")


class Dataset:
    """Read access to a dataset directory, with a clear error for anything that is not one."""

    def __init__(self, root: Path):
        self.root = Path(root)
        meta_path = self.root / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{self.root} is not a WorldBridge dataset: no meta.json")
        self.meta = json.loads(meta_path.read_text())
        if self.meta.get("format") != FORMAT or self.meta.get("version") != VERSION:
            raise ValueError(f"{meta_path}: not a {FORMAT} version {VERSION} file")

    def __len__(self) -> int:
        return len(self.meta["episodes"])

    @property
    def frames(self) -> int:
        return sum(e["frames"] for e in self.meta["episodes"])

    def episode(self, k: int) -> dict[str, np.ndarray]:
        """The FIELDS of episode k, plus the guidance arrays `ids` (uint16), `depth` (always float32 here,
        whatever it was stored in) and `colour` (uint8) when the episode has them."""
        with np.load(self.root / self.meta["episodes"][k]["file"]) as z:
            out = {name: z[name] for name in FIELDS}
            if "ids" in z.files:
                out["ids"] = z["ids"]
            if "depth" in z.files:
                out["depth"] = z["depth"].astype(np.float32, copy=False)
            if "colour" in z.files:
                out["colour"] = z["colour"]
            return out

    def guidance(self, k: int, depth_dtype: type = np.float32) -> Guidance:
        """Episode k's guidance buffers with a leading T axis: colour, depth in `depth_dtype` (float16 halves the
        memory a training run holds), ids."""
        with np.load(self.root / self.meta["episodes"][k]["file"]) as z:
            if "ids" not in z.files or "depth" not in z.files:
                raise ValueError(f"{self.root}: episode {k} has no guidance buffers (generate with --guidance, "
                                 "or record with guidance: docs/finetune.md)")
            if "colour" not in z.files:
                raise ValueError(f"{self.root}: episode {k} has no guidance colour (generated before colour was "
                                 "stored: generate it again)")
            return Guidance(z["colour"], z["depth"].astype(depth_dtype, copy=False), z["ids"])

    @property
    def has_guidance(self) -> bool:
        """Whether the episodes carry guidance buffers (ids and depth)."""
        return "guidance" in self.meta

    def level(self, k: int) -> tuple[int, str] | None:
        """(maze level seed, style) episode k was generated in: from its meta entry, else (older datasets, one
        level) from world "maze:SEED" with style "default"; None for recordings and other worlds."""
        e = self.meta["episodes"][k]
        if "level" in e:
            return int(e["level"]), str(e.get("style", "default"))
        world = str(self.meta.get("world", ""))
        if self.meta.get("source") == "generated" and world.startswith("maze:"):
            seed = world.partition(":")[2]
            if seed.lstrip("-").isdigit():
                return int(seed), "default"
        return None

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return (self.episode(k) for k in range(len(self)))

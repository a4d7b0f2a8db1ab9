"""Turn a --world argument into a World: "maze", "maze:LEVEL_SEED", "default", "guided", "memory", "guided-memory"
(shipped models), a checkpoint directory, or "lingbot-fast:PATH" (the released LingBot-World-Fast checkpoint;
docs/lingbot.md)."""

from __future__ import annotations

from pathlib import Path

from runtime.world import World

BACKENDS = ("auto", "torch", "onnx", "onnx-int8")  # what runtime.neural.open_model runs a model on
MODELS = Path(__file__).resolve().parents[2] / "models"
DEFAULT_MODEL = MODELS / "default"
# models/<name>: the guided ones render from engine guidance, the memory ones retrieve frames they saw
SHIPPED = {"default": DEFAULT_MODEL, **{name: MODELS / name for name in ("guided", "memory", "guided-memory")}}


def model_path(spec: str) -> Path:
    """The directory a model argument names: a SHIPPED name (default, guided, ...), anything else a path."""
    return SHIPPED.get(spec, Path(spec))


def maze_level(spec: str) -> int | None:
    """The level seed of a "maze" / "maze:SEED" world argument; None for any other world."""
    if spec != "maze" and not spec.startswith("maze:"):
        return None
    level = spec.partition(":")[2]
    if level and not level.lstrip("-").isdigit():
        raise ValueError(f"--world {spec}: the maze level seed must be an integer")
    return int(level or 0)


def default_world(guided: bool = False) -> str:
    """What --world defaults to: the shipped model when it is there, else the maze it was trained on. guided:
    the shipped guided model first (the demo)."""
    if guided and (SHIPPED["guided"] / "config.yaml").is_file():
        return "guided"
    return "default" if (DEFAULT_MODEL / "config.yaml").is_file() else "maze"


def load_world(
    spec: str, device: str = "cpu", steps: int | None = None, dtype: str = "auto", backend: str = "torch",
    memory: bool = True,
) -> World:
    """device, steps, dtype, backend, memory: for neural worlds (runtime.neural.open_model)."""
    level = maze_level(spec)
    if level is not None:
        from runtime.maze.world import MazeWorld

        return MazeWorld(level_seed=level)
    if spec.startswith("lingbot-fast:"):
        if backend not in ("torch", "auto"):
            raise ValueError(f"--world {spec}: runs on the torch backend only")
        from runtime.lingbot.fast.world import open_lingbot

        return open_lingbot(spec.partition(":")[2], device, steps, dtype)
    path = model_path(spec)
    if spec in SHIPPED and not path.is_dir():
        raise ValueError(f"--world {spec}: the shipped model is missing from {path}")
    if not path.is_dir():
        raise ValueError(f"--world {spec}: not 'maze', 'maze:SEED', {', '.join(map(repr, SHIPPED))} or a model "
                         "directory")
    if not (path / "config.yaml").is_file():
        raise ValueError(f"--world {spec}: {path} has no config.yaml, so it is not a WorldBridge model directory")
    from runtime.neural import open_model

    return open_model(path, device, steps, dtype, backend, memory)


def load_parallel_world(
    spec: str, device: str = "cpu", steps: int | None = None, dtype: str = "auto", backend: str = "torch"
) -> World | None:
    """`serve --sequence-parallel` under torchrun: this rank's share of a world split over the job's ranks
    (runtime/lingbot/fast/parallel.py). Rank 0 gets the world to serve; every other rank runs rank 0's DiT work
    until rank 0 shuts its world down, then gets None."""
    if not spec.startswith("lingbot-fast:"):
        raise ValueError(f"--sequence-parallel splits lingbot-fast:PATH worlds only, not --world {spec}")
    if backend not in ("torch", "auto"):
        raise ValueError(f"--world {spec}: runs on the torch backend only")
    from runtime.lingbot.fast.world import open_parallel

    return open_parallel(spec.partition(":")[2], device, steps, dtype)

"""Turn a --world argument into a World: "maze", "maze:LEVEL_SEED", "default", a checkpoint directory, or
"lingbot-fast:PATH" (the released LingBot-World-Fast checkpoint; docs/lingbot.md)."""

from __future__ import annotations

from pathlib import Path

from runtime.world import World

BACKENDS = ("torch", "onnx", "onnx-int8")  # what runtime.neural.world.open_model runs a model on
DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "default"


def default_world() -> str:
    """What --world defaults to: the shipped model when it is there, else the maze it was trained on."""
    return "default" if (DEFAULT_MODEL / "config.yaml").is_file() else "maze"


def load_world(
    spec: str, device: str = "cpu", steps: int | None = None, dtype: str = "auto", backend: str = "torch"
) -> World:
    """device, steps, dtype, backend: for neural worlds (runtime.neural.world.open_model)."""
    if spec == "maze" or spec.startswith("maze:"):
        from runtime.maze.world import MazeWorld

        level = spec.partition(":")[2]
        if level and not level.lstrip("-").isdigit():
            raise ValueError(f"--world {spec}: the maze level seed must be an integer")
        return MazeWorld(level_seed=int(level or 0))
    if spec.startswith("lingbot-fast:"):
        if backend != "torch":
            raise ValueError(f"--world {spec}: runs on the torch backend only")
        from runtime.lingbot.fast.world import open_lingbot

        return open_lingbot(spec.partition(":")[2], device, steps, dtype)
    path = DEFAULT_MODEL if spec == "default" else Path(spec)
    if not path.is_dir():
        raise ValueError(f"--world {spec}: not 'maze', 'maze:SEED', 'default' or a model directory")
    if not (path / "config.yaml").is_file():
        raise ValueError(f"--world {spec}: {path} has no config.yaml, so it is not a WorldBridge model directory")
    from runtime.neural.world import open_model

    return open_model(path, device, steps, dtype, backend)

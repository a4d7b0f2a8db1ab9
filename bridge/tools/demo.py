"""`worldbridge demo`: the whole path in one command — start a daemon, connect a client over the real
protocol, play the walk of examples/demo_walk.yaml through the world (lockstep, as `worldbridge rollout` plays
a script), save the frames as a GIF and print what it measured. The demo knows the world only through the
protocol: any world it can serve, it can walk."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from bridge.tools import media
from bridge.tools.action_script import Script, load
from bridge.tools.connect import open_world
from bridge.tools.rollout import play_script
from runtime.world import FPS

WALK = Path(__file__).resolve().parents[2] / "examples" / "demo_walk.yaml"


def walk(frames: int, script: Path = WALK) -> Script:
    """The script `frames` rows long: its walk repeated from the top (without the start row again) as often as
    needed, or cut short."""
    s = load(script)
    moves = s.actions[1:]
    return replace(s, actions=s.actions[:1] + [moves[i % len(moves)] for i in range(max(0, frames - 1))])


def run(world: str, frames: int, size: int, out: Path, progress: Callable[[int], None] | None = None) -> dict:
    script = walk(frames)
    media.check_writable(out)
    with open_world(world, width=size, height=size, name="demo", seed=script.seed) as conn:
        played = play_script(conn, script, progress=progress)
        welcome = conn.client.welcome
    scale = max(1, 256 // welcome["width"])
    media.write(played.frames, out, FPS, scale)
    return {"world": welcome["world"], "frames": len(played.frames), "width": welcome["width"],
            "height": welcome["height"], "latency_ms_p50": round(float(np.nanmedian(played.latency_ms)), 2),
            "gif": str(out)}

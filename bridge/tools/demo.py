"""`worldbridge demo`: the whole path in one command — start a daemon, connect a client over the real
protocol, play the walk of examples/demo_walk.yaml through the world (lockstep, as `worldbridge rollout` plays
a script), save the frames as a GIF and print what it measured. The demo knows the world only through the
protocol: any world it can serve, it can walk.

A world with the "guidance" capability (the shipped guided model) is shown as an engine would drive it: here the
demo process plays the engine, a maze level the model never saw (style varied). It owns the state: it walks
the script through its level (walls stop the player), sends each frame's camera pose and guidance buffers
(flat colour and depth) with the input, and starts the episode from its first rendered frame. The GIF shows,
frame by frame, the engine's guidance | the model's frame | the engine's full render (the truth)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from bridge.tools import media
from bridge.tools.action_script import Script, load
from bridge.tools.connect import Connection, open_world
from bridge.tools.rollout import play_script, wire_pose
from runtime.eval.metrics import psnr
from runtime.maze.world import MazeWorld
from runtime.world import FPS, Action

WALK = Path(__file__).resolve().parents[2] / "examples" / "demo_walk.yaml"


def walk(frames: int, script: Path = WALK) -> Script:
    """The script `frames` rows long: its walk repeated from the top (without the start row again) as often as
    needed, or cut short."""
    s = load(script)
    moves = s.actions[1:]
    return replace(s, actions=s.actions[:1] + [moves[i % len(moves)] for i in range(max(0, frames - 1))])


UNSEEN_LEVEL = 1003  # the guided model trained on levels 1-256; its evaluation uses 1000-1007


def run(world: str, frames: int, size: int, out: Path, progress: Callable[[int], None] | None = None,
        level: int = UNSEEN_LEVEL) -> dict:
    """Play the walk through `world` and write the GIF; `level`: the engine's maze level for a guided world."""
    script = walk(frames)
    media.check_writable(out)
    with open_world(world, width=size, height=size, name="demo", seed=script.seed) as conn:
        welcome = conn.client.welcome
        guided = "guidance" in welcome["capabilities"]
        if guided:
            shown, latency, extra = engine_walk(conn, script, level, progress)
        else:
            played = play_script(conn, script, progress=progress)
            shown, latency, extra = played.frames, played.latency_ms, {}
    scale = max(1, 256 // welcome["width"])
    media.write(shown, out, FPS, scale)
    return {"world": welcome["world"], "frames": len(shown), "width": welcome["width"],
            "height": welcome["height"], "latency_ms_p50": round(float(np.nanmedian(latency)), 2), **extra,
            "gif": str(out)}


def engine_walk(conn: Connection, script: Script, level: int,
                progress: Callable[[int], None] | None = None) -> tuple[list[np.ndarray], list[float], dict]:
    """The guided demo (module docstring): frames guidance | model | truth, input-to-frame latencies, scores."""
    c = conn.client
    w, h = c.welcome["width"], c.welcome["height"]
    engine = MazeWorld(level_seed=level, style="varied")
    engine.reset("engine", script.seed, w, h)
    pose = engine.pose_of("engine")
    c.reset(script.seed, wire_pose(pose), engine.renderer.render(pose, w, h, engine.fov_deg))
    shown, latency, scores = [], [], []
    gap = np.full((h, 4, 3), 255, np.uint8)
    for a in script.actions:
        truth = engine.step({"engine": Action(a.move, a.look, a.buttons)})["engine"]
        g = engine.renderer.guidance(truth.pose, w, h, engine.fov_deg)
        seq = c.send_input(a.move, a.look, a.buttons, wire_pose(truth.pose), guidance=g)
        c.grant(1)
        f = c.recv_frame()
        if f.header["input_seq"] != seq:
            raise RuntimeError(f"frame answers input {f.header['input_seq']}, expected {seq}")
        made = f.image[..., :3]
        shown.append(np.concatenate([g.colour, gap, made, gap, truth.pixels], 1))
        latency.append(f.latency_ms)
        scores.append(psnr(made, truth.pixels))
        if progress:
            progress(1)
    return shown, latency, {"engine_level": level, "psnr_vs_truth": round(float(np.mean(scores)), 2),
                            "panels": "guidance | model | truth"}

"""`worldbridge rollout`: play an action script (YAML steps or a LingBot-World action directory) through a
world over the real protocol, save the frames as a GIF, an MP4 or PNGs, and optionally compare with another
world (the maze's ground truth) frame by frame.

Frames are made in lockstep: one input, one credit, the frame that answers that input. So every frame uses
exactly one row of the script, whatever the world's speed, and the maze (deterministic) gives the same frames
for the same script every time. With --compare the reference world runs the script first; a world that can
start from an image (a neural world) then starts from the reference's first frame, as `worldbridge eval` does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bridge.protocol.poses import from_canonical, to_canonical
from bridge.tools import media as video
from bridge.tools.action_script import FPS, Script, load
from bridge.tools.connect import Connection, open_world
from runtime.eval.gif import side_by_side
from runtime.eval.metrics import psnr


@dataclass
class Run:
    world: str
    frames: list[np.ndarray]  # (H, W, 3) uint8 each
    poses: list[np.ndarray]  # (4, 4) canonical camera-to-world of each frame
    latency_ms: list[float]


def wire_pose(c2w: np.ndarray) -> dict[str, list[float]]:
    """Canonical camera-to-world -> the input message's pose for a client that speaks `engine: opencv`."""
    p, q = from_canonical("opencv", np.asarray(c2w, dtype=np.float64))
    return {"p": p.tolist(), "q": q.tolist()}


def play_script(conn: Connection, script: Script, start: tuple[np.ndarray | None, np.ndarray] | None = None,
                progress: Callable[[int], None] | None = None) -> Run:
    """Send the script's rows one per frame; `start` = (pose or None, image) begins the episode from an image
    in worlds that can (others ignore it)."""
    c = conn.client
    if start is not None and "start_image" in c.welcome["capabilities"]:
        pose, image = start
        w, h = c.welcome["width"], c.welcome["height"]
        if image.shape[:2] != (h, w):
            image = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))
        c.reset(script.seed, None if pose is None else wire_pose(pose), image)
    run = Run(c.welcome["world"], [], [], [])
    for a in script.actions:
        seq = c.send_input(a.move, a.look, a.buttons, None if a.pose is None else wire_pose(a.pose), a.fov_deg)
        c.grant(1)
        f = c.recv_frame()
        if f.header["input_seq"] != seq:  # lockstep broken: frames would no longer match the script's rows
            raise RuntimeError(f"frame answers input {f.header['input_seq']}, expected {seq}")
        run.frames.append(f.image[..., :3])
        run.poses.append(to_canonical("opencv", f.header["pose"]["p"], f.header["pose"]["q"]))
        run.latency_ms.append(f.latency_ms)
        if progress:
            progress(1)
    return run


def report_path(out: Path) -> Path:
    """Where the JSON report goes: next to a file (out.gif -> out.json), inside a PNG directory."""
    return out / "rollout.json" if video.kind_of(out) == "png" else out.with_suffix(".json")


def rollout(world: str | None, actions: Path, out: Path, *, connect: str | None = None, compare: str | None = None,
            size: tuple[int, int] | None = None, scale: int = 1, token: str = "", serve_args: Sequence[str] = (),
            progress: Callable[[int], None] | None = None, on_total: Callable[[int], None] | None = None) -> dict:
    """The whole command; returns the report (also written to report_path(out))."""
    script = load(actions)
    video.check_writable(out)
    width, height = size or script.size or (128, 128)
    if on_total:
        on_total(len(script.actions) * (2 if compare else 1))
    with ExitStack() as stack:
        conn = stack.enter_context(open_world(world, connect, width=width, height=height, name="rollout",
                                              token=token, seed=script.seed, serve_args=serve_args))
        width, height = conn.client.welcome["width"], conn.client.welcome["height"]  # a model's native size
        truth, start = None, None
        if script.start_image is not None:
            start = (script.actions[0].pose, script.start_image)
        if compare:
            ref = stack.enter_context(open_world(compare, width=width, height=height, name="rollout-reference",
                                                 seed=script.seed))
            truth = play_script(ref, script, progress=progress)
            start = (truth.poses[0] if script.has_poses else None, truth.frames[0])
        run = play_script(conn, script, start, progress)

    report: dict = {"world": run.world, "actions": str(actions), "script": script.kind, "frames": len(run.frames),
                    "width": width, "height": height, "fps": FPS,
                    "latency_ms_p50": round(float(np.nanmedian(run.latency_ms)), 2), "out": str(out)}
    frames = run.frames
    if truth is not None:
        if truth.frames[0].shape != run.frames[0].shape:
            raise RuntimeError(f"{compare} answered {truth.frames[0].shape} for {run.frames[0].shape}")
        per_frame = [round(psnr(a, b), 2) for a, b in zip(run.frames, truth.frames)]
        report["compare"] = {"world": truth.world, "psnr_mean": round(float(np.mean(per_frame)), 2),
                             "psnr_min": round(float(np.min(per_frame)), 2), "psnr": per_frame}
        frames = side_by_side(run.frames, truth.frames)
    video.write(frames, out, FPS, scale)
    report["report"] = str(report_path(out))
    report_path(out).write_text(json.dumps(report, indent=1))
    return report

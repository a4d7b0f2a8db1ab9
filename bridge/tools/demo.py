"""`worldbridge demo`: the whole path in one command — start a daemon, connect a client over the real
protocol, let an exploring player (runtime/maze/explore.py, planning on the maze's map) walk through the world,
save the frames as a GIF and print what it measured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from bridge.client.client import Client
from bridge.client.launch import DaemonProcess
from bridge.protocol.poses import to_canonical
from runtime.maze.explore import Player
from runtime.maze.level import MazeLevel


def run(world: str, frames: int, size: int, out: Path, progress=None) -> dict:
    images, latencies = [], []
    player = Player(MazeLevel(0).solid, np.random.default_rng(7))  # the level the default model learned
    with DaemonProcess(world) as d, Client(d.address, width=size, height=size, name="demo", seed=7) as c:
        c.grant(1)
        for _ in range(frames):
            f = c.recv_frame()
            pose = f.header["pose"]
            a = player.act(to_canonical("opencv", pose["p"], pose["q"]))
            c.send_input(a.move, a.look, a.buttons)
            c.grant(1)
            images.append(f.image)
            latencies.append(f.latency_ms)
            if progress:
                progress(1)
        welcome = c.welcome
    out.parent.mkdir(parents=True, exist_ok=True)
    scale = max(1, 256 // welcome["width"])
    gif = [Image.fromarray(im).resize((im.shape[1] * scale, im.shape[0] * scale), Image.NEAREST) for im in images]
    gif[0].save(out, save_all=True, append_images=gif[1:], duration=62, loop=0)  # 16 FPS, as generated
    return {"world": welcome["world"], "frames": frames, "width": welcome["width"], "height": welcome["height"],
            "latency_ms_p50": round(float(np.nanmedian(latencies)), 2), "gif": str(out)}

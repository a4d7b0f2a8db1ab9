"""`worldbridge demo`: the whole path in one command — start a daemon, connect a client over the real
protocol, walk a scripted route, save the frames as a GIF and print what it measured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from bridge.bench import scripted_input
from bridge.client import Client
from bridge.launch import DaemonProcess


def run(world: str, frames: int, size: int, out: Path, progress=None) -> dict:
    images, latencies = [], []
    with DaemonProcess(world) as d, Client(d.address, width=size, height=size, name="demo") as c:
        c.grant(2)
        for i in range(frames):
            c.send_input(*scripted_input(i))
            f = c.recv_frame()
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

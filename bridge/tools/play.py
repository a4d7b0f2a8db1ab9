"""`worldbridge play`: drive any world live in a pygame window.

W A S D move, the mouse looks (arrow keys too), Shift runs; F12 or P saves a screenshot, R starts a new
episode, Tab frees or captures the mouse, Esc or closing the window quits. A HUD shows the world, the frames
per second and the input-to-frame latency. The world runs in a daemon this command starts (--world, stopped
on exit) or in one already running (--connect); frames come over the real protocol, so what you see is what
an engine would get.

The key and mouse mapping is a pure function (`controls`), so it is tested without a window.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import deque
from collections.abc import Callable, Set
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from bridge.client.client import Client, FrameMsg
from bridge.tools.errors import UserError
from runtime.world import BUTTON_RUN, FPS

MOUSE_DEG_PER_PIXEL = 0.15
ARROW_DEG_PER_S = 120.0  # arrow keys look around at this rate
CREDITS = 2  # unpaced: frames in flight, one being made while the other is shown
SCREENSHOT_KEYS = ("f12", "p")
MESSAGE_S = 3.0  # how long a HUD message (screenshot saved) stays


@dataclass(frozen=True)
class Controls:
    move: tuple[float, float]  # (strafe right, forward)
    look: tuple[float, float]  # (yaw right, pitch up) degrees
    buttons: int


def controls(held: Set[str], mouse_rel: tuple[float, float], dt: float,
             sensitivity: float = MOUSE_DEG_PER_PIXEL) -> Controls:
    """Held keys (pygame key names: "w", "left shift", "up", ...) and the mouse motion since the last input
    (pixels; +y is down on screen) over `dt` seconds -> the input message's fields."""
    def axis(plus: str, minus: str) -> float:
        return float((plus in held) - (minus in held))

    yaw = mouse_rel[0] * sensitivity + axis("right", "left") * ARROW_DEG_PER_S * dt
    pitch = -mouse_rel[1] * sensitivity + axis("up", "down") * ARROW_DEG_PER_S * dt
    run = "left shift" in held or "right shift" in held
    return Controls((axis("d", "a"), axis("w", "s")), (yaw, pitch), BUTTON_RUN if run else 0)


@dataclass
class Hud:
    """What the HUD shows, from the frames received (recent ones only, so it follows changes)."""

    world: str
    width: int
    height: int
    times: deque = field(default_factory=lambda: deque(maxlen=61))
    latencies: deque = field(default_factory=lambda: deque(maxlen=31))
    message: str = ""
    message_until: float = 0.0

    def add(self, now: float, latency_ms: float) -> None:
        self.times.append(now)
        if latency_ms == latency_ms:  # nan before the first input
            self.latencies.append(latency_ms)

    @property
    def fps(self) -> float:
        span = self.times[-1] - self.times[0] if len(self.times) > 1 else 0.0
        return (len(self.times) - 1) / span if span > 0 else 0.0

    @property
    def latency_ms(self) -> float:
        return statistics.median(self.latencies) if self.latencies else float("nan")

    def say(self, message: str, now: float) -> None:
        self.message, self.message_until = message, now + MESSAGE_S

    def lines(self, now: float) -> list[str]:
        out = [f"{self.world}  {self.width}x{self.height}", f"{self.fps:5.1f} fps",
               f"input-to-frame {self.latency_ms:5.1f} ms"]
        if self.message and now < self.message_until:
            out.append(self.message)
        return out


def screenshot(image: np.ndarray, directory: Path, world: str) -> Path:
    """Save the world's frame (native size, no HUD) as a PNG with a name that does not collide."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{Path(world).name or 'world'}_{time.strftime('%Y%m%d_%H%M%S')}"
    path, n = directory / f"{stem}.png", 1
    while path.exists():
        path, n = directory / f"{stem}_{n}.png", n + 1
    Image.fromarray(image[..., :3]).save(path)
    return path


Hook = Callable[[int, "FrameMsg | None"], None]


def session(client: Client, *, fps: float = FPS, scale: int | None = None,
            screenshot_dir: Path = Path("out/screenshots"), max_frames: int | None = None, hook: Hook | None = None,
            say: Callable[[str], None] = print) -> dict:
    """The window's loop on a connected client until Esc, window close or `max_frames`; returns a summary.
    `fps` paces the world (16 = real time; 0 = as fast as it goes: the maze then walks many times too fast).
    `hook(n, latest_frame)` runs before each frame's events are read (tests post key events from it)."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # keep stdout for our own lines
    try:
        import pygame
    except ImportError:
        raise UserError("play needs pygame: pip install 'worldbridge[viewer]'") from None

    w, h = client.welcome["width"], client.welcome["height"]
    scale = scale or max(1, 512 // max(w, h))
    hud = Hud(client.welcome["world"], w, h)
    pygame.display.init()
    pygame.font.init()
    try:
        screen = pygame.display.set_mode((w * scale, h * scale))
        pygame.display.set_caption(f"WorldBridge — {hud.world}")
        font = pygame.font.Font(None, 22)
        grabbed = _grab(pygame, True)
        held: set[str] = set()
        mouse = [0.0, 0.0]
        shots: list[str] = []
        # the first episode's seed is the one this client's hello asked for (welcome does not repeat it)
        frames, seed, last_input = 0, int(client.hello["seed"]), time.monotonic()
        frame: FrameMsg | None = None
        # Paced: one credit per input, so each frame answers the newest input (lowest latency). Unpaced: one
        # more in flight, so the world never waits for this loop.
        if fps <= 0:
            client.grant(CREDITS - 1)
        due = time.monotonic()
        running = True
        while running and (max_frames is None or frames < max_frames):
            if fps > 0:
                time.sleep(max(0.0, due - time.monotonic()))
                due = max(due + 1 / fps, time.monotonic() - 1 / fps)  # no burst to catch up after a stall
            if hook:
                hook(frames, frame)
            want_shot = False
            for ev in pygame.event.get():
                if ev.type == pygame.QUIT:
                    running = False
                elif ev.type == pygame.KEYDOWN:
                    name = pygame.key.name(ev.key)
                    if name == "escape":
                        running = False
                    elif name in SCREENSHOT_KEYS:
                        want_shot = True
                    elif name == "tab":
                        grabbed = _grab(pygame, not grabbed)
                    elif name == "r":
                        # the next seed, as reset_ok confirms it; the frames this skips only shorten the
                        # unpaced pipeline: no stall
                        seed = client.reset(seed + 1)["seed"]
                    else:
                        held.add(name)
                elif ev.type == pygame.KEYUP:
                    held.discard(pygame.key.name(ev.key))
                elif ev.type == pygame.MOUSEMOTION and grabbed:
                    mouse[0] += ev.rel[0]
                    mouse[1] += ev.rel[1]
                elif ev.type == pygame.MOUSEBUTTONDOWN and not grabbed:
                    grabbed = _grab(pygame, True)
                elif ev.type == pygame.WINDOWFOCUSLOST:
                    held.clear()  # key-ups are not delivered to an unfocused window
            if not running:
                break
            now = time.monotonic()
            c = controls(held, (mouse[0], mouse[1]), now - last_input)
            last_input, mouse = now, [0.0, 0.0]
            client.send_input(c.move, c.look, c.buttons)
            client.grant(1)
            frame = client.recv_frame()
            frames += 1
            now = time.monotonic()
            hud.add(now, frame.latency_ms)
            if want_shot:
                path = screenshot(frame.image, screenshot_dir, hud.world)
                shots.append(str(path))
                hud.say(f"screenshot saved: {path}", now)
                say(f"worldbridge: screenshot saved to {path}")
            _draw(pygame, screen, font, frame.image, scale, hud.lines(now))
        return {"world": hud.world, "frames": frames, "width": w, "height": h, "seed": seed,
                "fps": round(hud.fps, 1), "latency_ms": round(hud.latency_ms, 2), "screenshots": shots,
                "hud": hud.lines(time.monotonic())}
    finally:
        pygame.quit()


def _grab(pygame, on: bool) -> bool:
    """Capture the mouse (hidden, confined: relative motion keeps coming at the window's edge) or free it."""
    pygame.event.set_grab(on)
    pygame.mouse.set_visible(not on)
    return on


def _draw(pygame, screen, font, image: np.ndarray, scale: int, lines: list[str]) -> None:
    h, w = image.shape[:2]
    surf = pygame.image.frombuffer(np.ascontiguousarray(image[..., :3]).tobytes(), (w, h), "RGB")
    if scale > 1:
        surf = pygame.transform.scale(surf, (w * scale, h * scale))
    screen.blit(surf, (0, 0))
    y = 6
    for line in lines:
        text = font.render(line, True, (255, 255, 255))
        box = pygame.Surface((text.get_width() + 8, text.get_height() + 2), pygame.SRCALPHA)
        box.fill((0, 0, 0, 150))  # readable over a bright sky or a white wall
        screen.blit(box, (4, y - 1))
        screen.blit(text, (8, y))
        y += text.get_height() + 3
    pygame.display.flip()


def play(world: str | None = None, connect: str | None = None, *, width: int = 256, height: int = 256,
         token: str = "", seed: int = 0, serve_args: tuple[str, ...] = (), **kwargs) -> dict:
    """Open the world (starting a daemon for --world) and run the window; the daemon stops when it closes.
    `seed`: the first episode's; R starts the next one with seed + 1 (the summary's "seed": the last episode's)."""
    from bridge.tools.connect import open_world

    with open_world(world, connect, width=width, height=height, name="play", token=token, seed=seed,
                    serve_args=serve_args) as conn:
        try:
            summary = session(conn.client, **kwargs)
        except KeyboardInterrupt:  # Ctrl-C in the terminal is a normal way out too
            summary = {"world": conn.client.welcome["world"], "interrupted": True}
        summary["address"] = conn.address
    if conn.daemon is not None:
        summary["daemon_exit_code"] = conn.daemon.proc.returncode
    return summary

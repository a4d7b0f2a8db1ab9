"""`worldbridge play`: the input mapping as a pure function, and real windowed runs (SDL's dummy video
driver) against real daemons, with key and mouse events injected into pygame's event queue."""

import json
import math
import os
import subprocess
import sys

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # no display on CI; the window code runs all the same
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import numpy as np  # noqa: E402
import pygame  # noqa: E402
from lockstep import lockstep  # noqa: E402
from PIL import Image  # noqa: E402

from bridge.client.client import Client  # noqa: E402
from bridge.protocol.poses import to_canonical  # noqa: E402
from bridge.tools.play import ARROW_DEG_PER_S, Hud, controls, play  # noqa: E402
from runtime.camera import yaw_pitch_from_c2w  # noqa: E402
from runtime.world import BUTTON_RUN  # noqa: E402


def test_keys_map_to_move_axes_and_buttons():
    assert controls({"w"}, (0, 0), 0.0).move == (0.0, 1.0)
    assert controls({"s", "d"}, (0, 0), 0.0).move == (1.0, -1.0)
    assert controls({"a", "d", "w", "s"}, (0, 0), 0.0).move == (0.0, 0.0)  # opposite keys cancel
    assert controls({"w", "left shift"}, (0, 0), 0.0).buttons == BUTTON_RUN
    assert controls({"w"}, (0, 0), 0.0).buttons == 0


def test_mouse_and_arrows_map_to_look():
    c = controls(set(), (10, -4), 0.0, sensitivity=0.5)
    assert c.look == (5.0, 2.0)  # right on screen turns right; up on screen (-y) pitches up
    c = controls({"left", "up"}, (0, 0), 0.5)
    assert c.look == (-ARROW_DEG_PER_S * 0.5, ARROW_DEG_PER_S * 0.5)


def test_hud_values():
    hud = Hud("maze", 64, 64)
    for i in range(11):
        hud.add(100.0 + i * 0.05, float("nan") if i == 0 else 10.0 + i)
    assert math.isclose(hud.fps, 20.0) and hud.latency_ms == 15.5
    hud.say("screenshot saved: x.png", now=101.0)
    assert hud.lines(101.0)[-1] == "screenshot saved: x.png" and len(hud.lines(200.0)) == 3


def _yaw(p, q):
    return yaw_pitch_from_c2w(to_canonical("opencv", p, q))[0]


def test_play_walks_turns_and_takes_a_screenshot(maze_daemon, tmp_path, capsys):
    seen, episodes = {}, {}

    def script(n, frame):
        if frame is not None:
            seen[n] = frame.header["pose"]
            episodes[n] = frame.header["episode"]
        key = {2: (pygame.KEYDOWN, pygame.K_w), 22: (pygame.KEYUP, pygame.K_w), 30: (pygame.KEYDOWN, pygame.K_F12),
               36: (pygame.KEYDOWN, pygame.K_r)}
        if n in key:
            pygame.event.post(pygame.event.Event(key[n][0], key=key[n][1], mod=0, unicode="", scancode=0))
        if n == 25:
            pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, rel=(200, 0), pos=(0, 0), buttons=(0, 0, 0)))

    out = play(connect=maze_daemon.address, width=96, height=64, max_frames=40, hook=script,
               screenshot_dir=tmp_path / "shots")
    assert out["frames"] == 40 and (out["width"], out["height"]) == (96, 64)
    walked = np.linalg.norm(np.subtract(seen[24]["p"], seen[1]["p"]))
    assert walked > 0.5  # ~20 frames of W at 1.5 units/s, unless a wall stops it early
    assert seen[24]["p"][1] == seen[1]["p"][1]  # eye height unchanged
    turn = (_yaw(seen[35]["p"], seen[35]["q"]) - _yaw(seen[24]["p"], seen[24]["q"]) + 180) % 360 - 180
    assert math.isclose(turn, 200 * 0.15, abs_tol=1e-6)  # one 200-pixel mouse move, at 0.15 degrees per pixel
    assert episodes[36] == episodes[1] and episodes[39] == episodes[1] + 1  # R: a new episode
    assert out["hud"][0] == "maze  96x64"
    assert out["fps"] > 0 and 0 < out["latency_ms"] < 60_000
    [shot] = out["screenshots"]
    with Image.open(shot) as im:
        assert im.size == (96, 64)
    assert f"screenshot saved to {shot}" in capsys.readouterr().out
    assert "daemon_exit_code" not in out  # --connect: the daemon is not ours to stop


def test_play_starts_from_its_seed_and_r_takes_the_next(maze_daemon, tmp_path):
    """The welcome carries no seed: play's episodes come from the seed its hello asked for, then seed + 1."""
    seen = {}

    def script(n, frame):
        if frame is not None:
            seen[n - 1] = frame
        if n == 2:
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_r, mod=0, unicode="", scancode=0))

    out = play(connect=maze_daemon.address, width=32, height=32, seed=5, max_frames=4, hook=script,
               screenshot_dir=tmp_path)
    assert seen[1].header["episode"] + 1 == seen[2].header["episode"]

    def start_frame(seed):  # a fresh session's first frame, standing still
        with Client(maze_daemon.address, width=32, height=32, seed=seed) as c:
            return lockstep(c, 1)[0].image

    assert not np.array_equal(start_frame(6), start_frame(1))  # the seeds start in different places
    np.testing.assert_array_equal(seen[0].image, start_frame(5))  # the hello's seed
    np.testing.assert_array_equal(seen[2].image, start_frame(6))  # R: that seed + 1 (not 1, from no seed at all)
    assert out["seed"] == 6


def test_play_command_starts_and_stops_its_daemon(tmp_path):
    env = dict(os.environ, SDL_VIDEODRIVER="dummy")
    r = subprocess.run([sys.executable, "-m", "bridge.tools.cli", "play", "--world", "maze", "--frames", "12",
                        "--fps", "0", "--json",
                        "--screenshot-dir", str(tmp_path)], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["world"] == "maze" and out["frames"] == 12
    assert out["daemon_exit_code"] == 0  # stopped by us, cleanly (SIGTERM -> bye -> exit 0)


def test_play_without_a_daemon_is_a_one_line_error():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = subprocess.run([sys.executable, "-m", "bridge.tools.cli", "play", "--connect", f"tcp://127.0.0.1:{port}"],
                       capture_output=True, text=True, timeout=60, env=dict(os.environ, SDL_VIDEODRIVER="dummy"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("worldbridge: error: no WorldBridge daemon answered at")

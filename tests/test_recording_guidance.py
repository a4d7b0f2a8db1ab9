"""Recording guidance (docs/protocol.md 4a and 4c, docs/dataset.md): an engine that sends guidance buffers while it
records gets them stored beside its frames, so a guided model can be fine-tuned on its own buffers and final
frames (docs/finetune.md "Guided"). Real daemons, real clients; the stored arrays must be exactly what was sent
(after the documented nearest-neighbour resize), and the mixed-case rule holds without harming other sessions."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from guided_tiny import tiny_guided_config

from bridge.client.client import Client, ServerError
from bridge.client.launch import DaemonProcess
from bridge.protocol import poses
from bridge.protocol.guidance import GuidanceBuffers
from bridge.server.daemon import Daemon, DaemonConfig
from bridge.server.recorder import RecordConfig
from runtime.data.dataset import Dataset
from runtime.maze.explore import Player
from runtime.maze.world import MazeWorld
from runtime.neural.checkpoint import init_checkpoint
from runtime.neural.world import NeuralWorld
from runtime.world import IDLE, Action

ROOT = Path(__file__).resolve().parents[1]
W, H = 32, 24
POSE = {"p": [1.5, 0.5, 1.5], "q": [0.0, 0.0, 0.0, 1.0]}


class GuidedMaze(MazeWorld):
    """The maze claiming the "guidance" capability (colour and depth, at scales 1 and 2), as a guided model does."""

    def __init__(self) -> None:
        super().__init__()
        self.capabilities = ("pose", "guidance")
        self.guidance_buffers = ("colour", "depth")
        self.guidance_scales = (1, 2)


def start(tmp_path: Path, world: MazeWorld | None = None, **record) -> Daemon:
    cfg = RecordConfig(tmp_path / "rec", **{"episode_frames": 4, **record})
    return Daemon(world or MazeWorld(), DaemonConfig("tcp://127.0.0.1:0", record=cfg)).start()


@pytest.fixture
def daemon(tmp_path, request):
    d = start(tmp_path, **getattr(request, "param", {}))
    yield d
    d.stop()


def buffers(width: int, height: int, seed: int, colour: bool = True, ids: bool = True) -> GuidanceBuffers:
    """Random buffers with both kinds of "no surface" (+inf, <= 0) and depths f16 cannot hold exactly, so a dtype
    or flip slip shows."""
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.1, 30.0, (height, width)).astype(np.float32)
    depth[0, 0], depth[-1, -1], depth[0, -1] = np.inf, 0.0, -1.0
    return GuidanceBuffers(
        colour=rng.integers(0, 256, (height, width, 3), dtype=np.uint8) if colour else None,
        depth=depth,
        ids=rng.integers(0, 65536, (height, width), dtype=np.uint16) if ids else None,
    )


def up(a: np.ndarray, s: int) -> np.ndarray:
    """What a buffer of 1/s of the size must be stored as: each pixel repeated s x s (written independently of
    runtime.guidance.resize)."""
    return np.repeat(np.repeat(a, s, axis=0), s, axis=1)


def image(k: int) -> np.ndarray:
    return np.full((H, W, 3), k, np.uint8)


def refused(c: Client, send) -> ServerError:
    """The error a send is answered with (before the pong of a ping sent after it)."""
    send()
    with pytest.raises(ServerError) as e:
        c.ping()
    c.expect("pong")
    return e.value


def raw(path: Path, k: int) -> dict[str, np.ndarray]:
    """Episode k's arrays as stored (Dataset.episode turns depth into float32)."""
    meta = json.loads((path / "meta.json").read_text())
    with np.load(path / meta["episodes"][k]["file"]) as z:
        return {name: z[name] for name in z.files}


@pytest.mark.parametrize("depth_format", ["f32", "f16"])
def test_guidance_is_stored_as_sent(daemon, tmp_path, depth_format):
    """Full size, half size, held (no guidance of its own), bottom-up rows, missing colour and ids: the episode
    files hold exactly what was in force for each image, at the recording's size."""
    full = [buffers(W, H, k) for k in range(3)]
    half = buffers(W // 2, H // 2, 7)
    depth_only = buffers(W, H, 8, colour=False, ids=False)
    dtype = {"f32": np.float32, "f16": np.float16}[depth_format]
    want = []  # (colour, depth, ids) expected per recorded image

    def expect(g: GuidanceBuffers, s: int = 1) -> None:
        colour = up(g.colour, s) if g.colour is not None else np.zeros((H, W, 3), np.uint8)
        ids = up(g.ids, s) if g.ids is not None else np.zeros((H, W), np.uint16)
        want.append((colour, up(g.depth, s).astype(dtype), ids))

    with Client(daemon.address, width=W, height=H) as c:
        c.start_recording("guided")
        for k, g in enumerate(full):
            c.send_input(pose=POSE, image=image(k), guidance=g, depth_format=depth_format)
            expect(g)
        c.send_input(pose=POSE, image=image(3), guidance=half, depth_format=depth_format)
        expect(half, 2)
        c.send_input(pose=POSE, image=image(4))  # no guidance of its own: the held one (half) is in force
        expect(half, 2)
        c.send_input(guidance=depth_only, depth_format=depth_format)  # held from an input without an image
        c.send_input(pose=POSE, image=image(5))
        expect(depth_only)
        bottom_up = buffers(W, H, 9)
        wire = {"width": W, "height": H, "row_order": "bottom_up", "colour": bottom_up.colour[::-1].tobytes(),
                "depth": bottom_up.depth[::-1].astype(dtype).tobytes(), "depth_format": depth_format,
                "ids": bottom_up.ids[::-1].tobytes()}
        c.send_input(pose=POSE, image=image(6), guidance=wire)
        expect(bottom_up)
        done = c.stop_recording()
    assert (done["frames"], done["episodes"]) == (7, 2)
    path = Path(done["path"])
    data = Dataset(path)
    assert data.has_guidance
    assert data.meta["guidance"] == {"ids": "uint16", "depth": np.dtype(dtype).name, "colour": "stored",
                                     "source": "engine"}
    assert list(data.meta).index("guidance") < list(data.meta).index("episodes")
    for k, first in enumerate((0, 3)):  # 7 frames in files of 4: 0..3, then 3..6 (the last borrows one)
        rows = want[first:first + 4]
        stored = raw(path, k)
        assert stored["depth"].dtype == dtype and stored["ids"].dtype == np.uint16
        assert stored["colour"].dtype == np.uint8 and stored["colour"].shape == (4, H, W, 3)
        np.testing.assert_array_equal(stored["colour"], np.stack([r[0] for r in rows]))
        np.testing.assert_array_equal(stored["depth"], np.stack([r[1] for r in rows]))
        np.testing.assert_array_equal(stored["ids"], np.stack([r[2] for r in rows]))
        np.testing.assert_array_equal(stored["frames"][:, 0, 0, 0], np.arange(first, first + 4))
        g = data.guidance(k)  # what training reads: the stored colour, not the maze's table
        np.testing.assert_array_equal(g.colour, stored["colour"])
        np.testing.assert_array_equal(g.ids, stored["ids"])
        np.testing.assert_array_equal(g.depth, stored["depth"].astype(np.float32))
        assert g.depth.dtype == np.float32
    assert daemon._recorder._pending == 0  # the guidance bytes counted as queued are all released


def test_an_f16_recording_stores_later_f32_depth_as_f16(daemon):
    """The first recorded guidance's depth_format decides the stored dtype; a later one is converted to it."""
    first, later = buffers(W, H, 1), buffers(W, H, 2)
    later.depth[1, 1] = 70_000.0  # beyond float16: +inf (no surface), as on the wire
    with Client(daemon.address, width=W, height=H) as c:
        c.start_recording("f16")
        c.send_input(pose=POSE, image=image(0), guidance=first, depth_format="f16")
        c.send_input(pose=POSE, image=image(1), guidance=later, depth_format="f32")
        path = Path(c.stop_recording()["path"])
    depth = raw(path, 0)["depth"]
    assert depth.dtype == np.float16 and Dataset(path).meta["guidance"]["depth"] == "float16"
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(depth, np.stack([first.depth, later.depth]).astype(np.float16))
    assert depth[1, 1, 1] == np.inf


def test_without_guidance_nothing_changes(daemon):
    """A recording whose first image has no guidance in force stores none; guidance sent later goes to the world
    and is not recorded (every file of a dataset has the same arrays)."""
    with Client(daemon.address, width=W, height=H) as c:
        c.start_recording("plain")
        c.send_input(pose=POSE, image=image(0))
        c.send_input(pose=POSE, image=image(1), guidance=buffers(W, H, 1))
        c.send_input(pose=POSE, image=image(2))
        c.ping()  # no error came
        done = c.stop_recording()
    data = Dataset(Path(done["path"]))
    assert done["frames"] == 3 and not data.has_guidance and "guidance" not in data.meta
    assert set(raw(Path(done["path"]), 0)) == {"frames", "move", "look", "buttons", "poses", "fov_deg"}


def test_a_guidance_recording_refuses_images_without_guidance(daemon):
    """Once a recording stores guidance, an image without guidance in force (after a reset forgot the held one)
    or without depth is refused with 422 naming the field, and the whole input is not applied."""
    with Client(daemon.address, width=W, height=H) as c:
        c.start_recording("mixed")
        c.send_input((0.0, 1.0), pose=POSE, image=image(0), guidance=buffers(W, H, 0))
        c.send_input(pose=POSE, image=image(1))  # held: fine
        c.reset(4)  # forgets the held guidance
        seq = c.send_input((0.0, 1.0), (5.0, 0.0))  # no image: an ordinary input, applied
        e = refused(c, lambda: c.send_input((1.0, 0.0), (30.0, 0.0), pose=POSE, image=image(2)))
        assert (e.code, e.name) == (422, "bad_field") and e.message.startswith('"guidance" is required')
        no_depth = GuidanceBuffers(colour=np.zeros((H, W, 3), np.uint8))
        e = refused(c, lambda: c.send_input(pose=POSE, image=image(3), guidance=no_depth))
        assert e.code == 422 and e.message.startswith('"guidance.depth" is required')
        c.grant(1)  # the refused inputs were not applied: the frame answers the last accepted one
        frame = c.recv_frame()
        assert frame.header["input_seq"] == seq
        truth = MazeWorld()
        truth.reset(0, 4, W, H)
        np.testing.assert_array_equal(frame.image, truth.step({0: Action((0.0, 1.0), (5.0, 0.0))})[0].pixels)
        # the refused depth-less guidance was not held either: an image alone is still refused
        assert refused(c, lambda: c.send_input(pose=POSE, image=image(4))).code == 422
        c.send_input(pose=POSE, image=image(5), guidance=buffers(W // 2, H // 2, 5))
        done = c.stop_recording()
    assert done["frames"] == 3
    stored = raw(Path(done["path"]), 0)
    np.testing.assert_array_equal(stored["frames"][:, 0, 0, 0], [0, 1, 5])
    np.testing.assert_array_equal(stored["ids"][2], up(buffers(W // 2, H // 2, 5).ids, 2))


def test_a_guided_world_records_guidance_from_the_first_image(tmp_path):
    """In a world that takes guidance the recording stores it from the start: an engine whose guidance read-back
    is late has its first images refused, never a recording silently without guidance. Another session, making
    no mistakes, records and plays unharmed meanwhile."""
    d = start(tmp_path, GuidedMaze())
    try:
        other_errors: list[Exception] = []
        other_done: dict = {}

        def other() -> None:
            try:
                with Client(d.address, width=W, height=H) as c:
                    c.start_recording("other")
                    for k in range(6):
                        c.send_input(pose=POSE, image=image(k), guidance=buffers(W, H, k))
                        c.grant(1)
                        c.recv_frame()
                    other_done.update(c.stop_recording())
            except Exception as e:  # surfaced below
                other_errors.append(e)

        thread = threading.Thread(target=other)
        thread.start()
        with Client(d.address, width=W, height=H) as c:
            assert c.guidance_offer is not None
            c.start_recording("late")
            e = refused(c, lambda: c.send_input(pose=POSE, image=image(0)))
            assert e.code == 422 and e.message.startswith('"guidance" is required')
            c.send_input(guidance=buffers(W // 2, H // 2, 3), depth_format="f16")  # the read-back arrives
            c.send_input(pose=POSE, image=image(1))
            done = c.stop_recording()
        thread.join(60)
    finally:
        d.stop()
    assert not other_errors and other_done["frames"] == 6
    assert Dataset(Path(other_done["path"])).meta["guidance"]["depth"] == "float32"
    data = Dataset(Path(done["path"]))
    assert done["frames"] == 1 and data.meta["guidance"]["depth"] == "float16"
    np.testing.assert_array_equal(data.guidance(0).colour[0], up(buffers(W // 2, H // 2, 3).colour, 2))


@pytest.mark.parametrize("daemon", [{"max_bytes": 60_000}], indirect=True)
@pytest.mark.parametrize("depth_format, depth_bytes", [("f32", 4), ("f16", 2)])
def test_budget_counts_the_guidance_bytes(daemon, tmp_path, depth_format, depth_bytes):
    """The documented accounting: W*H*3 + 64 per frame, plus W*H*(3 + 2 + 4 or 2) with guidance."""
    with Client(daemon.address, width=W, height=H) as c:
        budget = c.start_recording("budget")["max_bytes"]
        cost = W * H * 3 + 64 + W * H * (3 + 2 + depth_bytes)
        assert budget // cost != budget // (W * H * 3 + 64)  # the test tells the two accountings apart
        g = buffers(W // 2, H // 2, 1)  # counted at the stored (full) size, not the size sent
        for k in range(budget // cost + 2):
            c.send_input(pose=POSE, image=image(k), guidance=g, depth_format=depth_format)
        e = refused(c, lambda: None)
        assert e.code == 507
        assert c.stop_recording()["frames"] == budget // cost
    total = sum(f.stat().st_size for f in (tmp_path / "rec").rglob("*") if f.is_file())
    assert total <= 60_000


# ------------------------------------------------------------------------------------------------ end to end


def worldbridge(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "bridge.tools.cli", *args], capture_output=True, text=True, cwd=ROOT,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def tiny_guided_model(tmp_path: Path) -> Path:
    """A random tiny guided checkpoint (tests/guided_tiny.py) standing in for models/guided."""
    init_checkpoint(tmp_path / "guided", tiny_guided_config(tmp_path), seed=2)
    return tmp_path / "guided"


def test_record_guidance_finetune_serve(tmp_path):
    """docs/finetune.md "Guided" at toy scale: `serve --world maze --record-dir` records an engine's guidance
    (the maze ignores it), a guided model is fine-tuned on the recording with --init, and served."""
    size, frames = 32, 130  # two episode files of 128 (serve's default): one to train on, one held out
    engine = MazeWorld(level_seed=5)
    engine.reset(0, 1, size, size)
    player, action = Player(engine.level.solid, np.random.default_rng(0)), IDLE
    sent = []
    rec_dir = str(tmp_path / "recordings")
    with DaemonProcess("maze", "--record-dir", rec_dir) as served, \
            Client(served.address, width=size, height=size, engine="godot") as c:
        assert c.guidance_offer is None  # the maze takes no guidance, and records it all the same
        c.start_recording("my style")
        for k in range(frames):
            frame = engine.step({0: action})[0]
            g = engine.renderer.guidance(frame.pose, size, size, engine.fov_deg)
            if k % 2:  # every other frame at half size: stored repeated up
                g = type(g)(g.colour[::2, ::2], g.depth[::2, ::2], g.ids[::2, ::2])
            p, q = poses.from_canonical("godot", frame.pose)
            c.send_input(action.move, action.look, action.buttons, pose={"p": p.tolist(), "q": q.tolist()},
                         image=frame.pixels, guidance=g, depth_format="f16")
            sent.append((g, k % 2 + 1))
            action = player.act(frame.pose)
        done = c.stop_recording(timeout=60)
    recording = Path(done["path"])
    data = Dataset(recording)
    assert done["frames"] == frames and len(data) == 2 and data.has_guidance
    g = data.guidance(1)  # the last file: frames 2..129
    np.testing.assert_array_equal(g.ids[-1], up(sent[-1][0].ids, sent[-1][1]))
    np.testing.assert_array_equal(g.colour[-2], up(sent[-2][0].colour, sent[-2][1]))
    assert data.meta["guidance"]["depth"] == "float16"
    np.testing.assert_array_equal(g.depth[-1], up(sent[-1][0].depth, 2).astype(np.float16).astype(np.float32))

    base = tiny_guided_model(tmp_path)
    cfg = {"model": str(ROOT / "runtime/configs/tiny.yaml"), "data": str(tmp_path / "nowhere"),
           "out": str(tmp_path / "unused"), "holdout": 1, "threads": 1,
           "teacher": {"steps": 2, "batch": 2, "warmup": 1, "log_every": 1},
           "student": {"steps": 1, "batch": 2, "warmup": 1, "log_every": 1, "teacher_steps": 2, "rollout": 3}}
    config = tmp_path / "finetune.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out = json.loads(worldbridge("train", str(config), "--data", str(recording), "--init", str(base),
                                 "--out", str(tmp_path / "mystyle")).strip().splitlines()[-1])
    model = Path(out["model"])
    log = [json.loads(line) for line in (tmp_path / "mystyle" / "log.jsonl").read_text().splitlines()]
    assert {r["stage"] for r in log if "step" in r} == {"teacher", "student"}

    world = NeuralWorld(model)
    assert "guidance" in world.capabilities
    with DaemonProcess(str(model)) as served, Client(served.address, width=size, height=size) as c:
        offer = c.guidance_offer
        assert offer is not None and {"colour", "depth"} <= set(offer["buffers"])
        c.send_input(move=(0.0, 1.0), pose=POSE, guidance=sent[0][0])
        c.grant(2)
        shots = [c.recv_frame(timeout=60).image for _ in range(2)]
    assert all(s.shape == (size, size, 3) for s in shots)


def test_init_guided_is_the_shipped_guided_model(tmp_path):
    """`train --init guided` names models/guided; a directory that is no model is refused before any data loads."""
    from bridge.server.worlds import MODELS, model_path

    assert model_path("guided") == MODELS / "guided" and model_path("runs/x/model") == Path("runs/x/model")
    r = subprocess.run([sys.executable, "-m", "bridge.tools.cli", "train", "runtime/configs/finetune.yaml",
                        "--init", str(tmp_path), "--data", str(tmp_path / "nowhere")], capture_output=True,
                       text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2 and f"--init {tmp_path}: {tmp_path} is not a model directory" in r.stderr

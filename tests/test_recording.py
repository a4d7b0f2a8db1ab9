"""Recording over the protocol (1.1): an engine sends its own frames with its inputs and poses, the daemon writes
them as a dataset (docs/dataset.md) inside its recording directory. The "engine" here is a second maze world
in the test process: its frames, actions and poses are what gets recorded, and must come back exactly."""

import io
import threading

import numpy as np
import pytest
from PIL import Image

from bridge.client.client import Client, ServerError
from bridge.protocol import messages as p
from bridge.protocol import poses
from bridge.server.daemon import Daemon, DaemonConfig
from bridge.server.recorder import RecordConfig, sanitize
from runtime.data.dataset import Dataset
from runtime.maze.world import MazeWorld
from runtime.world import Action

W, H = 32, 24


@pytest.fixture
def daemon(tmp_path, request):
    """A maze daemon in this process recording into tmp_path/rec (RecordConfig overrides via indirect param)."""
    record = RecordConfig(tmp_path / "rec", **getattr(request, "param", {"episode_frames": 8}))
    d = Daemon(MazeWorld(), DaemonConfig("tcp://127.0.0.1:0", record=record)).start()
    yield d
    d.stop()


class Engine:
    """Stands in for Unity: moves its own camera in a maze, renders, reports pose and image as the engine does."""

    def __init__(self, engine: str = "unity", seed: int = 3):
        self.world, self.engine = MazeWorld(), engine
        self.world.reset(0, seed, W, H)

    def frame(self, move, look, buttons=0):
        f = self.world.step({0: Action(move, look, buttons)})[0]
        q, wire = poses.from_canonical(self.engine, f.pose)
        return f.pixels, {"p": q.tolist(), "q": wire.tolist()}


def script(k: int):
    """A varied but deterministic controller: walk, turn, run now and then."""
    return (np.sin(k) * 0.5, 1.0 if k % 5 else -0.25), (float(k % 7) - 3.0, 0.5 * np.cos(k)), k % 3 == 0


def test_recording_round_trip(daemon, tmp_path):
    engine, sent = Engine("unity"), []
    with Client(daemon.address, width=W, height=H, engine="unity") as c:
        assert "record" in c.welcome["capabilities"]
        ok = c.start_recording("walk")
        assert (ok["name"], ok["width"], ok["height"]) == ("walk", W, H)
        for k in range(20):
            move, look, run = script(k)
            if k == 5:  # an input without an image: its look is part of the next recorded frame's look
                c.send_input(move, (1.5, -0.5), int(run))
                engine_look = (look[0] + 1.5, look[1] - 0.5)
            else:
                engine_look = look
            pixels, pose = engine.frame(move, engine_look, int(run))
            c.send_input(move, look, int(run), pose=pose, fov_deg=60.0 + k, image=pixels)
            sent.append((pixels, move, engine_look, int(run), pose, 60.0 + k))
        done = c.stop_recording()
    root = (tmp_path / "rec").resolve()
    assert done["path"] == str(root / "walk") and (done["frames"], done["episodes"]) == (20, 3)
    data = Dataset(root / "walk")
    assert data.meta["source"] == "recording" and (data.meta["width"], data.meta["height"]) == (W, H)
    assert [e["frames"] for e in data.meta["episodes"]] == [8, 8, 8]
    # episodes 0..7, 8..15, then the last 4 frames completed with 4 from before: 12..19
    for ep, first in zip(data, (0, 8, 12)):
        rows = sent[first:first + 8]
        np.testing.assert_array_equal(ep["frames"], np.stack([r[0] for r in rows]))
        np.testing.assert_array_equal(ep["move"][1:], np.float32([r[1] for r in rows[1:]]))
        np.testing.assert_array_equal(ep["look"][1:], np.float32([r[2] for r in rows[1:]]))
        np.testing.assert_array_equal(ep["buttons"][1:], [r[3] for r in rows[1:]])
        assert not ep["move"][0].any() and not ep["look"][0].any() and ep["buttons"][0] == 0  # start frame
        want = np.stack([poses.to_canonical("unity", r[4]["p"], r[4]["q"]) for r in rows]).astype(np.float32)
        np.testing.assert_array_equal(ep["poses"], want)
        np.testing.assert_array_equal(ep["fov_deg"], np.float32([r[5] for r in rows]))
    # the pose is the engine camera's, in the canonical convention of the training data
    engine_poses = Engine("unity")
    first = engine_poses.world.step({0: Action(*script(0)[:2], int(script(0)[2]))})[0].pose
    np.testing.assert_allclose(data.episode(0)["poses"][0], first, atol=1e-5)


def test_image_formats_and_row_orders(daemon, tmp_path):
    """rgba8 bottom-up and JPEG images are stored as RGB, top row first."""
    engine = Engine("godot")
    with Client(daemon.address, width=W, height=H, engine="godot") as c:
        c.start_recording("formats")
        pixels, pose = engine.frame((0, 1), (2, 0))
        rgba = np.concatenate([pixels, np.full((H, W, 1), 7, np.uint8)], 2)[::-1]
        c.send(p.input_msg(1, 0.0, pose=pose, image={"width": W, "height": H, "format": "rgba8",
                                                     "row_order": "bottom_up"}), rgba.tobytes())
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=95)
        c.send(p.input_msg(2, 0.1, pose=pose, image={"width": W, "height": H, "format": "jpeg"}), buf.getvalue())
        assert c.stop_recording()["frames"] == 2
    frames = Dataset(tmp_path / "rec" / "formats").episode(0)["frames"]
    np.testing.assert_array_equal(frames[0], pixels)
    assert np.abs(frames[1].astype(int) - pixels).mean() < 4  # JPEG is lossy


def test_names_are_sanitized_and_confined(daemon, tmp_path):
    assert sanitize("../../etc/x") == "etcx" and sanitize("") == "recording" and sanitize("/..") == "recording"
    assert sanitize("h\u00e9llo w\u00f6rld_1-2") == "hllowrld_1-2" and len(sanitize("a" * 500)) == 64
    names = []
    with Client(daemon.address, width=W, height=H) as c:
        for wish in ("../../etc/x", "/tmp/abs", "..", "x" * 300, "etcx", "a\\b:c"):
            names.append(c.start_recording(wish)["name"])
            c.stop_recording()
    assert names == ["etcx", "tmpabs", "recording", "x" * 64, "etcx-2", "abc"]
    root = tmp_path / "rec"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["rec"]  # nothing was written beside the directory
    assert sorted(x.name for x in root.iterdir()) == sorted(names)
    for name in names:  # each one a valid (empty) dataset
        assert len(Dataset(root / name)) == 0


def test_refused_without_a_record_dir(maze_daemon):
    pixels = np.zeros((H, W, 3), np.uint8)
    pose = {"p": [0.0, 0.5, 0.0], "q": [0.0, 0.0, 0.0, 1.0]}
    with Client(maze_daemon.address, width=W, height=H) as c:
        assert "record" not in c.welcome["capabilities"] and c.welcome["minor"] == p.MINOR
        with pytest.raises(ServerError) as e:
            c.start_recording("x")
        assert (e.value.code, e.value.name) == (403, "record_disabled")
        c.send_input(pose=pose, image=pixels)
        with pytest.raises(ServerError) as e:
            c.ping()
        assert e.value.code == 403
        c.ping()  # the session goes on


def test_state_and_field_errors(daemon):
    pose = {"p": [0.0, 0.5, 0.0], "q": [0.0, 0.0, 0.0, 1.0]}
    with Client(daemon.address, width=W, height=H) as c:

        def error_after(send) -> int:
            send()
            with pytest.raises(ServerError) as e:
                c.ping()
            c.expect("pong")  # the error came first; the ping's answer follows
            return e.value.code

        assert error_after(lambda: c.send(p.record_stop())) == 412
        assert error_after(lambda: c.send_input(pose=pose, image=np.zeros((H, W, 3), np.uint8))) == 412
        c.start_recording()
        assert error_after(lambda: c.send(p.record_start("again"))) == 412
        assert error_after(lambda: c.send_input(pose=pose, image=np.zeros((H, W + 1, 3), np.uint8))) == 422
        assert error_after(lambda: c.send_input(image=np.zeros((H, W, 3), np.uint8))) == 422  # no pose
        spec = {"width": W, "height": H, "format": "rgb8"}
        assert error_after(lambda: c.send(p.input_msg(9, 0.0, pose=pose, image=spec), b"short")) == 422
        assert error_after(lambda: c.send(p.input_msg(9, 0.0, pose=pose, image=spec))) == 400  # no pixels
        jpeg = {"width": W, "height": H, "format": "jpeg"}
        assert error_after(lambda: c.send(p.input_msg(9, 0.0, pose=pose, image=jpeg), b"not a jpeg")) == 422
        c.send_input(pose=pose, image=np.full((H, W, 3), 9, np.uint8))
        assert c.stop_recording()["frames"] == 1  # only the good one


@pytest.mark.parametrize("daemon", [{"episode_frames": 4, "max_frames": 6}], indirect=True)
def test_frame_limit_keeps_a_valid_recording(daemon, tmp_path):
    engine = Engine("opencv")
    with Client(daemon.address, width=W, height=H) as c:
        assert c.start_recording("long")["max_frames"] == 6
        sent = []
        for _ in range(9):
            pixels, pose = engine.frame((0, 1), (3, 0))
            c.send_input((0, 1), (3, 0), pose=pose, image=pixels)
            sent.append(pixels)
        with pytest.raises(ServerError) as e:  # told once, not once per dropped image
            c.ping()
        assert (e.value.code, e.value.name) == (507, "record_full")
        c.ping()
        done = c.stop_recording()
    assert (done["frames"], done["episodes"]) == (6, 2)
    data = Dataset(tmp_path / "rec" / "long")
    np.testing.assert_array_equal(data.episode(1)["frames"], np.stack(sent[2:6]))


@pytest.mark.parametrize("daemon", [{"episode_frames": 4, "max_bytes": 20_000}], indirect=True)
def test_byte_limit_counts_what_is_in_the_directory(daemon, tmp_path):
    with Client(daemon.address, width=W, height=H) as c:
        budget = c.start_recording("first")["max_bytes"]
        frame_cost = W * H * 3 + 64  # the documented accounting: uncompressed pixels + 64 bytes per row
        pose = {"p": [0.0, 0.5, 0.0], "q": [0.0, 0.0, 0.0, 1.0]}
        for k in range(budget // frame_cost + 2):
            c.send_input(pose=pose, image=np.full((H, W, 3), k, np.uint8))
        with pytest.raises(ServerError) as e:
            c.ping()
        assert e.value.code == 507
        assert c.stop_recording()["frames"] == budget // frame_cost
        assert c.start_recording("second")["max_bytes"] < frame_cost  # the budget is for the directory
    total = sum(f.stat().st_size for f in (tmp_path / "rec").rglob("*") if f.is_file())
    assert total <= 20_000


def test_other_sessions_are_unaffected(daemon, tmp_path):
    """While one client records (and makes mistakes, and leaves without record_stop), another plays: its
    frames are exactly the maze's for its inputs."""
    player_frames, errors = [], []

    def play():
        try:
            with Client(daemon.address, width=W, height=H, seed=11) as c:
                for k in range(30):
                    move, look, run = script(k)
                    seq = c.send_input(move, look, int(run))
                    c.grant(1)
                    f = c.recv_frame()
                    assert f.header["input_seq"] == seq
                    player_frames.append(f.image.copy())
        except Exception as e:  # surfaced below
            errors.append(e)

    player = threading.Thread(target=play)
    player.start()
    engine = Engine("unity")
    recorder = Client(daemon.address, width=W, height=H, engine="unity")
    recorder.start_recording("left")
    for k in range(13):
        pixels, pose = engine.frame((0, 1), (1, 0))
        recorder.send_input((0, 1), (1, 0), pose=pose, image=pixels)
        recorder.send(p.input_msg(1000 + k, 0.0, image={"width": 1, "height": 1, "format": "rgb8"}), b"bad")
    recorder.close()  # bye, no record_stop: what was recorded is kept
    player.join(60)
    assert not errors and len(player_frames) == 30
    truth = MazeWorld()
    truth.reset(0, 11, W, H)
    for k, got in enumerate(player_frames):
        move, look, run = script(k)
        np.testing.assert_array_equal(got, truth.step({0: Action(move, look, int(run))})[0].pixels)
    daemon.stop()  # joins the writer: the abandoned recording is on disk now
    data = Dataset(tmp_path / "rec" / "left")
    assert [e["frames"] for e in data.meta["episodes"]] == [8, 8]  # 13 frames: 0..7 and 5..12

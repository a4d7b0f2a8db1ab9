"""Datasets for guided models on many levels: guidance buffers (ids, depth) per frame, episodes spread over
several level seeds in one style, the meta naming each episode's level, older datasets still loading, and the
`worldbridge data generate --levels ... --style ... --guidance` command line with its one-line errors."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from runtime.data.dataset import Dataset, DatasetWriter
from runtime.data.generate import generate, level_of_episode
from runtime.maze.render import GUIDANCE_NAMES
from runtime.maze.world import MazeWorld

ROOT = Path(__file__).resolve().parents[1]
LEVELS, EPISODES, FRAMES, SIZE = [5, 9], 2, 8, 32


def worldbridge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge.tools.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def guided(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("guided") / "data"
    generate(MazeWorld(), out, EPISODES, FRAMES, SIZE, seed=3, levels=LEVELS, style="varied", guidance=True)
    return out


def test_guidance_arrays_have_their_shapes_and_dtypes(guided):
    data = Dataset(guided)
    assert len(data) == EPISODES and data.frames == EPISODES * FRAMES and data.has_guidance
    assert data.meta["guidance"]["ids"] == "uint16" and data.meta["guidance"]["names"] == list(GUIDANCE_NAMES)
    for k in range(EPISODES):
        ep = data.episode(k)
        assert ep["ids"].shape == (FRAMES, SIZE, SIZE) and ep["ids"].dtype == np.uint16
        assert ep["depth"].shape == (FRAMES, SIZE, SIZE) and ep["depth"].dtype == np.float32
        assert ep["frames"].shape == (FRAMES, SIZE, SIZE, 3)
        assert ep["ids"].max() < len(GUIDANCE_NAMES)
        assert np.all(np.isinf(ep["depth"]) == (ep["ids"] == 0))  # sky and only sky is infinitely far
        assert np.all(ep["depth"][ep["ids"] != 0] > 0)


def test_stored_guidance_is_what_the_renderer_gives_for_the_stored_pose(guided):
    data = Dataset(guided)
    for k in range(EPISODES):
        ep = data.episode(k)
        seed, style = data.level(k)
        world = MazeWorld(seed, style=style)
        for t in (0, FRAMES // 2, FRAMES - 1):
            g = world.renderer.guidance(ep["poses"][t].astype(np.float64), SIZE, SIZE, float(ep["fov_deg"][t]))
            np.testing.assert_array_equal(ep["ids"][t], g.ids)
            np.testing.assert_allclose(ep["depth"][t], g.depth, rtol=1e-5)
            np.testing.assert_array_equal(ep["frames"][t], world.renderer.render(
                ep["poses"][t].astype(np.float64), SIZE, SIZE, float(ep["fov_deg"][t])))


def test_meta_names_each_episodes_level_and_style(guided):
    data = Dataset(guided)
    assert data.meta["world"] == "maze" and data.meta["levels"] == LEVELS and data.meta["style"] == "varied"
    assert [(e["level"], e["style"]) for e in data.meta["episodes"]] == [(5, "varied"), (9, "varied")]
    assert [data.level(k) for k in range(EPISODES)] == [(5, "varied"), (9, "varied")]
    # the two levels really differ (layout), so an episode's frames belong to its level
    assert not np.array_equal(MazeWorld(5).level.solid, MazeWorld(9).level.solid)


def test_episodes_split_evenly_in_order():
    assert [level_of_episode(k, 8, [0, 1, 2, 3]) for k in range(8)] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert [level_of_episode(k, 5, [7, 8]) for k in range(5)] == [7, 7, 7, 8, 8]
    with pytest.raises(ValueError, match="every level needs"):
        generate(MazeWorld(), Path("/nonexistent"), 1, 4, 32, levels=[0, 1])


def test_float16_depth_is_stored_small_and_read_as_float32(tmp_path):
    out = tmp_path / "half"
    generate(MazeWorld(2), out, 1, 4, SIZE, guidance=True, depth_dtype="float16")
    with np.load(out / "ep_000000.npz") as z:
        assert z["depth"].dtype == np.float16 and z["ids"].dtype == np.uint16
    data = Dataset(out)
    assert data.meta["guidance"]["depth"] == "float16" and data.meta["world"] == "maze:2"
    ep = data.episode(0)
    assert ep["depth"].dtype == np.float32
    g = MazeWorld(2).renderer.guidance(ep["poses"][3].astype(np.float64), SIZE, SIZE, float(ep["fov_deg"][3]))
    np.testing.assert_allclose(ep["depth"][3], g.depth, rtol=2**-11)


# sha256 of what generate(MazeWorld(3), out, 2, 6, 48) wrote before levels and guidance existed: meta.json's
# bytes, and each episode's frames, move, look, buttons, fov_deg arrays' bytes in that order
PLAIN_META_SHA = "eea6e48e55a4610d8c46b32e1b2f3542891231c2d1eaf4edbbdc96827804ca7b"
PLAIN_ARRAYS_SHA = "cb7f2207d0f2f1a15b4446d014f06ba54e3fe3834bf30112d8c11d1ffaa09113"


def test_the_plain_call_writes_what_it_always_did(tmp_path):
    """No levels, style or guidance: no new keys, no new arrays, the same bytes as before."""
    generate(MazeWorld(3), tmp_path / "ref", 2, 6, 48)
    assert hashlib.sha256((tmp_path / "ref" / "meta.json").read_bytes()).hexdigest() == PLAIN_META_SHA
    h = hashlib.sha256()
    for k in range(2):
        with np.load(tmp_path / "ref" / f"ep_{k:06d}.npz") as z:
            for name in ("frames", "move", "look", "buttons", "fov_deg"):
                h.update(np.ascontiguousarray(z[name]).tobytes())
    assert h.hexdigest() == PLAIN_ARRAYS_SHA
    generate(MazeWorld(3), tmp_path / "a", 2, 6, SIZE, seed=1)
    generate(MazeWorld(3), tmp_path / "b", 2, 6, SIZE, seed=1, guidance=False)
    meta = json.loads((tmp_path / "a" / "meta.json").read_text())
    assert set(meta) == {"format", "version", "world", "width", "height", "fps", "fov_deg", "source", "episodes"}
    assert meta["world"] == "maze:3" and all(set(e) == {"file", "frames"} for e in meta["episodes"])
    with np.load(tmp_path / "a" / "ep_000000.npz") as z:
        assert sorted(z.files) == ["buttons", "fov_deg", "frames", "look", "move", "poses"]
    for name in ("meta.json", "ep_000000.npz", "ep_000001.npz"):
        digest = [hashlib.sha256((tmp_path / d / name).read_bytes()).hexdigest() for d in "ab"]
        assert digest[0] == digest[1]
    data = Dataset(tmp_path / "a")
    assert not data.has_guidance and "ids" not in data.episode(0) and data.level(0) == (3, "default")


def test_an_old_style_dataset_still_loads(tmp_path):
    """A version-1 dataset as written before guidance existed: six arrays, no extra meta keys."""
    out = tmp_path / "old"
    out.mkdir()
    t, h, w = 3, 16, 24
    arrays = {"frames": np.zeros((t, h, w, 3), np.uint8), "move": np.zeros((t, 2), np.float32),
              "look": np.zeros((t, 2), np.float32), "buttons": np.zeros(t, np.uint32),
              "poses": np.tile(np.eye(4, dtype=np.float32), (t, 1, 1)), "fov_deg": np.full(t, 60, np.float32)}
    np.savez_compressed(out / "ep_000000.npz", **arrays)
    (out / "meta.json").write_text(json.dumps(
        {"format": "worldbridge-dataset", "version": 1, "world": "unity:lobby", "width": w, "height": h, "fps": 30,
         "fov_deg": 60.0, "source": "recording", "episodes": [{"file": "ep_000000.npz", "frames": t}]}))
    data = Dataset(out)
    ep = data.episode(0)
    assert set(ep) == set(arrays) and not data.has_guidance and data.level(0) is None
    # and the writer still writes that same layout when given no guidance
    DatasetWriter(tmp_path / "new", "unity:lobby", w, h, 30, 60.0, source="recording").add(arrays)
    with np.load(tmp_path / "new" / "ep_000000.npz") as z:
        assert sorted(z.files) == sorted(arrays)


def test_cli_generates_levels_with_guidance(tmp_path):
    out = tmp_path / "cli"
    r = worldbridge("data", "generate", "--levels", "0-1", "--style", "varied", "--guidance", "--depth-dtype",
                    "float16", "--episodes", "2", "--frames", "4", "--size", "32", "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1])["levels"] == 2
    data = Dataset(out)
    assert [data.level(k) for k in range(2)] == [(0, "varied"), (1, "varied")]
    assert data.meta["guidance"]["depth"] == "float16"
    ep = data.episode(1)
    assert ep["ids"].shape == (4, 32, 32) and ep["depth"].dtype == np.float32


@pytest.mark.parametrize("args, message", [
    (["--levels", "5-2"], "--levels 5-2: range 5-2 runs backwards"),
    (["--levels", "a,b"], "--levels a,b: 'a' is not a level seed"),
    (["--levels", "0,1,,2"], "is not a level seed"),
    (["--levels", "0-2,1"], "names a level more than once"),
    (["--levels", "0-9", "--episodes", "4"], "--levels names 10 levels but --episodes is 4"),
    (["--world", "maze:3", "--levels", "0-1"], "give either --world maze:3 or --levels"),
])
def test_cli_bad_levels_is_a_one_line_error(tmp_path, args, message):
    r = worldbridge("data", "generate", *args, "--frames", "2", "--size", "16", "--out", str(tmp_path / "x"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("worldbridge data generate: ") and message in lines[0], r.stderr
    assert not (tmp_path / "x").exists()

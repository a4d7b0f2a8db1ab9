"""NeuralWorld behind the World interface: native frame size, episodes with and without engine poses, start
images and checkpoint start frames, dead-reckoned poses with the maze's kinematics, reduced precision."""

from pathlib import Path

import numpy as np
import pytest

from runtime.camera import c2w_from_yaw_pitch, yaw_pitch_from_c2w
from runtime.maze.world import PlayerState, stack_actions, step_kinematics
from runtime.motion import PITCH_LIMIT, walk
from runtime.neural.checkpoint import init_checkpoint
from runtime.neural.world import LOOK_LIMIT, NeuralWorld
from runtime.world import Action

TINY = Path(__file__).resolve().parents[1] / "runtime" / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("world") / "tiny"
    start = np.stack([np.full((32, 32, 3), v, np.uint8) for v in (0, 255)])
    init_checkpoint(path, TINY, start_frames=start)
    return path


@pytest.fixture
def world(checkpoint: Path) -> NeuralWorld:
    return NeuralWorld(checkpoint)


def test_name_size_and_fov_come_from_the_config(world: NeuralWorld) -> None:
    assert world.name == "tiny" and world.fov_deg == 60.0
    assert world.frame_size(640, 480) == (32, 32)


def test_runs_with_and_without_poses(world: NeuralWorld) -> None:
    start = c2w_from_yaw_pitch(np.array([3.0, -0.5, 2.0]), 30.0, 0.0)
    world.reset("engine", seed=1, width=32, height=32, pose=start)
    world.reset("pad", seed=1, width=32, height=32)
    engine_pose = c2w_from_yaw_pitch(np.array([3.0, -0.5, 2.2]), 35.0, 5.0)
    out = world.step({"engine": Action(pose=engine_pose, fov_deg=90.0), "pad": Action(move=(0.0, 1.0))})
    assert np.array_equal(out["engine"].pose, engine_pose)
    for frame in out.values():
        assert frame.pixels.shape == (32, 32, 3) and frame.pixels.dtype == np.uint8
    assert not np.array_equal(out["engine"].pixels, out["pad"].pixels)


def test_pose_conditioning_changes_the_frame(checkpoint: Path) -> None:
    def first_frame(action: Action) -> np.ndarray:
        world = NeuralWorld(checkpoint)
        world.reset(0, seed=3, width=32, height=32, pose=np.eye(4))
        return world.step({0: action})[0].pixels

    turned = c2w_from_yaw_pitch(np.zeros(3), 40.0, 0.0)
    assert not np.array_equal(first_frame(Action(pose=np.eye(4))), first_frame(Action(pose=turned)))


def test_reset_from_a_start_image(world: NeuralWorld) -> None:
    sky_over_floor = np.zeros((48, 80, 4), np.uint8)  # RGBA and another aspect ratio: cropped and resized
    sky_over_floor[:24] = (90, 140, 230, 255)
    sky_over_floor[24:] = (120, 90, 60, 255)
    world.reset("img", seed=0, width=32, height=32, image=sky_over_floor)
    world.reset("dark", seed=0, width=32, height=32, image=np.zeros((32, 32, 3), np.uint8))
    out = world.step({"img": Action(), "dark": Action()})
    assert not np.array_equal(out["img"].pixels, out["dark"].pixels)  # the start image is the context
    with pytest.raises(ValueError, match="start image"):
        world.reset("bad", seed=0, width=32, height=32, image=np.zeros((32, 32), np.float32))
    with pytest.raises(KeyError):
        world.step({"bad": Action()})  # a failed reset leaves no half-made episode behind


def test_start_frames_are_picked_by_seed(world: NeuralWorld) -> None:
    world.reset("image", seed=2, width=32, height=32, image=np.zeros((32, 32, 3), np.uint8))
    world.reset("black", seed=2, width=32, height=32)  # start frame 2 % 2: the all-black one
    world.reset("white", seed=3, width=32, height=32)
    out = world.step({"image": Action(), "black": Action(), "white": Action()})
    assert np.abs(out["image"].pixels.astype(int) - out["black"].pixels.astype(int)).max() <= 1
    assert not np.array_equal(out["black"].pixels, out["white"].pixels)


def test_without_start_frames_the_model_makes_the_first_frame(tmp_path: Path) -> None:
    init_checkpoint(tmp_path / "bare", TINY)
    world = NeuralWorld(tmp_path / "bare")
    frames = []
    for _ in range(2):
        world.reset("e", seed=9, width=32, height=32)
        frames.append(world.step({"e": Action()})["e"].pixels)
    assert np.array_equal(*frames)


def test_dead_reckoning_follows_the_maze_kinematics(world: NeuralWorld) -> None:
    start = c2w_from_yaw_pitch(np.array([32.5, -0.5, 32.5]), 10.0, 0.0)
    world.reset("walker", seed=0, width=32, height=32, pose=start)
    rng = np.random.default_rng(0)
    state, open_floor = PlayerState.from_c2w(start), np.zeros((64, 64), dtype=bool)  # no wall within reach
    for i in range(12):
        action = Action(move=tuple(rng.uniform(-1.5, 1.5, 2)), look=tuple(rng.normal(0, 20, 2)), buttons=i % 2)
        pose = world.step({"walker": action})["walker"].pose
        state = step_kinematics(state, *stack_actions([action]), open_floor)
        assert np.allclose(pose, state.c2w()[0], atol=1e-9)
    assert np.isclose(yaw_pitch_from_c2w(walk(pose, Action(look=(0.0, 200.0))))[1], PITCH_LIMIT)


def test_close_frees_the_slot(world: NeuralWorld) -> None:
    world.reset("a", seed=0, width=32, height=32)
    world.reset("b", seed=0, width=32, height=32)
    world.close("a")
    world.close("never-opened")
    world.reset("c", seed=0, width=32, height=32)
    assert world.cache.capacity == 4 and world._episodes["c"].slot == 0
    with pytest.raises(KeyError, match="never reset"):
        world.step({"a": Action()})


def test_bfloat16_autocast(checkpoint: Path) -> None:
    fp32, bf16 = NeuralWorld(checkpoint), NeuralWorld(checkpoint, dtype="bfloat16")
    assert bf16.cache.k.dtype.itemsize == 2
    for w in (fp32, bf16):
        w.reset(0, seed=4, width=32, height=32)
    for _ in range(3):
        a, b = (w.step({0: Action(move=(0.0, 1.0))})[0].pixels.astype(float) for w in (fp32, bf16))
    assert np.abs(a - b).mean() < 2  # the same frames up to bf16 rounding
    with pytest.raises(ValueError, match="float16"):
        NeuralWorld(checkpoint, dtype="float16")  # CUDA only


def test_absurd_controller_values_reach_the_model_clipped(world: NeuralWorld) -> None:
    for key in ("absurd", "clipped"):
        world.reset(key, seed=6, width=32, height=32)
    out = world.step({"absurd": Action(move=(float("nan"), 1e308), look=(1e308, -float("inf"))),
                      "clipped": Action(move=(0.0, 1.0), look=(LOOK_LIMIT, -LOOK_LIMIT))})
    np.testing.assert_array_equal(out["absurd"].pixels, out["clipped"].pixels)

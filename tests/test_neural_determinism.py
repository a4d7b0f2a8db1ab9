"""A neural world's episodes are reproducible and independent: same seed and inputs -> same frames, whether an
episode steps alone or in a batch, and resetting one episode does not disturb another."""

from pathlib import Path

import numpy as np
import pytest

from runtime.neural.checkpoint import init_checkpoint
from runtime.neural.world import NeuralWorld
from runtime.world import BUTTON_RUN, Action

TINY = Path(__file__).resolve().parents[1] / "runtime" / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("determinism") / "tiny"
    init_checkpoint(path, TINY, seed=7)
    return path


def inputs(k: int, frames: int = 8) -> list[Action]:
    """A distinct input sequence per episode k, with and without engine poses."""
    rng = np.random.default_rng(k)
    out = []
    for i in range(frames):
        pose = None
        if k == 2 and i % 2:
            pose = np.eye(4)
            pose[:3, 3] = rng.normal(size=3)
        move = tuple(rng.uniform(-1, 1, 2))
        out.append(Action(move=move, look=tuple(rng.normal(0, 5, 2)), buttons=BUTTON_RUN * (i % 3 == 0), pose=pose))
    return out


def run_alone(checkpoint: Path, k: int, seed: int) -> list[np.ndarray]:
    world = NeuralWorld(checkpoint)
    world.reset(k, seed=seed, width=32, height=32)
    return [world.step({k: a})[k].pixels for a in inputs(k)]


def test_same_seed_and_inputs_give_identical_frames(checkpoint: Path) -> None:
    a, b = run_alone(checkpoint, 0, seed=11), run_alone(checkpoint, 0, seed=11)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    c = run_alone(checkpoint, 0, seed=12)
    assert not np.array_equal(a[-1], c[-1])


def test_batched_step_equals_stepping_each_episode_alone(checkpoint: Path) -> None:
    alone = {k: run_alone(checkpoint, k, seed=100 + k) for k in range(3)}
    world = NeuralWorld(checkpoint)
    for k in range(3):
        world.reset(k, seed=100 + k, width=32, height=32)
    sequences = {k: inputs(k) for k in range(3)}
    for i in range(8):
        out = world.step({k: sequences[k][i] for k in (2, 0, 1)})  # any key order
        for k in range(3):
            diff = np.abs(out[k].pixels.astype(int) - alone[k][i].astype(int))
            assert diff.max() <= 1, f"episode {k}, frame {i}"  # one uint8 step of rounding at most


def test_resetting_one_episode_leaves_the_others_alone(checkpoint: Path) -> None:
    alone = run_alone(checkpoint, 0, seed=5)
    world = NeuralWorld(checkpoint, max_episodes=1)  # the second episode makes the cache grow mid-episode
    world.reset(0, seed=5, width=32, height=32)
    world.reset(1, seed=6, width=32, height=32)
    for i, action in enumerate(inputs(0)):
        if i in (3, 5):
            world.reset(1, seed=i, width=32, height=32, image=np.full((20, 40, 3), 40 * i, np.uint8))
        if i == 6:
            world.close(1)
        batch = {0: action} if i >= 6 else {0: action, 1: Action(look=(10.0, 0.0))}
        diff = np.abs(world.step(batch)[0].pixels.astype(int) - alone[i].astype(int))
        assert diff.max() <= 1, f"frame {i}"

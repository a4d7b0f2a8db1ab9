"""Every model shipped in models/ loads by its --world name and makes frames: the files, their config and the
code that reads them agree (a model whose config grew a field, or whose weights are missing, fails here)."""

import numpy as np
import pytest

from bridge.server.worlds import SHIPPED, load_world
from runtime.world import Action


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_makes_frames(name: str) -> None:
    world = load_world(name, dtype="float32")
    world.reset(0, 7, 128, 128)
    frames = [world.step({0: Action(move=(0.0, 1.0))})[0].pixels for _ in range(3)]
    assert all(f.shape == (128, 128, 3) and f.dtype == np.uint8 for f in frames)
    assert all(f.std() > 5 for f in frames)  # a picture, not a flat fill
    if world.config.dit.memory:
        assert len(world.memory_of(0)) == 1  # the start frame (every 4th frame is kept)

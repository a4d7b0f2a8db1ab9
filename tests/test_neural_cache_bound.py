"""The KV cache is bounded: after thousands of frames it holds the same tensors, at the same addresses, with
the same number of bytes as after the first few, and every attention position stays within sinks + window."""

from pathlib import Path

import pytest

from runtime.neural.checkpoint import init_checkpoint
from runtime.neural.world import NeuralWorld
from runtime.world import Action

TINY = Path(__file__).resolve().parents[1] / "runtime" / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> NeuralWorld:
    path = tmp_path_factory.mktemp("bound") / "tiny"
    init_checkpoint(path, TINY)
    return NeuralWorld(path, steps=1)  # one denoising step: cheap frames, same cache traffic


def test_cache_stays_within_its_bound_for_thousands_of_frames(world: NeuralWorld) -> None:
    world.reset("long", seed=1, width=32, height=32)
    world.reset("short", seed=2, width=32, height=32)
    cfg = world.config.dit
    for _ in range(10):
        world.step({"long": Action(move=(0.0, 1.0)), "short": Action()})
    cache = world.cache
    shape, nbytes, addresses = cache.k.shape, cache.nbytes, (cache.k.data_ptr(), cache.v.data_ptr())
    assert shape == (cfg.depth, 4, cfg.sinks + cfg.window, world.dit.tokens, cfg.heads, world.dit.head_dim)

    limit = cfg.sinks + cfg.window
    for i in range(2000):
        frames = world.step({"long": Action(move=(0.0, 1.0), look=(3.0, 0.0))})
        if i % 500 == 0:
            past_pos, past_valid, pos = cache.positions([world._episodes["long"].slot])
            assert pos.item() == limit and past_valid.all() and past_pos.max().item() < limit
    assert frames["long"].pixels.shape == (32, 32, 3)
    assert cache.k.shape == shape and cache.nbytes == nbytes
    assert (cache.k.data_ptr(), cache.v.data_ptr()) == addresses  # written in place, never reallocated
    assert cache.length[world._episodes["long"].slot].item() == 1 + 10 + 2000  # the start frame included
    assert cache.length[world._episodes["short"].slot].item() == 1 + 10  # the other episode was left alone

"""The speed options of LingBot-World-Fast change nothing in the frames: `overlap` (a chunk's VAE decode on a
worker thread / second CUDA stream while its KV-cache pass runs) gives identical frames; `compile` (torch.compile
of the blocks' fixed-shape parts) gives the same frames to float round-off, and is validated."""

import shutil
import threading

import numpy as np
import pytest
import torch
from lingbot_tiny import HEIGHT, WIDTH, tiny_release

from runtime.lingbot.fast.world import LingBotWorld
from runtime.world import Action


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return tiny_release(tmp_path_factory.mktemp("lingbot") / "release")


def frames(world, steps=9 + 12 * 2 + 1):
    """A session whose input changes every step (so a chunk steered by the wrong input would show)."""
    world.reset("a", 11, WIDTH, HEIGHT)
    return np.stack([world.step({"a": Action(move=(float(np.sin(k / 3)), 1.0), look=(k % 5 - 2.0, 0.0))})["a"].pixels
                     for k in range(steps)])


def test_overlapped_decode_gives_identical_frames(release):
    plain = frames(LingBotWorld(release))
    world = LingBotWorld(release, overlap=True)
    threads = set()
    decode = world.vae.decode_chunk
    world.vae.decode_chunk = lambda z, stream: threads.add(threading.current_thread().name) or decode(z, stream)
    overlapped = frames(world)
    assert threads and all(name.startswith("lingbot-decode") for name in threads)  # it did run on the worker
    np.testing.assert_array_equal(overlapped, plain)
    assert world._episodes["a"].cache.chunks == 4


def test_speed_options_are_validated(release):
    with pytest.raises(ValueError, match="compile must be one of"):
        LingBotWorld(release, compile="fast")
    with pytest.raises(ValueError, match="CUDA"):
        LingBotWorld(release, compile="reduce-overhead")  # CUDA graphs on a CPU


def _compile_works() -> bool:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        return False
    try:
        f = torch.compile(lambda x: x * 2 + 1)
        return bool(torch.equal(f(torch.ones(3)), torch.full((3,), 3.0)))
    except Exception:  # any failure of the toolchain means: not here
        return False


@pytest.mark.skipif(not _compile_works(), reason="torch.compile (inductor + a C compiler) unavailable here")
def test_compiled_blocks_give_the_same_frames(release):
    # ~10-25 s on a 2-core CPU, most of it compiling; one compiled graph per piece serves every block
    plain = frames(LingBotWorld(release), steps=9 + 12 + 1)
    world = LingBotWorld(release, compile="default")
    assert world.dit.compiled == "default"
    compiled = frames(world, steps=9 + 12 + 1)
    diff = np.abs(compiled.astype(int) - plain.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.05, (diff.max(), diff.mean())

"""The start image and the prompt reach LingBot-World-Fast as the official pipeline prepares them: the image
normalised to [-1, 1], then resized bicubically with no clamp; the prompt cleaned as Wan's tokenizer wrapper
does (ftfy when importable, HTML entities unescaped twice, whitespace collapsed)."""

import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lingbot_tiny import HEIGHT, WIDTH, tiny_release

from runtime.lingbot.fast.text import clean_prompt
from runtime.lingbot.fast.world import LingBotWorld


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return LingBotWorld(tiny_release(tmp_path_factory.mktemp("lingbot") / "release"))


def test_start_image_is_resized_like_the_official_pipeline_without_a_clamp(world):
    # a hard black/white checkerboard upscaled bicubically overshoots past -1 and 1 at every edge
    cells = (np.indices((4, 8)).sum(0) % 2 * 255).astype(np.uint8)
    image = np.repeat(np.repeat(cells, 4, 0), 4, 1)[..., None].repeat(3, 2)  # (16, 32, 3), the frame's aspect
    x = world._image(image)
    assert x.shape == (1, 3, HEIGHT, WIDTH)
    assert x.min() < -1.05 and x.max() > 1.05  # not clamped
    official = torch.from_numpy(image).permute(2, 0, 1).float().div(255).sub(0.5).div(0.5)[None]
    official = F.interpolate(official, size=(HEIGHT, WIDTH), mode="bicubic")
    torch.testing.assert_close(x, official, atol=1e-6, rtol=0)


def test_prompt_cleaning():
    assert clean_prompt("  a &amp;amp; b\tthe&nbsp;city\n\n") == "a & b the city"  # twice-escaped &, nbsp
    assert clean_prompt("&lt;red&gt; &quot;castle&quot;") == '<red> "castle"'
    assert clean_prompt("a   walk") == "a walk"


def test_prompt_cleaning_runs_ftfy_when_it_is_importable(monkeypatch):
    fake = types.ModuleType("ftfy")
    fake.fix_text = lambda text: text.replace("â€™", "'")  # what ftfy does to mis-decoded UTF-8
    monkeypatch.setitem(sys.modules, "ftfy", fake)
    assert clean_prompt("the castleâ€™s  gate") == "the castle's gate"
    monkeypatch.setitem(sys.modules, "ftfy", None)  # not installed: the rest of the cleaning still runs
    assert clean_prompt("the castleâ€™s &amp;amp; gate") == "the castleâ€™s & gate"


def test_the_tokenizer_sees_the_cleaned_prompt(world):
    tokenize = world.text.tokenizer
    assert tokenize("the&nbsp;old &amp;amp;city") == tokenize("the old & city")

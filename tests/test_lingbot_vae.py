"""The Wan2.1 VAE decodes chunk by chunk (carrying its causal convolution caches) to the same video as decoding
everything at once, and encodes in pieces to the same latents."""

import pytest
import torch

from runtime.lingbot.fast.vae import WanVAE


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    model = WanVAE(dim=8).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.2)  # every weight matters, biases included
    return model


@torch.inference_mode()
def test_streaming_decode_equals_whole_video_decode(vae):
    z = torch.randn(1, 16, 9, 4, 8)
    whole = vae.decode(z)
    assert whole.shape == (1, 3, 1 + 4 * 8, 32, 64)  # latent frame 0 -> 1 frame, every later one -> 4
    stream = {}
    chunks = [vae.decode_chunk(z[:, :, a:b], stream) for a, b in ((0, 3), (3, 6), (6, 9))]
    assert [c.shape[2] for c in chunks] == [9, 12, 12]  # the world's chunks: 9 frames, then 12 each
    torch.testing.assert_close(torch.cat(chunks, dim=2), whole, atol=1e-5, rtol=1e-5)
    one_by_one, stream = [], {}
    for i in range(9):  # how Wan's own decode loop feeds it
        one_by_one.append(vae.decode_chunk(z[:, :, i:i + 1], stream))
    torch.testing.assert_close(torch.cat(one_by_one, dim=2), whole, atol=1e-5, rtol=1e-5)


@torch.inference_mode()
def test_streaming_decode_depends_on_the_past(vae):
    # the carried state matters: the same chunk after different histories decodes differently
    z = torch.randn(1, 16, 6, 4, 8)
    a, b = {}, {}
    vae.decode_chunk(z[:, :, :3], a)
    vae.decode_chunk(-z[:, :, :3], b)
    assert not torch.allclose(vae.decode_chunk(z[:, :, 3:], a), vae.decode_chunk(z[:, :, 3:], b), atol=1e-4)


@torch.inference_mode()
def test_streaming_encode_equals_whole_video_encode(vae):
    video = torch.rand(1, 3, 1 + 4 * 5, 32, 64) * 2 - 1
    whole = vae.encode(video)
    assert whole.shape == (1, 16, 6, 4, 8)
    stream = {}
    parts = [vae.encode_chunk(video[:, :, a:b], stream) for a, b in ((0, 9), (9, 21))]
    torch.testing.assert_close(torch.cat(parts, dim=2), whole, atol=1e-5, rtol=1e-5)

"""Latent autoencoder (runtime/neural/autoencoder.py): shapes for both downsampling factors, pixel conversions."""

import pytest
import torch

from runtime.neural.autoencoder import Autoencoder, AutoencoderConfig, from_uint8, to_uint8


@pytest.mark.parametrize(("downsample", "channels"), [(8, [8, 16, 16, 32]), (16, [8, 8, 16, 16, 32])])
def test_frames_and_latents_have_the_configured_shapes(downsample: int, channels: list[int]) -> None:
    ae = Autoencoder(AutoencoderConfig(downsample=downsample, latent_channels=6, channels=channels, latent_scale=0.5))
    frames = torch.rand(2, 3, 64, 96) * 2 - 1
    with torch.no_grad():
        z = ae.encode(frames)
        assert z.shape == (2, 6, 64 // downsample, 96 // downsample)
        assert torch.allclose(z, ae.encoder(frames) * 0.5)  # transformer latents are scaled
        assert ae.decode(z).shape == frames.shape


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="downsample must be 8 or 16"):
        AutoencoderConfig(downsample=4, channels=[8, 8, 8])
    with pytest.raises(ValueError, match="needs 4 widths"):
        AutoencoderConfig(downsample=8, channels=[8, 8])


def test_pixel_conversions() -> None:
    pixels = torch.randint(0, 256, (2, 3, 5, 7), dtype=torch.uint8)
    assert torch.equal(to_uint8(from_uint8(pixels)), pixels.permute(0, 2, 3, 1))  # (B, H, W, 3) for Frame
    assert to_uint8(torch.full((1, 3, 1, 1), 7.0)).flatten().tolist() == [255, 255, 255]  # clamped

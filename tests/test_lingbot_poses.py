"""Engine camera poses (Unity, Godot) reach LingBot-World-Fast in its convention: OpenCV camera-to-world
(bridge/protocol/poses.py, the one place conventions meet), frame-to-frame motion, per-pixel rays from the engine's
field of view, folded into tokens the way the released model reads them."""

import math

import numpy as np
import torch

from bridge.protocol.poses import to_canonical
from runtime.camera import intrinsics
from runtime.lingbot.fast.control import TranslationScale, control_tokens, pixel_rays, relative_motion, scene_scale

YAW_90 = (0.0, math.sin(math.pi / 4), 0.0, math.cos(math.pi / 4))  # +90 degrees about the engine's up axis


def test_unity_turn_right_and_move():
    start = to_canonical("unity", (0, 0, 0), (0, 0, 0, 1))
    turned = to_canonical("unity", (1, 2, 3), YAW_90)  # Unity is left-handed: +90 about Y turns right
    np.testing.assert_allclose(start, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(turned[:3, 2], [1, 0, 0], atol=1e-12)  # looks east (canonical +x)
    np.testing.assert_allclose(turned[:3, 1], [0, 1, 0], atol=1e-12)  # image down stays world down
    np.testing.assert_allclose(turned[:3, 3], [1, -2, 3], atol=1e-12)  # Y up -> y down
    motion = relative_motion(None, np.stack([start, turned]))
    np.testing.assert_allclose(motion[0], np.eye(4), atol=1e-12)  # the first latent frame: identity
    np.testing.assert_allclose(motion[1], turned, atol=1e-12)
    scaled = TranslationScale()(motion)
    np.testing.assert_allclose(scaled[1, :3, 3], np.array([1, -2, 3]) / math.sqrt(14), atol=1e-12)


def test_godot_turn_left_and_walk_forward():
    start = to_canonical("godot", (0, 0, 0), (0, 0, 0, 1))
    turned = to_canonical("godot", (0, 0, 0), YAW_90)  # right-handed, -Z forward: +90 about Y turns left
    np.testing.assert_allclose(turned[:3, 2], [-1, 0, 0], atol=1e-12)  # looks west
    walked = to_canonical("godot", (-2, 0, 0), YAW_90)  # two units along its new forward (Godot -X)
    motion = relative_motion(start, np.stack([turned, walked]))
    np.testing.assert_allclose(motion[1][:3, :3], np.eye(3), atol=1e-12)  # no turn between these two
    np.testing.assert_allclose(motion[1][:3, 3], [0, 0, 2], atol=1e-12)  # 2 units along the camera's +z
    np.testing.assert_allclose(TranslationScale()(motion)[1][:3, 3], [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(to_canonical("godot", (1, 2, 3), (0, 0, 0, 1))[:3, 3], [1, -2, -3])


def test_rays_from_the_engine_field_of_view():
    width, height = 64, 32
    K = np.array([intrinsics(width, height, 90.0)])  # vertical fov 90: fy = height / 2
    np.testing.assert_allclose(K[0], [16, 16, 32, 16])
    turned = to_canonical("unity", (0.5, 0, 0), YAW_90)[None]
    o, d = pixel_rays(torch.tensor(turned), torch.tensor(K), height, width)  # (1, H, W, 3)
    u, v = 10, 3
    cam = np.array([(u + 0.5 - 32) / 16, (v + 0.5 - 16) / 16, 1.0])
    np.testing.assert_allclose(d[0, v, u].numpy(), turned[0, :3, :3] @ (cam / np.linalg.norm(cam)), atol=1e-6)
    np.testing.assert_allclose(o[0, v, u].numpy(), [0.5, 0, 0])
    # the top-right corner ray points up (-y) and, turned right, towards east and north
    assert d[0, 0, -1, 1] < 0 and d[0, 0, -1, 0] > 0 and d[0, 0, -1, 2] < 0


def test_control_tokens_layout():
    # token features ordered (channel, pixel row, pixel column, patch frame, patch row, patch column)
    motion = np.tile(np.eye(4), (3, 1, 1))
    motion[:, :3, 3] = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    K = np.tile(intrinsics(32, 16, 60.0), (3, 1))
    tokens = control_tokens(motion, K, 16, 32)  # latent 2x4 -> 1x2 tokens per frame
    assert tokens.shape == (1, 3 * 2, 6 * 64 * 4)
    f1 = tokens[0, 2].view(6, 8, 8, 1, 2, 2)  # frame 1, token 0
    assert torch.all(f1[0] == 4) and torch.all(f1[2] == 6)  # origin channels are the translation
    o, d = pixel_rays(torch.tensor(motion), torch.tensor(K), 16, 32)
    # channel 3 (direction x) of pixel (row 5, col 9): latent cell (0, 1) = token 0's patch column 1, offset (5, 1)
    assert f1[3, 5, 1, 0, 0, 1] == d[1, 5, 9, 0]
    act = control_tokens(motion, K, 16, 32, wasd=np.array([[1, 0, 0, 1]] * 3))
    assert act.shape == (1, 6, 7 * 64 * 4)
    a = act[0, 0].view(7, 8, 8, 1, 2, 2)
    assert torch.all(a[3] == 1) and torch.all(a[4] == 0) and torch.all(a[6] == 1)  # W, A, S, D after 3 ray dirs


# A camera somewhere in the scene, turned: inv(P) @ P is ~4e-16 off the identity in float64.
STILL_POSE = to_canonical("unity", (3.7, 1.2, -5.3), (0.1, 0.3, 0.05, 0.948))


def test_a_still_camera_gets_zero_translation():
    motion = relative_motion(None, np.stack([STILL_POSE] * 3))
    assert np.abs(motion[1:, :3, 3]).max() > 0  # the round-off is there...
    scale = TranslationScale()
    scaled = scale(motion, scene_scale(STILL_POSE))
    assert np.all(scaled[:, :3, 3] == 0)  # ...and is no motion: not a unit jump in a round-off direction
    assert scale.largest == 0.0
    # still again later, after real motion: zero, and the real step still scales to one unit
    walked = STILL_POSE @ np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0.25], [0, 0, 0, 1.0]])
    moved = scale(relative_motion(STILL_POSE, np.stack([walked, walked])), scene_scale(STILL_POSE, walked))
    np.testing.assert_allclose(moved[0, :3, 3], [0, 0, 1], atol=1e-12)
    assert np.all(moved[1, :3, 3] == 0) and abs(scale.largest - 0.25) < 1e-12


def test_still_means_relative_to_the_scene_scale():
    far = STILL_POSE.copy()
    far[:3, 3] *= 1e4  # 60 km from the origin: round-off of ~1e-12
    motion = relative_motion(far, np.stack([far]))
    assert np.all(TranslationScale()(motion, scene_scale(far))[:, :3, 3] == 0)
    assert scene_scale(far) > 6e4
    step = np.eye(4)
    step[2, 3] = 0.1  # 10 cm is motion there; 1 cm is below 1e-6 of the scene (float32 engines resolve ~4 mm)
    assert TranslationScale()(relative_motion(far, np.stack([far @ step])), scene_scale(far))[0, 2, 3] == 1.0
    step[2, 3] = 0.01
    assert TranslationScale()(relative_motion(far, np.stack([far @ step])), scene_scale(far))[0, 2, 3] == 0.0
    near = relative_motion(None, np.stack([np.eye(4), step]))  # near the origin the floor of 1 unit applies
    assert TranslationScale()(near, scene_scale(np.eye(4), step))[1, 2, 3] == 1.0


def test_an_engine_camera_that_never_moves_gives_zero_translation_end_to_end(tmp_path, monkeypatch):
    # LingBotWorld with engine poses that never change: every chunk's control must say "no translation"
    from lingbot_tiny import HEIGHT, WIDTH, tiny_release

    import runtime.lingbot.fast.world as world_module
    from runtime.world import Action

    seen = []
    real = world_module.control_tokens

    def spy(motion, *args, **kwargs):
        seen.append(np.array(motion))
        return real(motion, *args, **kwargs)

    monkeypatch.setattr(world_module, "control_tokens", spy)
    world = world_module.LingBotWorld(tiny_release(tmp_path / "release"))
    world.reset("a", 0, WIDTH, HEIGHT, pose=STILL_POSE)
    for _ in range(9 + 12 + 1):  # three chunks
        world.step({"a": Action(pose=STILL_POSE.copy())})
    assert len(seen) == 3
    for motion in seen:
        assert np.all(motion[:, :3, 3] == 0), motion[:, :3, 3]
        np.testing.assert_allclose(motion[:, :3, :3], np.tile(np.eye(3), (3, 1, 1)), atol=1e-12)

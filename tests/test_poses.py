"""Engine poses -> canonical OpenCV camera-to-world, with rotations whose answer is known by hand."""

import math

import numpy as np
import pytest

from bridge.protocol.poses import from_canonical, matrix_to_quat, quat_to_matrix, to_canonical
from runtime.camera import c2w_from_yaw_pitch, yaw_pitch_from_c2w


def axis_angle(axis, deg):
    """Quaternion (x, y, z, w) for a rotation of `deg` about `axis` (right-hand rule in the engine's own axes)."""
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    h = math.radians(deg) / 2
    return [*(a * math.sin(h)), math.cos(h)]


def forward(c2w):
    return c2w[:3, 2]


def test_identity_looks_north_in_both_engines():
    for engine in ("unity", "godot", "opencv"):
        m = to_canonical(engine, [0, 0, 0], [0, 0, 0, 1])
        np.testing.assert_allclose(m, np.eye(4), atol=1e-12)


def test_positions():
    np.testing.assert_allclose(to_canonical("unity", [1, 2, 3], [0, 0, 0, 1])[:3, 3], [1, -2, 3])
    np.testing.assert_allclose(to_canonical("godot", [1, 2, 3], [0, 0, 0, 1])[:3, 3], [1, -2, -3])
    np.testing.assert_allclose(to_canonical("opencv", [1, 2, 3], [0, 0, 0, 1])[:3, 3], [1, 2, 3])


def test_unity_yaw_right():
    # Unity: +90 about Y turns +Z (forward) to +X: a right turn, which is canonical yaw +90 (east).
    m = to_canonical("unity", [0, 0, 0], axis_angle([0, 1, 0], 90))
    np.testing.assert_allclose(m, c2w_from_yaw_pitch(np.zeros(3), 90, 0), atol=1e-12)


def test_godot_yaw_left():
    # Godot (right-handed): +90 about Y turns -Z (forward) to -X: a left turn, canonical yaw -90 (west).
    m = to_canonical("godot", [0, 0, 0], axis_angle([0, 1, 0], 90))
    np.testing.assert_allclose(m, c2w_from_yaw_pitch(np.zeros(3), -90, 0), atol=1e-12)


def test_pitch_up_in_both_engines():
    # Unity: -30 about X tilts forward up. Godot: +30 about X tilts -Z up.
    up = c2w_from_yaw_pitch(np.zeros(3), 0, 30)
    np.testing.assert_allclose(to_canonical("unity", [0, 0, 0], axis_angle([1, 0, 0], -30)), up, atol=1e-12)
    np.testing.assert_allclose(to_canonical("godot", [0, 0, 0], axis_angle([1, 0, 0], 30)), up, atol=1e-12)
    assert forward(up)[1] < 0  # looking up = towards -y in the y-down world


def test_same_scene_same_canonical_pose():
    # A camera 2 m up and 5 m ahead, turned 45 degrees right: the same placement in either engine.
    u = to_canonical("unity", [0, 2, 5], axis_angle([0, 1, 0], 45))
    g = to_canonical("godot", [0, 2, -5], axis_angle([0, 1, 0], -45))
    np.testing.assert_allclose(u, g, atol=1e-12)
    assert yaw_pitch_from_c2w(u) == pytest.approx((45, 0))


@pytest.mark.parametrize("engine", ["unity", "godot", "opencv"])
def test_round_trip(engine):
    rng = np.random.default_rng(0)
    for _ in range(50):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        p = rng.normal(size=3) * 10
        m = to_canonical(engine, p, q)
        assert np.linalg.det(m[:3, :3]) == pytest.approx(1.0)  # a proper rotation, never a mirror
        p2, q2 = from_canonical(engine, m)
        np.testing.assert_allclose(p2, p, atol=1e-9)
        np.testing.assert_allclose(quat_to_matrix(q2), quat_to_matrix(q), atol=1e-9)


def test_matrix_quat_inverse():
    rng = np.random.default_rng(1)
    for _ in range(100):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        q = -q if q[3] < 0 else q
        np.testing.assert_allclose(matrix_to_quat(quat_to_matrix(q)), q, atol=1e-9)

"""The procedural maze: level generation, kinematics and collisions, the renderer, and MazeWorld."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest

from runtime.camera import c2w_from_yaw_pitch
from runtime.maze.level import LANDMARK_KINDS, N_BRICK, MazeLevel
from runtime.maze.render import FLOOR, SKY, WALL, WALL_TOP, MazeRenderer
from runtime.maze.world import (
    PLAYER_RADIUS,
    MazeWorld,
    PlayerState,
    move_with_collision,
    spawn_batch,
    step_kinematics,
)
from runtime.motion import EYE_Y, PITCH_LIMIT, TICK, WALK_SPEED
from runtime.world import BUTTON_RUN, Action


@pytest.fixture(scope="module")
def world() -> MazeWorld:
    return MazeWorld(level_seed=0)


@pytest.fixture(scope="module")
def level(world: MazeWorld) -> MazeLevel:
    return world.level


@pytest.fixture(scope="module")
def renderer(world: MazeWorld) -> MazeRenderer:
    return world.renderer


def eye(x: float, z: float) -> np.ndarray:
    return np.array([x, EYE_Y, z])


def wall_distance(solid: np.ndarray, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """(B,) Euclidean distance from each point to the nearest solid cell."""
    cells = np.argwhere(solid).astype(np.float64)  # (S, 2)
    dx = np.maximum(np.maximum(cells[None, :, 0] - x[:, None], 0.0), x[:, None] - cells[None, :, 0] - 1.0)
    dz = np.maximum(np.maximum(cells[None, :, 1] - z[:, None], 0.0), z[:, None] - cells[None, :, 1] - 1.0)
    return np.hypot(dx, dz).min(axis=1)


def open_room(n: int = 7) -> np.ndarray:
    """An n x n room: border walls and one block in the middle."""
    solid = np.zeros((n, n), dtype=bool)
    solid[0, :] = solid[-1, :] = solid[:, 0] = solid[:, -1] = True
    solid[n // 2, n // 2] = True
    return solid


def one(x: float, z: float, yaw: float = 0.0, pitch: float = 0.0) -> PlayerState:
    a = np.array
    return PlayerState(a([x]), a([EYE_Y]), a([z]), a([yaw]), a([pitch]))


# -- level -------------------------------------------------------------------------------------------------------


def test_level_is_a_function_of_its_seed(level: MazeLevel) -> None:
    again = MazeLevel(0)
    assert np.array_equal(again.solid, level.solid) and np.array_equal(again.material, level.material)
    assert again.landmarks == level.landmarks
    other = MazeLevel(1)
    assert not np.array_equal(other.solid, level.solid)


@pytest.mark.parametrize("seed,size", [(0, 17), (1, 17), (2, 16), (3, 25), (-5, 9)])
def test_level_is_connected_with_loops_rooms_and_landmarks(seed: int, size: int) -> None:
    lvl = MazeLevel(seed, size)
    s = lvl.solid
    assert s[0].all() and s[-1].all() and s[:, 0].all() and s[:, -1].all()
    free = lvl.free_cells
    # Every free cell is reachable from every other.
    seen, queue = {tuple(free[0])}, deque([tuple(free[0])])
    while queue:
        i, j = queue.popleft()
        for a, b in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)):
            if not s[a, b] and (a, b) not in seen:
                seen.add((a, b))
                queue.append((a, b))
    assert len(seen) == len(free)
    # Not a tree: independent cycles = edges - vertices + 1 (rooms alone add many; openings add long ones).
    edges = int((~s[:-1] & ~s[1:]).sum() + (~s[:, :-1] & ~s[:, 1:]).sum())
    assert edges - len(free) + 1 >= 3
    assert len(lvl.rooms) >= 2
    assert len(lvl.landmarks) >= 4 and len({lm.kind for lm in lvl.landmarks}) == len(lvl.landmarks)
    for lm in lvl.landmarks:
        i, j = lm.cell
        assert s[i, j] and lvl.material[i, j] == lm.material >= N_BRICK
        assert lm.kind == LANDMARK_KINDS[lm.material - N_BRICK]
        assert any(lvl.is_free(i + di + 0.5, j + dj + 0.5) for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)))


# -- kinematics --------------------------------------------------------------------------------------------------


def test_walking_into_a_wall_stops_at_the_radius() -> None:
    solid = open_room()
    state = one(1.5, 1.5, yaw=90.0)  # facing east, the border wall's face is at x = 6
    for k in range(100):
        state = step_kinematics(state, [[0.0, 1.0]], [[0.0, 0.0]], [BUTTON_RUN if k % 2 else 0], solid)
        assert not solid[int(state.x[0]), int(state.z[0])]
        assert wall_distance(solid, state.x, state.z)[0] >= PLAYER_RADIUS - 1e-9
    assert state.x[0] == pytest.approx(6.0 - PLAYER_RADIUS, abs=1e-5)
    assert state.z[0] == pytest.approx(1.5)


def test_walking_diagonally_into_a_wall_slides_along_it() -> None:
    solid = open_room()
    state = one(5.5, 1.5, yaw=45.0)
    for _ in range(20):
        state = step_kinematics(state, [[0.0, 1.0]], [[0.0, 0.0]], [0], solid)
    assert state.x[0] == pytest.approx(6.0 - PLAYER_RADIUS, abs=1e-5)  # blocked along x ...
    assert state.z[0] > 1.5 + 0.9 * 20 * WALK_SPEED * TICK * math.sin(math.radians(45))  # ... still moving north


def test_long_moves_never_tunnel_and_players_are_independent() -> None:
    solid = open_room(9)  # the middle block is cell (4, 4)
    x, z = move_with_collision([1.5, 1.5], [4.5, 1.5], [6.0, 0.1], [0.0, 0.0], solid)
    assert x[0] == pytest.approx(4.0 - PLAYER_RADIUS, abs=1e-5) and z[0] == 4.5
    alone, _ = move_with_collision([1.5], [1.5], [0.1], [0.0], solid)
    assert x[1] == alone[0]  # bit-identical whatever else is in the batch


def test_speeds_turning_and_pitch_limit() -> None:
    solid = open_room(20)
    start = one(2.5, 2.5)
    walk = step_kinematics(start, [[0.0, 1.0]], [[0.0, 0.0]], [0], solid)
    run = step_kinematics(start, [[0.0, 1.0]], [[0.0, 0.0]], [BUTTON_RUN], solid)
    strafe = step_kinematics(start, [[1.0, 0.0]], [[0.0, 0.0]], [0], solid)
    assert walk.z[0] - 2.5 == pytest.approx(WALK_SPEED * TICK)
    assert run.z[0] - 2.5 == pytest.approx(2 * WALK_SPEED * TICK)
    assert strafe.x[0] - 2.5 == pytest.approx(WALK_SPEED * TICK)  # yaw 0 faces north: right is east
    turned = step_kinematics(start, [[0.0, 0.0]], [[270.0, 500.0]], [0], solid)
    assert turned.yaw[0] == pytest.approx(-90.0) and turned.pitch[0] == PITCH_LIMIT


def test_random_walks_never_enter_or_touch_walls(level: MazeLevel) -> None:
    rng = np.random.default_rng(0)
    state = spawn_batch(level, range(256))
    assert wall_distance(level.solid, state.x, state.z).min() >= PLAYER_RADIUS
    for _ in range(150):
        move = rng.uniform(-1.5, 1.5, (256, 2))
        state = step_kinematics(state, move, rng.normal(0, 20, (256, 2)), rng.integers(0, 2, 256), level.solid)
        assert level.is_free(state.x, state.z).all()
        assert wall_distance(level.solid, state.x, state.z).min() >= PLAYER_RADIUS - 1e-9


def test_batched_pose_matches_camera_module() -> None:
    state = PlayerState(*(np.array(v) for v in ([1.0, 2.5], [-0.5, -0.7], [3.0, 4.5], [0.0, -123.0], [10.0, -45.0])))
    for b in range(2):
        pos = np.array([state.x[b], state.y[b], state.z[b]])
        ref = c2w_from_yaw_pitch(pos, state.yaw[b], state.pitch[b])
        np.testing.assert_allclose(state.c2w()[b], ref, atol=1e-12)
    back = PlayerState.from_c2w(state.c2w())
    np.testing.assert_allclose(back.yaw, state.yaw, atol=1e-9)
    np.testing.assert_allclose(back.pitch, state.pitch, atol=1e-9)


# -- renderer ----------------------------------------------------------------------------------------------------


def facing_wall(level: MazeLevel, gap: float) -> np.ndarray:
    """A corridor pose `gap` units in front of a plain brick wall to the north, looking at it."""
    for i, j in level.free_cells:
        if level.solid[i, j + 1] and 0 <= level.material[i, j + 1] < N_BRICK and level.room_id[i, j] < 0:
            return c2w_from_yaw_pitch(eye(i + 0.5, j + 1 - gap), 0.0, 0.0)
    raise AssertionError("no free cell with a brick wall to its north")


def test_wall_point_blank(level: MazeLevel, renderer: MazeRenderer) -> None:
    pose = facing_wall(level, 0.3)
    img = renderer.render(pose, 64, 64, 60.0)
    surf = renderer.surfaces(pose, 64, 64, 60.0)
    assert surf.kind[32, 32] == WALL and surf.depth[32, 32] == pytest.approx(0.3, abs=0.01)
    assert (surf.kind == WALL).all()  # a 60 degree view 0.3 from a wall sees nothing else
    r, g, b = img[32, 32].astype(int)
    assert r > b  # brick, not sky or fog
    assert img.reshape(-1, 3).std(axis=0).max() > 5  # textured, not a flat colour


def test_pitch_down_sees_floor_and_up_sees_sky(world: MazeWorld, level: MazeLevel) -> None:
    i, j = next((i, j) for i, j in level.free_cells if level.room_id[i, j] < 0)
    world.reset("look", 0, 64, 64, pose=c2w_from_yaw_pitch(eye(i + 0.5, j + 0.5), 0.0, 0.0))
    down = world.step({"look": Action(look=(0.0, -90.0))})["look"]
    assert world.state_of("look").pitch[0] == -PITCH_LIMIT
    kinds = world.renderer.surfaces(down.pose, 64, 64, world.fov_deg).kind
    assert (kinds[-8:] == FLOOR).all()
    bottom = down.pixels[-8:].reshape(-1, 3).mean(axis=0)
    assert bottom[2] < bottom[0] + 5  # floor tiles are warm or grey, never sky blue
    up = world.step({"look": Action(look=(0.0, 180.0))})["look"]
    kinds = world.renderer.surfaces(up.pose, 64, 64, world.fov_deg).kind
    assert (kinds[:8] == SKY).all()
    top = up.pixels[:8].reshape(-1, 3).mean(axis=0)
    assert top[2] > top[0] + 15  # blue sky (clouds are white, never red)
    world.close("look")


def test_landmark_is_visible(level: MazeLevel, renderer: MazeRenderer) -> None:
    seen = 0
    for lm in level.landmarks:
        i, j = lm.cell
        for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            if level.is_free(i + di + 0.5, j + dj + 0.5) and level.is_free(i + 2 * di + 0.5, j + 2 * dj + 0.5):
                yaw = math.degrees(math.atan2(-di, -dj))
                pose = c2w_from_yaw_pitch(eye(i + 0.5 + 1.6 * di, j + 0.5 + 1.6 * dj), yaw, 0.0)
                surf = renderer.surfaces(pose, 48, 48, 60.0)
                assert surf.material[24, 24] == lm.material
                seen += 1
                break
    assert seen >= 3


def test_fast_path_agrees_with_exact_tracer(level: MazeLevel, renderer: MazeRenderer) -> None:
    rng = np.random.default_rng(1)
    cells = level.free_cells
    for k in range(12):
        i, j = cells[rng.integers(len(cells))]
        pos = np.array([i + rng.uniform(0.2, 0.8), -rng.uniform(0.1, 0.9), j + rng.uniform(0.2, 0.8)])
        pose = c2w_from_yaw_pitch(pos, rng.uniform(-180, 180), rng.uniform(-85, 85))
        if k % 2:  # roll about the optical axis
            a = rng.uniform(-1.0, 1.0)
            pose[:3, :2] = pose[:3, :2] @ np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
        fast = renderer.render(pose, 48, 40, 70.0)
        # Nearly every pixel matches the per-pixel tracer's render; only face edges may differ, by the angle-bin
        # quantisation (a fraction of a pixel).
        slow = renderer._render_reference(pose, renderer.rays(48, 40, 70.0)).reshape(40, 48, 3)
        differ = np.abs(fast.astype(int) - slow.astype(int)).max(axis=-1) > 40
        assert differ.mean() < 0.005, (k, differ.mean())


def test_render_batch_equals_render(level: MazeLevel, renderer: MazeRenderer) -> None:
    rng = np.random.default_rng(2)
    cells = level.free_cells[rng.integers(len(level.free_cells), size=5)]
    poses = [c2w_from_yaw_pitch(eye(i + 0.5, j + 0.5), rng.uniform(-180, 180), rng.uniform(-60, 60)) for i, j in cells]
    poses.append(c2w_from_yaw_pitch(np.array([8.0, -6.0, -4.0]), 0.0, -45.0))  # above the walls: exact tracer
    batch = renderer.render_batch(np.stack(poses), 37, 29, 75.0)
    assert batch.shape == (6, 29, 37, 3) and batch.dtype == np.uint8
    for b, pose in enumerate(poses):
        assert np.array_equal(batch[b], renderer.render(pose, 37, 29, 75.0))


def test_views_from_above_and_outside(level: MazeLevel, renderer: MazeRenderer) -> None:
    n = level.size
    above = c2w_from_yaw_pitch(np.array([n / 2, -3.0, n / 2]), 30.0, -80.0)
    surf = renderer.surfaces(above, 64, 48, 70.0)
    assert (surf.kind == WALL_TOP).any() and (surf.kind == FLOOR).any()
    img = renderer.render(above, 64, 48, 70.0)
    assert img.reshape(-1, 3).std(axis=0).max() > 10
    outside = c2w_from_yaw_pitch(np.array([-3.0, -0.5, n / 2]), 90.0, 0.0)  # west of the level, looking in
    assert (renderer.surfaces(outside, 32, 32, 60.0).kind[16] == WALL).any()
    assert renderer.render(outside, 32, 32, 60.0).shape == (32, 32, 3)


def test_bad_pose_is_rejected(renderer: MazeRenderer) -> None:
    with pytest.raises(ValueError):
        renderer.render_batch(np.eye(4), 16, 16, 60.0)
    with pytest.raises(ValueError):
        renderer.render(np.full((4, 4), np.nan), 16, 16, 60.0)


# -- MazeWorld ---------------------------------------------------------------------------------------------------


SCRIPT = [Action(move=(0.0, 1.0), look=(4.0, 0.0))] * 6 + [
    Action(move=(0.5, 1.0), look=(-3.0, 2.0), buttons=BUTTON_RUN),
    Action(move=(-1.0, 0.0), look=(0.0, -5.0)),
] * 5


def play(world: MazeWorld, seed: int) -> list[np.ndarray]:
    world.reset("p", seed, 40, 32)
    frames = [world.step({"p": a})["p"].pixels for a in SCRIPT]
    world.close("p")
    return frames


def test_same_seed_and_actions_give_identical_frames(world: MazeWorld) -> None:
    a, b = play(world, 7), play(MazeWorld(level_seed=0), 7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, play(world, 8), strict=True))
    world.reset("s1", 1, 32, 32)
    world.reset("s2", 2, 32, 32)
    assert not np.allclose(world.pose_of("s1"), world.pose_of("s2"))
    world.close("s1")
    world.close("s2")


def test_frame_size_is_clamped(world: MazeWorld) -> None:
    assert world.frame_size(640, 480) == (640, 480)
    assert world.frame_size(1, 5000) == (16, 1024)
    world.reset("tiny", 0, 2, 3)
    assert world.step({"tiny": Action()})["tiny"].pixels.shape == (16, 16, 3)
    world.close("tiny")


def test_yaw_90_matches_camera_pose(world: MazeWorld, level: MazeLevel) -> None:
    i, j = level.free_cells[len(level.free_cells) // 2]
    start = c2w_from_yaw_pitch(eye(i + 0.5, j + 0.5), 0.0, 0.0)
    world.reset("turn", 0, 48, 48, pose=start)
    frame = world.step({"turn": Action(look=(90.0, 0.0))})["turn"]
    expect = c2w_from_yaw_pitch(eye(i + 0.5, j + 0.5), 90.0, 0.0)
    assert np.array_equal(frame.pose, expect)
    assert np.array_equal(frame.pixels, world.renderer.render(expect, 48, 48, world.fov_deg))
    world.close("turn")


def test_pose_override_places_camera_and_controller_continues(world: MazeWorld, level: MazeLevel) -> None:
    i, j = level.free_cells[3]
    world.reset("pose", 0, 32, 32)
    pose = c2w_from_yaw_pitch(np.array([i + 0.5, -0.3, j + 0.5]), 90.0, 10.0)
    frame = world.step({"pose": Action(move=(1.0, 1.0), look=(45.0, 0.0), pose=pose, fov_deg=90.0)})["pose"]
    assert np.array_equal(frame.pose, pose) and np.array_equal(world.pose_of("pose"), pose)
    assert np.array_equal(frame.pixels, world.renderer.render(pose, 32, 32, 90.0))
    # Inside a wall too: the engine owns the camera, so no collision is applied.
    inside = c2w_from_yaw_pitch(np.array([0.5, -0.5, 0.5]), 45.0, 0.0)
    assert np.array_equal(world.step({"pose": Action(pose=inside)})["pose"].pose, inside)
    world.step({"pose": Action(pose=pose)})
    nxt = world.step({"pose": Action(look=(0.0, 0.0))})["pose"].pose
    np.testing.assert_allclose(nxt, pose, atol=1e-12)  # idle controller keeps the engine's pose (no roll here)
    state = world.state_of("pose")
    assert state.y[0] == pytest.approx(-0.3) and state.yaw[0] == pytest.approx(90.0)
    world.close("pose")


def test_many_episodes_step_together(world: MazeWorld) -> None:
    for k in range(4):
        world.reset(k, k, 32 if k < 2 else 48, 32)
    frames = world.step({k: Action(move=(0.0, 1.0), fov_deg=60.0 + 10 * (k % 2)) for k in range(4)})
    assert [frames[k].pixels.shape for k in range(4)] == [(32, 32, 3)] * 2 + [(32, 48, 3)] * 2
    for k in range(4):
        h, w = frames[k].pixels.shape[:2]
        assert np.array_equal(frames[k].pixels, world.renderer.render(frames[k].pose, w, h, 60.0 + 10 * (k % 2)))
        world.close(k)
    with pytest.raises(KeyError):
        world.step({"never reset": Action()})

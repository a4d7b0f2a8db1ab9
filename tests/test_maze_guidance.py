"""Maze ground truth for guided world models: guidance buffers (ids, flat colour, depth) and per-seed looks."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from runtime.camera import c2w_from_yaw_pitch
from runtime.maze.level import LANDMARK_KINDS, N_BRICK, MazeLevel
from runtime.maze.render import (
    FLOOR,
    FLOOR_IDS,
    GUIDANCE_NAMES,
    ID_FLOOR,
    ID_MATERIAL0,
    ID_ROOM_FLOOR0,
    ID_SKY,
    ID_WALL_TOP,
    SKY,
    WALL,
    WALL_TOP,
    MazeRenderer,
    MazeTextures,
    default_look,
    floor_styles,
    varied_look,
)
from runtime.maze.world import MazeWorld
from runtime.motion import EYE_Y
from runtime.world import BUTTON_RUN, Action

# sha256 (first 16 hex digits) of 30 walking frames plus one view from above, rendered by the renderer as it was
# before looks and guidance existed (commit ca05437). The default look must stay bit-exact: the shipped model was
# trained on it.
DEFAULT_LOOK_DIGESTS = {0: "0b95143304f5a4a4", 7: "651943c6d19f5f84"}

WALK = [
    Action(
        move=(0.0, 1.0),
        look=(6.0 * ((k // 5) % 3 - 1), 1.5 * ((k // 7) % 3 - 1)),
        buttons=BUTTON_RUN if k % 4 == 3 else 0,
    )
    for k in range(30)
]


def walk_digest(world: MazeWorld) -> str:
    world.reset("w", 3, 48, 40)
    h = hashlib.sha256()
    for a in WALK:
        h.update(world.step({"w": a})["w"].pixels.tobytes())
    world.close("w")
    n = world.level.size
    above = c2w_from_yaw_pitch(np.array([n / 2, -3.0, n / 2]), 30.0, -80.0)  # the exact tracer's path
    h.update(world.renderer.render(above, 48, 40, 70.0).tobytes())
    return h.hexdigest()[:16]


@pytest.fixture(scope="module")
def renderer() -> MazeRenderer:
    return MazeRenderer(MazeLevel(0))


def eye(x: float, z: float) -> np.ndarray:
    return np.array([x, EYE_Y, z])


def corridor_cell(level: MazeLevel) -> tuple[int, int]:
    return next((int(i), int(j)) for i, j in level.free_cells if level.room_id[i, j] < 0)


def facing_wall(level: MazeLevel, gap: float) -> tuple[np.ndarray, int]:
    """A pose `gap` in front of a plain brick wall to the north, looking at it, and that wall's material."""
    for i, j in level.free_cells:
        if level.solid[i, j + 1] and 0 <= level.material[i, j + 1] < N_BRICK and level.room_id[i, j] < 0:
            return c2w_from_yaw_pitch(eye(i + 0.5, j + 1 - gap), 0.0, 0.0), int(level.material[i, j + 1])
    raise AssertionError("no free cell with a brick wall to its north")


def varied_poses(level: MazeLevel, count: int, seed: int) -> list[np.ndarray]:
    """Eyes in free cells looking anywhere, plus views from above and from outside the level."""
    rng = np.random.default_rng(seed)
    cells = level.free_cells[rng.integers(len(level.free_cells), size=count)]
    poses = [
        c2w_from_yaw_pitch(
            np.array([i + 0.5, -rng.uniform(0.1, 0.9), j + 0.5]), rng.uniform(-180, 180), rng.uniform(-80, 80)
        )
        for i, j in cells
    ]
    n = level.size
    poses.append(c2w_from_yaw_pitch(np.array([n / 2, -3.0, n / 2]), 30.0, -80.0))
    poses.append(c2w_from_yaw_pitch(np.array([-3.0, -0.5, n / 2]), 90.0, 0.0))
    return poses


# -- the default look is what it always was ----------------------------------------------------------------------


@pytest.mark.parametrize("level_seed", sorted(DEFAULT_LOOK_DIGESTS))
def test_default_look_is_bit_exact(level_seed: int) -> None:
    assert walk_digest(MazeWorld(level_seed)) == DEFAULT_LOOK_DIGESTS[level_seed]
    assert MazeLevel(level_seed).style == "default"


# -- guidance buffers --------------------------------------------------------------------------------------------


def test_id_table() -> None:
    assert len(GUIDANCE_NAMES) == 3 + N_BRICK + len(LANDMARK_KINDS) + 3
    named = (GUIDANCE_NAMES[ID_SKY], GUIDANCE_NAMES[ID_FLOOR], GUIDANCE_NAMES[ID_WALL_TOP])
    assert named == ("sky", "floor", "wall_top")
    assert GUIDANCE_NAMES[ID_MATERIAL0 : ID_MATERIAL0 + N_BRICK] == tuple(f"brick_{k}" for k in range(N_BRICK))
    assert GUIDANCE_NAMES[ID_MATERIAL0 + N_BRICK : ID_ROOM_FLOOR0] == LANDMARK_KINDS
    assert GUIDANCE_NAMES[ID_ROOM_FLOOR0:] == ("floor_marble", "floor_planks", "floor_terracotta")


def test_flat_colours_are_each_levels_own() -> None:
    """The guidance colour of an id is what an engine's unlit material colour is: this level's mean texel of it
    (its palette and light), the floor's, the horizon for the sky; so levels of style varied differ."""
    a, b = (MazeRenderer(MazeLevel(seed, style="varied")) for seed in (1000, 1001))
    for r in (a, b):
        assert r.textures.albedo.shape == (len(GUIDANCE_NAMES), 3) and r.textures.albedo.dtype == np.uint8
    assert np.abs(a.textures.albedo.astype(int) - b.textures.albedo).max() > 20
    tex = MazeTextures.build(a.level, a.look)
    assert np.array_equal(tex.albedo, a.textures.albedo)  # from the level alone
    assert np.allclose(a.textures.albedo[ID_SKY], np.round(a.look.horizon * 255), atol=1)


def test_floor_ids_and_colours_are_each_floors_own() -> None:
    """Every floor pixel's id is its cell's floor (corridor stone or its room's style), and that id's flat colour
    is what the floor looks like where one can see it: the mean of the rendered floor next to the eye, fog
    taken out, not darkened by the texels under the walls."""
    renderer = MazeRenderer(MazeLevel(1003, style="varied"))
    level, seen = renderer.level, {}
    for pose in varied_poses(level, 64, 3):
        g = renderer.guidance(pose, 64, 48, 70.0)
        frame = renderer.render(pose, 64, 48, 70.0).astype(np.float64)
        rays = renderer.rays(64, 48, 70.0)
        w = (pose[:3, :3] @ np.stack([rays.a, rays.b, np.ones_like(rays.a)])).reshape(3, 48, 64)
        s = -pose[1, 3] / w[1]  # where each pixel's ray meets the floor plane y = 0, to check the cell's style
        x, z = pose[0, 3] + s * w[0], pose[2, 3] + s * w[2]
        for k in np.unique(g.ids):
            if k not in FLOOR_IDS:
                continue
            on = (g.ids == k) & (g.depth < 1.5)
            if not on.any():
                continue
            style = floor_styles(level)[np.clip(x[on].astype(int), 0, level.size - 1),
                                        np.clip(z[on].astype(int), 0, level.size - 1)]
            assert (FLOOR_IDS[style] == k).mean() > 0.98
            fog = 1.0 - np.exp(-renderer.textures.fog_density * g.depth[on])[:, None]  # as render applies it
            seen.setdefault(int(k), []).append((frame[on] - fog * renderer.textures.fog) / (1.0 - fog))
    assert len(seen) >= 3  # the corridor and at least two room styles
    for k, px in seen.items():
        rendered = np.concatenate(px).mean(0)
        assert np.abs(rendered - renderer.textures.albedo[k]).max() < 12, (GUIDANCE_NAMES[k], rendered)
    assert np.ptp(renderer.textures.albedo[list(seen)].astype(int), axis=0).max() > 40  # floors differ


def test_guidance_shapes_and_dtypes(renderer: MazeRenderer) -> None:
    pose = facing_wall(renderer.level, 0.6)[0]
    g = renderer.guidance(pose, 37, 29, 75.0)
    assert g.colour.shape == (29, 37, 3) and g.colour.dtype == np.uint8
    assert g.depth.shape == (29, 37) and g.depth.dtype == np.float32
    assert g.ids.shape == (29, 37) and g.ids.dtype == np.uint16
    poses = np.stack(varied_poses(renderer.level, 3, 0))
    batch = renderer.guidance_batch(poses, 37, 29, 75.0)
    assert batch.colour.shape == (5, 29, 37, 3) and batch.depth.shape == batch.ids.shape == (5, 29, 37)
    for b, p in enumerate(poses):  # each view is exactly the single-view guidance
        one = renderer.guidance(p, 37, 29, 75.0)
        assert np.array_equal(batch.ids[b], one.ids) and np.array_equal(batch.colour[b], one.colour)
        assert np.array_equal(batch.depth[b], one.depth)


def test_guidance_agrees_with_surfaces(renderer: MazeRenderer) -> None:
    seen: set[int] = set()
    for pose in varied_poses(renderer.level, 10, 1):
        surf = renderer.surfaces(pose, 48, 40, 70.0)
        g = renderer.guidance(pose, 48, 40, 70.0)
        expect = np.select(
            [surf.kind == SKY, surf.kind == WALL_TOP, surf.kind == WALL],
            [ID_SKY, ID_WALL_TOP, ID_MATERIAL0 + surf.material.astype(np.int64)],
            -1,
        )
        floor = surf.kind == FLOOR
        assert np.array_equal(g.ids[~floor], expect[~floor])
        assert np.isin(g.ids[floor], FLOOR_IDS).all()
        assert np.array_equal(g.depth, surf.depth)  # inf for sky on both sides
        assert np.isinf(g.depth[g.ids == ID_SKY]).all() and np.isfinite(g.depth[g.ids != ID_SKY]).all()
        assert (g.depth[g.ids != ID_SKY] > 0).all()
        # Flat colour: one per id, and never anything else.
        assert np.array_equal(g.colour, renderer.textures.albedo[g.ids])
        for k in np.unique(g.ids):
            px = g.colour[g.ids == k]
            assert (px == px[0]).all()
        seen.update(int(k) for k in np.unique(g.ids))
    assert {ID_SKY, ID_FLOOR, ID_WALL_TOP} <= seen and len(seen) >= 8


@pytest.mark.parametrize("gap", [0.3, 0.75])
def test_wall_in_front_has_its_distance(renderer: MazeRenderer, gap: float) -> None:
    pose, material = facing_wall(renderer.level, gap)
    g = renderer.guidance(pose, 63, 63, 60.0)  # odd size: the centre pixel's ray is the optical axis
    assert g.ids[31, 31] == ID_MATERIAL0 + material
    assert g.depth[31, 31] == pytest.approx(gap, abs=1e-5)
    assert (g.colour[31, 31] == renderer.textures.albedo[ID_MATERIAL0 + material]).all()
    # The wall is a plane `gap` ahead: along any ray hitting it the distance is gap / cos(angle to the axis).
    rays = renderer.rays(63, 63, 60.0)
    on_wall = (g.ids == ID_MATERIAL0 + material).ravel()
    assert on_wall.mean() > 0.5
    np.testing.assert_allclose(g.depth.ravel()[on_wall], gap * rays.norm[on_wall], rtol=1e-5)


def test_guidance_geometry_is_the_same_for_every_look() -> None:
    """A look changes the flat colours (each level's own), never ids or depth."""
    plain, varied = MazeRenderer(MazeLevel(4)), MazeRenderer(MazeLevel(4, style="varied"))
    for pose in varied_poses(plain.level, 4, 2):
        a, b = plain.guidance(pose, 32, 24, 60.0), varied.guidance(pose, 32, 24, 60.0)
        assert np.array_equal(a.ids, b.ids) and np.array_equal(a.depth, b.depth)
        assert np.array_equal(b.colour, varied.textures.albedo[b.ids]) and not np.array_equal(a.colour, b.colour)


def test_guidance_leaves_render_alone(renderer: MazeRenderer) -> None:
    pose = c2w_from_yaw_pitch(eye(*(v + 0.5 for v in corridor_cell(renderer.level))), 45.0, 0.0)
    before = renderer.render(pose, 40, 32, 60.0)
    renderer.guidance(pose, 40, 32, 60.0)
    assert np.array_equal(renderer.render(pose, 40, 32, 60.0), before)


# -- looks per seed ----------------------------------------------------------------------------------------------


def test_style_keeps_the_layout_and_rejects_unknown_styles() -> None:
    for seed, size in ((0, 17), (5, 17), (-3, 11)):
        a, b = MazeLevel(seed, size), MazeLevel(seed, size, style="varied")
        assert np.array_equal(a.solid, b.solid) and np.array_equal(a.material, b.material)
        assert a.landmarks == b.landmarks and a.rooms == b.rooms
    with pytest.raises(ValueError):
        MazeLevel(0, style="shiny")
    with pytest.raises(ValueError):
        MazeWorld(0, style="shiny")


def test_varied_look_is_a_function_of_the_seed() -> None:
    a, b = MazeRenderer(MazeLevel(5, style="varied")), MazeRenderer(MazeLevel(5, style="varied"))
    assert np.array_equal(a.textures.atlas, b.textures.atlas)
    assert a.textures.fog_density == b.textures.fog_density
    for pose in varied_poses(a.level, 3, 3):
        assert np.array_equal(a.render(pose, 40, 32, 60.0), b.render(pose, 40, 32, 60.0))
    w1, w2 = MazeWorld(5, style="varied"), MazeWorld(5, style="varied")
    assert walk_digest(w1) == walk_digest(w2) != walk_digest(MazeWorld(5))


def test_varied_looks_differ_across_seeds() -> None:
    looks = [varied_look(s, 17) for s in range(8)]
    fogs = {round(lk.fog_density, 6) for lk in looks}
    suns = {round(lk.sun_azimuth, 6) for lk in looks}
    assert len(fogs) == len(suns) == 8
    for x in looks[1:]:
        assert np.abs(x.bricks - looks[0].bricks).max() > 0.02
        assert np.abs(x.horizon - looks[0].horizon).max() > 0.005
    base = default_look()
    assert all(np.abs(x.bricks - base.bricks).max() > 0.02 for x in looks)


def test_two_varied_seeds_look_different_from_the_same_pose() -> None:
    """Same pose in a cell free in both levels: the pictures differ in mean colour (palette, light, fog, sky)."""
    la, lb = MazeLevel(11, style="varied"), MazeLevel(12, style="varied")
    both = [(int(i), int(j)) for i, j in la.free_cells if lb.is_free(i + 0.5, j + 0.5)]
    assert both
    ra, rb = MazeRenderer(la), MazeRenderer(lb)
    diffs = []
    for k, (i, j) in enumerate(both[:: max(1, len(both) // 6)][:6]):
        pose = c2w_from_yaw_pitch(eye(i + 0.5, j + 0.5), 60.0 * k, 0.0)
        ma = ra.render(pose, 48, 40, 70.0).reshape(-1, 3).mean(axis=0)
        mb = rb.render(pose, 48, 40, 70.0).reshape(-1, 3).mean(axis=0)
        diffs.append(np.abs(ma - mb).max())
    assert np.median(diffs) > 4.0, diffs


def test_varied_look_changes_a_level_without_moving_anything() -> None:
    """Same seed and layout, default against varied: the same surfaces, different pixels; also the sky."""
    plain, varied = MazeRenderer(MazeLevel(2)), MazeRenderer(MazeLevel(2, style="varied"))
    pose = facing_wall(plain.level, 0.6)[0]
    a, b = plain.render(pose, 48, 40, 60.0).astype(int), varied.render(pose, 48, 40, 60.0).astype(int)
    assert np.abs(a.reshape(-1, 3).mean(axis=0) - b.reshape(-1, 3).mean(axis=0)).max() > 3.0
    i, j = corridor_cell(plain.level)
    up = c2w_from_yaw_pitch(eye(i + 0.5, j + 0.5), 0.0, 80.0)
    assert (plain.surfaces(up, 32, 32, 60.0).kind[:6] == SKY).all()
    sa, sb = plain.render(up, 32, 32, 60.0)[:6].astype(int), varied.render(up, 32, 32, 60.0)[:6].astype(int)
    assert np.abs(sa - sb).mean() > 3.0
    assert math.isfinite(varied.textures.fog_density) and varied.textures.fog_density > 0

"""Ground-truth renderer for a MazeLevel: procedural textures and an exact pinhole raycaster in numpy.

Why it is fast: walls are vertical, so which wall face a ray meets first depends only on the ray's horizontal
direction (as long as the eye is between floor and wall top). A 2D grid walk is done once per bin of horizontal
angle (bins a few times finer than a pixel), and every pixel then intersects the face plane of its bin with its
own exact direction. Only which face a pixel sees is quantised, by a fraction of a pixel at face edges; the depth,
texture coordinates and floor are exact per pixel. Eyes outside that slab (above the walls, outside the grid)
take a per-pixel 3D grid walk instead, which is slower but draws the same scene.

Looks: brick walls in several tints (one per wall cell), six landmark materials, a level-wide floor texture
with tiles, room floors and baked ambient occlusion, a sky panorama with sun and clouds, per-face sun shading,
mip-mapped textures (so distant walls do not shimmer) and exponential fog towards the horizon colour.

Looks per level (MazeLook): a level of style "default" gets the one look all levels always had, bit for bit (the
shipped model was trained on it). Style "varied" draws, from the level seed alone: the brick palette (a tint
family, desaturation and per-material hue), a floor tint, the light colour on walls and floor, the sun's azimuth,
elevation and colour (sky glow and which faces are lit), sky and horizon colours (hence the fog colour), the fog
density and the clouds. Layout is never affected. Textures are built once per level, so a look costs nothing
per frame.

Guidance buffers (MazeRenderer.guidance / guidance_batch -> Guidance), from the exact per-pixel tracer (the same
geometry as Surfaces), computed only when asked, so render is not slowed:

    ids     (H, W) uint16   semantic id per pixel, table below (GUIDANCE_NAMES[id] names it)
    colour  (H, W, 3) uint8   the level's flat colour per id (MazeTextures.albedo[ids]): what an engine's
                            unlit, untextured render of its materials shows: each material's mean texture
                            colour in this level's look (light included), each floor's over the cells one
                            can see (not under walls), and the sky's horizon colour (the engine's clear
                            colour); no fog, no shading
    depth   (H, W) float32  distance from the eye along the pixel's ray (not the z-depth); inf for sky

    id          what
    0           sky (also rays that leave the level)
    1           corridor floor (stone tiles)
    2           wall top (seen from above the walls)
    3 .. 10     wall side of brick material 0 .. N_BRICK - 1   (id = 3 + MazeLevel.material)
    11 .. 16    wall side of a landmark, LANDMARK_KINDS order: red_banner, blue_door, gold_panel,
                green_vines, purple_mosaic, orange_lamp        (id = 3 + MazeLevel.material)
    17 .. 19    room floor: floor_marble, floor_planks, floor_terracotta   (id = 17 + Room.style)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from runtime.camera import intrinsics
from runtime.guidance import Guidance
from runtime.maze.level import LANDMARK_KINDS, N_BRICK, MazeLevel

WALL_TEX = 128  # wall texels per unit (one face is WALL_TEX x WALL_TEX)
FLOOR_TEX = 32  # floor texels per cell side
SKY_W, SKY_H = 1024, 256  # sky panorama: azimuth x sin(elevation)
SKY_SIN_MIN = -0.3  # lowest sin(elevation) the panorama covers (seen only from above the walls)
FOG_DENSITY = 0.085  # per unit of distance
SUN_AZIMUTH = 2.5  # radians clockwise from north (x east, z north): south-east
SUN_ELEVATION = 0.6
BIN_OVERSAMPLE = 4.0  # angle bins per pixel of horizontal angle, at the finest place in the image
MAX_BINS = 8192
CHUNK_PIXELS = 1 << 15
SKY, FLOOR, WALL, WALL_TOP = 0, 1, 2, 3  # what a pixel sees (Surfaces.kind)

# Guidance ids (see the module docstring): sky, corridor floor, wall top, one per wall material, then one per room
# floor style (Room.style).
ID_SKY, ID_FLOOR, ID_WALL_TOP = 0, 1, 2
ID_MATERIAL0 = 3  # id of wall material m is ID_MATERIAL0 + m
ROOM_FLOORS = ("marble", "planks", "terracotta")  # Room.style order (_floor)
ID_ROOM_FLOOR0 = ID_MATERIAL0 + N_BRICK + len(LANDMARK_KINDS)  # id of room floor style k is ID_ROOM_FLOOR0 + k
FLOOR_IDS = np.array([ID_FLOOR] + [ID_ROOM_FLOOR0 + k for k in range(len(ROOM_FLOORS))])  # by floor_styles value
GUIDANCE_NAMES = (
    ("sky", "floor", "wall_top")
    + tuple(f"brick_{k}" for k in range(N_BRICK))
    + LANDMARK_KINDS
    + tuple(f"floor_{f}" for f in ROOM_FLOORS)
)

# Faces by the direction the ray travelled when it hit them: 0 = +x (west face), 1 = -x, 2 = +z (south), 3 = -z.
_FACE_NORMAL = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
# Texture u runs left to right for a viewer facing the face: u = frac(sign * the coordinate along the face).
_FACE_USIGN = np.array([-1.0, 1.0, 1.0, -1.0], dtype=np.float32)


# ----------------------------------------------------------------------------------------------------------------
# Procedural textures (floats in [0, 1], built once per level)


def _noise(rng: np.random.Generator, shape: tuple[int, int], falloff: float = 1.6, stretch: float = 1.0) -> np.ndarray:
    """Periodic 1/f^falloff noise with zero mean and unit std; tiles seamlessly. `stretch` > 1 elongates
    features along axis 1 (brushed metal, wood grain)."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :] * stretch
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    spec = np.fft.rfft2(rng.standard_normal(shape)) / f**falloff
    spec[0, 0] = 0.0
    out = np.fft.irfft2(spec, s=shape)
    return out / (out.std() + 1e-12)


def _grid_uv(res: int) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) texel centres in [0, 1): u across (columns), v down (rows)."""
    c = (np.arange(res) + 0.5) / res
    return np.meshgrid(c, c, indexing="xy")


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


_BRICK_COLOURS = np.array(
    [
        [0.62, 0.30, 0.22],
        [0.55, 0.37, 0.27],
        [0.70, 0.53, 0.37],
        [0.50, 0.45, 0.41],
        [0.67, 0.41, 0.27],
        [0.46, 0.30, 0.28],
        [0.62, 0.57, 0.48],
        [0.56, 0.34, 0.31],
    ]
)


def _brick(rng: np.random.Generator, colour: np.ndarray) -> np.ndarray:
    """(R, R, 3) brick face: 8 courses of 4 bricks, running bond, mortar, per-brick tint, bottom occlusion."""
    r = WALL_TEX
    v, u = np.mgrid[0:r, 0:r]
    ch, bw = r // 8, r // 4
    course = v // ch
    bu = (u + (course % 2) * (bw // 2)) % r  # running bond; % r keeps the face tileable along u
    brick_id = course * 4 + bu // bw
    jitter = rng.normal(0.0, 1.0, (32, 3)) * 0.025 + rng.normal(0.0, 1.0, (32, 1)) * 0.09
    img = colour[None, None, :] * (1.0 + jitter[brick_id])
    img *= 1.0 + 0.07 * _noise(rng, (r, r), falloff=1.2)[..., None]
    # Bevel: bricks darken towards their edges, mortar sits recessed.
    ev = np.minimum(v % ch, ch - 1 - v % ch)
    eu = np.minimum(bu % bw, bw - 1 - bu % bw)
    img *= (0.82 + 0.18 * _smoothstep(0.0, 3.0, np.minimum(ev, eu).astype(float)))[..., None]
    mortar = ((v % ch) < 2) | ((bu % bw) < 2)
    mortar_col = np.array([0.66, 0.63, 0.58]) * (1.0 + 0.06 * _noise(rng, (r, r))[..., None])
    img = np.where(mortar[..., None], mortar_col, img)
    return img * _wall_light(v / r)[..., None]


def _wall_light(v: np.ndarray) -> np.ndarray:
    """Vertical light on a wall: occlusion towards the floor, a little brighter at the top."""
    return (1.0 - 0.38 * _smoothstep(0.72, 1.0, v) ** 1.3) * (1.0 + 0.06 * (1.0 - v))


def _disc(img: np.ndarray, cu: float, cv: float, radius: float, colour: np.ndarray, soft: float = 1.5) -> None:
    """Paint a soft-edged disc (texel units) into img, wrapping in u."""
    r = img.shape[0]
    u0, u1 = int(cu - radius - 2), int(cu + radius + 3)
    v0, v1 = max(0, int(cv - radius - 2)), min(r, int(cv + radius + 3))
    if v0 >= v1:
        return
    vv, uu = np.mgrid[v0:v1, u0:u1]
    d = np.sqrt((uu + 0.5 - cu) ** 2 + (vv + 0.5 - cv) ** 2)
    a = np.clip((radius - d) / soft + 0.5, 0.0, 1.0)[..., None]
    cols = uu[0] % r
    img[v0:v1, cols] = img[v0:v1, cols] * (1 - a) + colour * a


def _landmark(kind: str, rng: np.random.Generator, bricks: np.ndarray = _BRICK_COLOURS) -> np.ndarray:
    """(R, R, 3) face of a landmark kind; `bricks` is the level's brick palette (for the brick around it)."""
    r = WALL_TEX
    u, v = _grid_uv(r)
    if kind == "red_banner":
        img = _brick(rng, bricks[3] * 0.95)
        du = np.abs(u - 0.5)
        bottom = 0.84 - 0.16 * du / 0.22
        cloth = (du < 0.22) & (v > 0.08) & (v < bottom)
        trim = cloth & ((du > 0.19) | (v < 0.11) | (v > bottom - 0.03))
        red = np.array([0.78, 0.07, 0.08]) * (1.0 + 0.16 * np.sin(u * 70.0))[..., None]
        img = np.where(cloth[..., None], red, img)
        emblem = np.abs(np.hypot(u - 0.5, v - 0.38) - 0.095) < 0.022
        emblem |= (np.abs(u - 0.5) + np.abs(v - 0.38)) < 0.05
        gold = np.array([0.95, 0.75, 0.22])
        img = np.where((trim | (emblem & cloth))[..., None], gold, img)
        rod = (np.abs(u - 0.5) < 0.28) & (np.abs(v - 0.07) < 0.018)
        return np.where(rod[..., None], np.array([0.30, 0.20, 0.12]), img)
    if kind == "blue_door":
        img = _brick(rng, bricks[6])
        du = np.abs(u - 0.5)
        door = ((du < 0.3) & (v > 0.32)) | (((du / 0.3) ** 2 + ((v - 0.32) / 0.2) ** 2) < 1.0)
        frame = ((du < 0.35) & (v > 0.3)) | (((du / 0.35) ** 2 + ((v - 0.32) / 0.25) ** 2) < 1.0)
        img = np.where(frame[..., None], np.array([0.40, 0.38, 0.36]), img)
        planks = 0.82 + 0.18 * _smoothstep(0.0, 0.012, np.abs(((u - 0.2) % 0.1) - 0.05))
        grain = 1 + 0.06 * _noise(rng, (r, r), stretch=0.2)
        blue = np.array([0.12, 0.28, 0.78]) * (planks * grain)[..., None]
        img = np.where(door[..., None], blue, img)
        bands = door & ((np.abs(v - 0.5) < 0.02) | (np.abs(v - 0.84) < 0.02))
        img = np.where(bands[..., None], np.array([0.15, 0.15, 0.17]), img)
        _disc(img, 0.7 * r, 0.64 * r, 0.035 * r, np.array([0.95, 0.78, 0.25]))
        return img * _wall_light(v)[..., None]
    if kind == "gold_panel":
        base = np.array([0.88, 0.66, 0.20]) * (0.8 + 0.25 * (1 - v))[..., None]
        img = base * (1 + 0.08 * _noise(rng, (r, r), falloff=1.2, stretch=8.0))[..., None]
        ring = (np.abs(u - 0.5) + np.abs(v - 0.5)) * 12.5
        img *= (0.8 + 0.2 * _smoothstep(0.1, 0.3, np.abs(ring - np.round(ring))))[..., None]
        border = (np.minimum(np.minimum(u, 1 - u), np.minimum(v, 1 - v)) < 0.06)[..., None]
        img = np.where(border, img * 0.62, img)
        for cu in (0.12, 0.88):
            for cv in (0.12, 0.88):
                _disc(img, cu * r, cv * r, 0.03 * r, np.array([0.55, 0.40, 0.12]))
        return img * _wall_light(v)[..., None]
    if kind == "green_vines":
        img = _brick(rng, bricks[3])
        for _ in range(9):
            cu, cv = rng.uniform(0, r), 0.0
            length = rng.uniform(0.55, 1.0) * r
            drift = rng.normal(0, 0.35)
            while cv < length:
                _disc(img, cu, cv, 1.6, np.array([0.16, 0.36, 0.10]), soft=1.0)
                if rng.random() < 0.16:
                    leaf = np.array([rng.uniform(0.12, 0.35), rng.uniform(0.45, 0.72), rng.uniform(0.08, 0.22)])
                    _disc(img, cu + rng.normal(0, 3), cv, rng.uniform(3.0, 5.5), leaf)
                drift = 0.8 * drift + rng.normal(0, 0.3)
                cu, cv = cu + drift, cv + 1.0
        return img
    if kind == "purple_mosaic":
        n = 8
        a, b = np.floor(u * n).astype(int), np.floor(v * n).astype(int)
        ring = (np.abs(a - 3.5) + np.abs(b - 3.5)).astype(int)
        palette = np.array([[0.45, 0.14, 0.62], [0.92, 0.90, 0.95], [0.66, 0.34, 0.86], [0.30, 0.08, 0.42]])
        img = palette[ring % 4] * (1 + 0.1 * rng.normal(0, 1, (n, n, 1))[a, b])
        grout = (((u * n) % 1.0) < 0.1) | (((v * n) % 1.0) < 0.1)
        img = np.where(grout[..., None], np.array([0.35, 0.33, 0.36]), img)
        return img * _wall_light(v)[..., None]
    if kind == "orange_lamp":
        img = _brick(rng, bricks[2] * 0.75)
        d2 = (u - 0.5) ** 2 + (v - 0.4) ** 2
        img = (
            img * (1 + 1.2 * np.exp(-d2 / 0.05))[..., None]
            + np.array([1.0, 0.5, 0.1]) * (0.8 * np.exp(-d2 / 0.025))[..., None]
        )
        bracket = (np.abs(u - 0.5) < 0.12) & (np.abs(v - 0.58) < 0.025)
        bracket |= (np.abs(u - 0.5) < 0.02) & (v > 0.4) & (v < 0.6)
        img = np.where(bracket[..., None], np.array([0.12, 0.1, 0.09]), img)
        _disc(img, 0.5 * r, 0.4 * r, 0.13 * r, np.array([0.22, 0.15, 0.08]))
        _disc(img, 0.5 * r, 0.4 * r, 0.105 * r, np.array([1.0, 0.72, 0.25]))
        _disc(img, 0.5 * r, 0.4 * r, 0.06 * r, np.array([1.0, 0.95, 0.75]))
        return np.clip(img, 0, 1)
    raise ValueError(f"unknown landmark kind {kind!r}")


def _box_blur(a: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """Mean over a window of 2 * radius + 1 along `axis`, edges clamped."""
    pad = [(0, 0)] * a.ndim
    pad[axis] = (radius + 1, radius)
    c = np.cumsum(np.pad(a, pad, mode="edge"), axis=axis)
    n = a.shape[axis]
    hi = np.take(c, np.arange(2 * radius + 1, 2 * radius + 1 + n), axis=axis)
    lo = np.take(c, np.arange(0, n), axis=axis)
    return (hi - lo) / (2 * radius + 1)


def _floor(level: MazeLevel, rng: np.random.Generator) -> np.ndarray:
    """(NT, NT, 3) texture of the whole floor, rows = z, columns = x: stone tiles in corridors, a style per room,
    large-scale light variation and occlusion next to walls."""
    t, n = FLOOR_TEX, level.size
    nt = n * t
    zz, xx = np.mgrid[0:nt, 0:nt]
    # Corridors: two stone tiles per cell, each with its own shade.
    tile = t // 2
    tid = (zz // tile) * (nt // tile) + xx // tile
    tint = 1.0 + 0.09 * rng.normal(0, 1, ((nt // tile) ** 2, 1)) + rng.normal(0, 0.02, ((nt // tile) ** 2, 3))
    img = np.array([0.50, 0.48, 0.45]) * tint[tid]
    grout = ((zz % tile) == 0) | ((xx % tile) == 0)
    img = np.where(grout[..., None], np.array([0.30, 0.29, 0.28]), img)
    cell_room = np.repeat(np.repeat(level.room_id.T, t, axis=0), t, axis=1)  # (NT, NT) as [z, x]
    for k, room in enumerate(level.rooms):
        mask = (cell_room == k)[..., None]
        if room.style == 0:  # chequered marble
            dark = ((zz // tile) + (xx // tile)) % 2 == 1
            m = np.where(dark[..., None], np.array([0.25, 0.28, 0.33]), np.array([0.80, 0.76, 0.68]))
            m = m * (1 + 0.05 * _noise(rng, (nt, nt), falloff=1.0))[..., None]
        elif room.style == 1:  # wooden planks along x with staggered joints
            plank = zz // (t // 4)
            joint = ((xx + plank * 37) % (2 * t)) < 1
            shade = 1 + 0.12 * rng.normal(0, 1, (nt // (t // 4) + 1, 1))[plank]
            grain = 1 + 0.1 * _noise(rng, (nt, nt), falloff=1.3, stretch=10.0)[..., None]
            m = np.array([0.56, 0.36, 0.20]) * shade * grain
            m = np.where((joint | ((zz % (t // 4)) == 0))[..., None], np.array([0.25, 0.15, 0.08]), m)
        else:  # terracotta, one tile per cell
            tint = 1 + 0.1 * rng.normal(0, 1, (n * n, 1))
            m = np.array([0.72, 0.40, 0.26]) * tint[(zz // t) * n + xx // t]
            m = np.where((((zz % t) < 2) | ((xx % t) < 2))[..., None], np.array([0.78, 0.72, 0.62]), m)
        img = np.where(mask, m, img)
    img *= (1 + 0.05 * _noise(rng, (nt, nt), falloff=1.0))[..., None]
    img *= (1 + 0.08 * _noise(rng, (nt, nt), falloff=2.6))[..., None]  # broad patches: places look different
    wall = np.repeat(np.repeat(level.solid.T.astype(np.float64), t, axis=0), t, axis=1)
    r = max(1, round(0.12 * t))
    for axis in (0, 1, 0, 1):
        wall = _box_blur(wall, r, axis)
    img *= (1.0 - 0.75 * wall)[..., None]
    return img


def floor_styles(level: MazeLevel) -> np.ndarray:
    """(n, n) int per cell [i, j]: 0 corridor, 1 + Room.style in a room (the floor styles of _floor)."""
    style = np.array([0] + [1 + room.style for room in level.rooms])
    return style[level.room_id + 1]


def _floor_means(level: MazeLevel, floor: np.ndarray) -> np.ndarray:
    """(1 + len(ROOM_FLOORS), 3) mean texel of the corridor floor and of each room floor style, over open cells
    (a style no room has gets the mean of all open floor)."""
    n, t = level.size, FLOOR_TEX
    cells = floor.reshape(n, t, n, t, 3).mean((1, 3)).transpose(1, 0, 2)  # (n, n, 3) as [i, j] = [x, z]
    style, open_ = floor_styles(level), ~level.solid
    means = [cells[open_ & (style == k)] for k in range(1 + len(ROOM_FLOORS))]
    return np.stack([m.mean(0) if len(m) else cells[open_].mean(0) for m in means])


def _sky(look: MazeLook) -> tuple[np.ndarray, np.ndarray]:
    """(SKY_H, SKY_W, 3) panorama (columns = azimuth from north clockwise, rows = sin(elevation) from 1 down to
    SKY_SIN_MIN) and the fog colour, which is its horizon colour so distant walls fade into the sky."""
    rng = np.random.default_rng(look.cloud_seed)
    az = (np.arange(SKY_W) + 0.5) / SKY_W * 2 * np.pi
    s = 1.0 - (np.arange(SKY_H) + 0.5) / SKY_H * (1.0 - SKY_SIN_MIN)
    az, s = np.meshgrid(az, s, indexing="xy")
    horizon, zenith = look.horizon, look.zenith
    up = np.clip(s, 0.0, 1.0) ** 0.55
    img = horizon * (1 - up[..., None]) + zenith * up[..., None]
    img = np.where((s < 0)[..., None], horizon * (1 + 0.6 * s[..., None]), img)  # below the horizon: darker haze
    clouds = _noise(rng, (SKY_H, SKY_W), falloff=1.9, stretch=2.0)
    cover = _smoothstep(-0.1, 1.3, clouds) * _smoothstep(0.0, 0.2, s)
    # Cloud undersides are greyer where the cover is thick: depth cues and orientation for a still sky.
    cloud_col = np.array([0.98, 0.98, 0.99]) - np.array([0.22, 0.21, 0.18]) * _smoothstep(0.5, 1.0, cover)[..., None]
    img = img * (1 - 0.9 * cover[..., None]) + cloud_col * (0.9 * cover[..., None])
    ce = np.sqrt(np.clip(1 - s * s, 0, 1))
    elev, azim = look.sun_elevation, look.sun_azimuth
    cos_g = s * math.sin(elev) + ce * math.cos(elev) * np.cos(az - azim)
    glow = 0.35 * np.exp(-(1 - cos_g) * 25) + 0.5 * np.exp(-(1 - cos_g) * 900)
    img = img + look.sun_colour * glow[..., None]
    return np.clip(img, 0, 1), horizon * 0.97


@dataclass(frozen=True, eq=False)
class MazeLook:
    """What a level looks like, beyond its layout: palette, light, sky and fog. default_look() is the look every
    level had before looks existed; varied_look(seed, size) draws one from the seed."""

    bricks: np.ndarray  # (N_BRICK, 3) base colour of each brick material (landmarks' surrounding bricks too)
    light: np.ndarray | None  # (3,) colour of the light on walls and floor; None: white, left untouched
    floor_tint: np.ndarray | None  # (3,) extra tint of the floor (used with light)
    fog_density: float  # per unit of distance
    sun_azimuth: float  # radians clockwise from north
    sun_elevation: float  # radians
    sun_colour: np.ndarray  # (3,) colour of the sun's glow in the sky
    horizon: np.ndarray  # (3,) sky colour at the horizon; the fog colour is 0.97 of it
    zenith: np.ndarray  # (3,) sky colour overhead
    cloud_seed: int


def default_look() -> MazeLook:
    """The look of style "default" levels: exactly the constants the renderer always used."""
    return MazeLook(
        bricks=_BRICK_COLOURS,
        light=None,
        floor_tint=None,
        fog_density=FOG_DENSITY,
        sun_azimuth=SUN_AZIMUTH,
        sun_elevation=SUN_ELEVATION,
        sun_colour=np.array([1.0, 0.9, 0.7]),
        horizon=np.array([0.80, 0.84, 0.88]),
        zenith=np.array([0.24, 0.45, 0.80]),
        cloud_seed=0x736B79,
    )


# Tint families for varied palettes: red brick, grey stone, sandstone, mossy, cool slate, ochre.
_PALETTE_FAMILIES = np.array(
    [[1.0, 1.0, 1.0], [0.85, 0.92, 1.08], [1.12, 1.02, 0.78], [0.86, 1.04, 0.84], [0.78, 0.9, 1.2], [1.15, 0.95, 0.6]]
)


def varied_look(seed: int, size: int) -> MazeLook:
    """A look drawn from (seed, size) alone, from its own random stream (textures' noise is untouched)."""
    rng = np.random.default_rng([int(seed) % 2**64, int(size), 0x6C6F6F6B])
    family = _PALETTE_FAMILIES[rng.integers(len(_PALETTE_FAMILIES))] * np.exp(rng.normal(0.0, 0.08, 3))
    grey = _BRICK_COLOURS.mean(axis=1, keepdims=True)
    desat = rng.uniform(0.0, 0.7)
    bricks = (_BRICK_COLOURS * (1 - desat) + grey * desat) * family * np.exp(rng.normal(0.0, 0.06, (N_BRICK, 3)))
    bricks = np.clip(bricks * rng.uniform(0.8, 1.2), 0.05, 0.95)
    elevation = rng.uniform(0.12, 1.2)
    warm = 1.0 - _smoothstep(0.15, 0.9, np.array(elevation))  # a low sun is orange
    sun_colour = np.array([1.0, 0.95, 0.88]) * (1 - warm) + np.array([1.0, 0.62, 0.32]) * warm
    light = (1.0 + 0.4 * (sun_colour / sun_colour.max() - 1.0)) * rng.uniform(0.82, 1.12)
    zenith = np.clip(np.array([0.24, 0.45, 0.80]) * np.exp(rng.normal(0.0, 0.15, 3)), 0.05, 0.95)
    haze = np.clip(np.array([0.80, 0.84, 0.88]) * np.exp(rng.normal(0.0, 0.05, 3)), 0.3, 1.0)
    horizon = np.clip(haze * (1 - 0.35 * warm) + sun_colour * 0.85 * (0.35 * warm), 0.3, 1.0)
    return MazeLook(
        bricks=bricks,
        light=light,
        floor_tint=np.exp(rng.normal(0.0, 0.12, 3)) * rng.uniform(0.85, 1.15),
        fog_density=FOG_DENSITY * math.exp(rng.uniform(math.log(0.35), math.log(2.0))),
        sun_azimuth=rng.uniform(0.0, 2 * math.pi),
        sun_elevation=elevation,
        sun_colour=sun_colour,
        horizon=horizon,
        zenith=zenith,
        cloud_seed=int(rng.integers(2**32)),
    )


def look_of(level: MazeLevel) -> MazeLook:
    """The look a level's style asks for."""
    return varied_look(level.seed, level.size) if level.style == "varied" else default_look()


def _mips(img: np.ndarray, levels: int) -> list[np.ndarray]:
    """Box-filtered mip chain of a float (R, R, 3) image."""
    out = [img]
    for _ in range(levels - 1):
        a = out[-1]
        out.append(0.25 * (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]))
    return out


def _pack(img: np.ndarray) -> np.ndarray:
    """Float RGB in [0, 1] -> flat int64 with R, G, B in 16-bit lanes (bits 0, 16, 32). One gather fetches a
    whole texel, and a weighted sum of four texels with integer weights summing to 256 filters all three
    channels at once without one lane spilling into the next (255 * 256 < 2**16)."""
    q = np.clip(np.round(img * 255.0), 0, 255).astype(np.int64).reshape(-1, 3)
    return q[:, 0] | (q[:, 1] << 16) | (q[:, 2] << 32)


WALL_LEVELS = 6  # 128 .. 4 texels
FLOOR_LEVELS = 6


@dataclass
class MazeTextures:
    """All texels of a level in one flat packed-RGB atlas, plus where each texture and mip level starts."""

    atlas: np.ndarray  # (T,) int64 packed texels, see _pack
    wall_base: np.ndarray  # (M * WALL_LEVELS,) int32: start of material m's level l at m * WALL_LEVELS + l
    floor_base: np.ndarray  # (FLOOR_LEVELS,) int32
    sky_base: int
    fog: np.ndarray  # (3,) float32 fog colour in 0..255
    face_shade: np.ndarray  # (4,) float32 sun shading per face direction
    # (len(GUIDANCE_NAMES), 3) uint8 flat colour per guidance id: sky (horizon), corridor floor, wall top (the
    # bricks' mean), each wall material's mean texel, then each room floor's; a floor's mean is over its open
    # cells only (the texels under walls are dark and never seen)
    albedo: np.ndarray
    fog_density: float = FOG_DENSITY  # per unit of distance

    @classmethod
    def build(cls, level: MazeLevel, look: MazeLook | None = None) -> MazeTextures:
        """Every texture of a level in its look (default_look() when None)."""
        rng = np.random.default_rng([level.seed % 2**64, level.size, 0x746578])
        look = default_look() if look is None else look
        walls = [_brick(rng, look.bricks[k] * rng.uniform(0.92, 1.06, 3)) for k in range(N_BRICK)]
        walls += [_landmark(kind, rng, look.bricks) for kind in LANDMARK_KINDS]
        floor = _floor(level, rng)
        if look.light is not None:  # the default look skips this, so its texels are exactly what they were
            walls = [w * look.light for w in walls]
            floor = floor * (look.light * look.floor_tint)
        chunks: list[np.ndarray] = []
        offset = 0

        def add(img: np.ndarray) -> int:
            nonlocal offset
            start = offset
            chunks.append(_pack(img))
            offset += chunks[-1].size
            return start

        wall_base = [add(m) for w in walls for m in _mips(np.clip(w, 0, 1), WALL_LEVELS)]
        floor_base = [add(m) for m in _mips(np.clip(floor, 0, 1), FLOOR_LEVELS)]
        sky, fog = _sky(look)
        sky_base = add(sky)
        sun = np.array([math.sin(look.sun_azimuth), math.cos(look.sun_azimuth)])
        lit = 0.68 + 0.32 * np.clip(_FACE_NORMAL @ sun, 0, None)
        face_shade = lit * np.array([0.93, 0.93, 1.0, 1.0])  # x faces a touch darker: corners always read
        means = [np.clip(w, 0, 1).mean((0, 1)) for w in walls]
        floors = _floor_means(level, np.clip(floor, 0, 1))
        albedo = np.stack([look.horizon, floors[0], np.mean(means[:N_BRICK], 0), *means, *floors[1:]])
        return cls(
            atlas=np.concatenate(chunks),
            wall_base=np.array(wall_base, dtype=np.int32),
            floor_base=np.array(floor_base, dtype=np.int32),
            sky_base=sky_base,
            fog=(fog * 255.0).astype(np.float32),
            face_shade=face_shade.astype(np.float32),
            fog_density=float(look.fog_density),
            albedo=np.round(albedo * 255).astype(np.uint8),
        )


# ----------------------------------------------------------------------------------------------------------------
# Rays


@dataclass
class PixelRays:
    """What is constant per (width, height, fov): camera-space pixel directions (a, b, 1)."""

    a: np.ndarray  # (P,) float32 (x - cx) / f at pixel centres
    b: np.ndarray  # (P,) float32 (y - cy) / f
    norm: np.ndarray  # (P,) float32 |(a, b, 1)|, the length of a world direction R @ (a, b, 1)
    f: float  # focal length in pixels
    width: int
    height: int


def _make_rays(width: int, height: int, fov_deg: float) -> PixelRays:
    fx, fy, cx, cy = intrinsics(width, height, fov_deg)
    b, a = np.mgrid[0:height, 0:width].astype(np.float64)
    a = ((a + 0.5 - cx) / fx).ravel()
    b = ((b + 0.5 - cy) / fy).ravel()
    norm = np.sqrt(a * a + b * b + 1.0)
    f32 = np.float32
    return PixelRays(a.astype(f32), b.astype(f32), norm.astype(f32), float(fy), width, height)


def _check_c2w(c2w: np.ndarray) -> np.ndarray:
    """(B, 4, 4) float64 with an orthonormal rotation (engines may send slightly scaled or skewed matrices)."""
    c2w = np.array(c2w, dtype=np.float64)
    if c2w.ndim != 3 or c2w.shape[1:] != (4, 4):
        raise ValueError(f"c2w must be (B, 4, 4), got {c2w.shape}")
    if not np.isfinite(c2w).all():
        raise ValueError("c2w has non-finite entries")
    rot = c2w[:, :3, :3]
    err = np.abs(np.einsum("bki,bkj->bij", rot, rot) - np.eye(3)).max(axis=(1, 2))
    bad = err > 1e-6
    if bad.any():
        u, _, vt = np.linalg.svd(rot[bad])
        fixed = u @ vt
        fixed[np.linalg.det(fixed) < 0] *= -1.0  # a reflection is not a camera; flip to the nearest rotation
        c2w[bad, :3, :3] = fixed
    return c2w


# ----------------------------------------------------------------------------------------------------------------
# Geometry: which surface each pixel sees


def _cast_bins(
    solid: np.ndarray, ox: np.ndarray, oz: np.ndarray, dx: np.ndarray, dz: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First wall crossed by horizontal rays from (ox, oz) along unit (dx, dz); all (M,) float64.

    Instead of stepping cell by cell, every crossing of an x = const and a z = const grid line is evaluated at
    once ((M, n) arrays) and the first one that enters a solid cell wins: no Python loop over steps. The cell the
    ray starts in is never a hit, so an eye inside a wall sees out of it. Leaving the grid counts as a hit.

    Returns (dist, face, i, j): dist = plane coordinate minus the origin along the hit face's axis (signed),
    face as in _FACE_NORMAL, (i, j) the wall cell (clamped to the grid).
    """
    n = solid.shape[0]
    k = np.arange(1, n + 1, dtype=np.float64)[None, :]  # (1, n)
    rows = np.arange(len(ox))
    out = []
    for along_x, o, d, o2, d2 in ((True, ox, dx, oz, dz), (False, oz, dz, ox, dx)):
        pos = (d > 0)[:, None]
        plane = np.floor(o)[:, None] + np.where(pos, k, 1.0 - k)  # (M, n) grid lines in travel order
        with np.errstate(divide="ignore", invalid="ignore"):
            s = (plane - o[:, None]) / d[:, None]  # (M, n) distance to each crossing
            across = np.floor(o2[:, None] + s * d2[:, None])  # (M, n) cell index along the other axis
        along = np.where(pos, plane, plane - 1.0)
        inside = (along >= 0) & (along < n) & (across >= 0) & (across < n)
        ia = np.where(inside, along, 0).astype(np.intp)
        ib = np.where(inside, across, 0).astype(np.intp)
        cell_solid = solid[ia, ib] if along_x else solid[ib, ia]
        hit = (cell_solid | ~inside) & (d != 0)[:, None]
        first = hit.argmax(axis=1)  # (M,)
        any_hit = hit[rows, first]
        out.append(
            (
                np.where(any_hit, s[rows, first], np.inf),
                plane[rows, first] - o,
                np.where(any_hit, along[rows, first], 0.0),
                np.where(any_hit, across[rows, first], 0.0),
                pos[:, 0],
            )
        )
    (sx, distx, ax, bx, posx), (sz, distz, az, bz, posz) = out
    use_x = sx <= sz
    dist = np.where(use_x, distx, distz)
    face = np.where(use_x, np.where(posx, 0, 1), np.where(posz, 2, 3)).astype(np.int8)
    i = np.clip(np.where(use_x, ax, bz), 0, n - 1).astype(np.intp)
    j = np.clip(np.where(use_x, bx, az), 0, n - 1).astype(np.intp)
    return dist, face, i, j


def _trace_reference(
    solid: np.ndarray, origin: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel 3D grid walk for any eye position (above the walls, outside the grid, inside a wall).

    origin (3,), w (3, P) float64 ray directions. Returns (kind, s, face, i, j) per pixel: kind 0 sky, 1 floor,
    2 wall side, 3 wall top (see Surfaces); s the ray parameter of the hit (point = origin + s * w); face as in
    _FACE_NORMAL for sides; (i, j) the wall cell for sides and tops. Rays that leave the grid see the sky
    panorama, whose band below the horizon is a haze: the level floats in it.
    """
    n = solid.shape[0]
    ox, oy, oz = (float(v) for v in origin)
    wx, wy, wz = w
    npx = wx.shape[0]
    kind = np.full(npx, SKY, dtype=np.int8)
    s_hit = np.zeros(npx)
    face = np.zeros(npx, dtype=np.int8)
    hi = np.zeros(npx, dtype=np.intp)
    hj = np.zeros(npx, dtype=np.intp)
    with np.errstate(divide="ignore", invalid="ignore"):
        # Enter the grid's square [0, n]^2 (slab method); rays that miss it see only floor or sky.
        lo_x, hi_x = _slab(ox, wx, n)
        lo_z, hi_z = _slab(oz, wz, n)
        s_in = np.maximum(np.maximum(lo_x, lo_z), 0.0)
        s_out = np.minimum(hi_x, hi_z)
        entry_axis_x = lo_x >= lo_z
        active = np.flatnonzero(s_in < s_out)
        step_x = np.where(wx > 0, 1, -1)
        step_z = np.where(wz > 0, 1, -1)
        ci = np.clip(np.floor(ox + s_in * wx), 0, n - 1).astype(np.intp)
        cj = np.clip(np.floor(oz + s_in * wz), 0, n - 1).astype(np.intp)
        next_x = np.where(wx != 0, (ci + (wx > 0) - ox) / wx, np.inf)
        next_z = np.where(wz != 0, (cj + (wz > 0) - oz) / wz, np.inf)
        delta_x, delta_z = np.abs(1.0 / wx), np.abs(1.0 / wz)
        s0 = s_in.copy()
        last_x = entry_axis_x.copy()
        # An eye inside a wall block sees out of it (as the fast path does): that block is not solid for it.
        ghost = (s_in == 0) & solid[ci, cj] & (-1.0 <= oy <= 0.0)
        s_floor = -oy / wy
        s_top = (-1.0 - oy) / wy
        for _ in range(4 * n + 4):
            if active.size == 0:
                break
            a = active
            i, j = ci[a], cj[a]
            seg0 = s0[a]
            seg1 = np.minimum(np.minimum(next_x[a], next_z[a]), s_out[a])
            is_solid = solid[i, j] & ~ghost[a]
            y0 = oy + seg0 * wy[a]
            side = is_solid & (y0 >= -1.0) & (y0 <= 0.0) & (seg0 > 0)
            sf, st = s_floor[a], s_top[a]
            top = is_solid & ~side & (y0 < -1.0) & (st >= seg0) & (st <= seg1)
            # Crossing y = 0 in this cell: the floor from above, or a wall's underside from below.
            flo = ~side & ~top & (sf >= seg0) & (sf <= seg1) & (sf > 0) & (~is_solid | (y0 > 0))
            for mask, k, s_val in ((side, WALL, seg0), (top, WALL_TOP, st), (flo, FLOOR, sf)):
                idx = a[mask]
                kind[idx], s_hit[idx], hi[idx], hj[idx] = k, s_val[mask], i[mask], j[mask]
            fx = np.where(step_x[a] > 0, 0, 1)
            fz = np.where(step_z[a] > 0, 2, 3)
            face[a[side]] = np.where(last_x[a], fx, fz)[side]
            # Advance one cell; leaving the grid ends the walk.
            go_x = next_x[a] <= next_z[a]
            s0[a] = np.where(go_x, next_x[a], next_z[a])
            ci[a] += np.where(go_x, step_x[a], 0)
            cj[a] += np.where(go_x, 0, step_z[a])
            next_x[a] += np.where(go_x, delta_x[a], 0.0)
            next_z[a] += np.where(go_x, 0.0, delta_z[a])
            last_x[a] = go_x
            done = side | top | flo | (ci[a] < 0) | (ci[a] >= n) | (cj[a] < 0) | (cj[a] >= n) | (s0[a] >= s_out[a])
            active = a[~done]
    return kind, s_hit, face, hi, hj


def _slab(o: float, d: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Ray parameter interval inside 0 <= o + s d <= n (empty interval when parallel and outside)."""
    a, b = (0.0 - o) / d, (n - o) / d
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    parallel = d == 0
    inside = 0.0 <= o <= n
    lo = np.where(parallel, -np.inf if inside else np.inf, lo)
    hi = np.where(parallel, np.inf if inside else -np.inf, hi)
    return lo, hi


# ----------------------------------------------------------------------------------------------------------------
# The renderer


@dataclass
class Surfaces:
    """Per-pixel ground truth of one view."""

    kind: np.ndarray  # (H, W) int8: SKY, FLOOR, WALL (a side) or WALL_TOP (seen from above the walls)
    depth: np.ndarray  # (H, W) float32 distance from the eye along the ray; inf for sky
    material: np.ndarray  # (H, W) int16 wall material (maze_level: < N_BRICK brick, else a landmark); -1 if none


class MazeRenderer:
    """Renders a MazeLevel from any camera-to-world pose (OpenCV convention, canonical world).

    look: what the level looks like; None takes the one its style asks for (look_of(level)).
    """

    def __init__(self, level: MazeLevel, look: MazeLook | None = None) -> None:
        self.level = level
        self.look = look_of(level) if look is None else look
        self.textures = MazeTextures.build(level, self.look)
        self._solid = level.solid
        # (n, n) guidance id of a hit in cell [i, j]: its wall material's if solid, else its floor's
        self._cell_ids = np.where(level.solid, ID_MATERIAL0 + level.material, FLOOR_IDS[floor_styles(level)])
        self._material = np.maximum(level.material, 0).astype(np.int32)  # free cells never shade a wall
        self._rays: dict[tuple[int, int, float], PixelRays] = {}

    def rays(self, width: int, height: int, fov_deg: float) -> PixelRays:
        """Camera-space pixel directions for a frame size and vertical fov, cached per (width, height, fov)."""
        key = (int(width), int(height), float(fov_deg))
        if key not in self._rays:
            if width < 1 or height < 1:
                raise ValueError(f"frame size must be positive, got {width}x{height}")
            if not 0.0 < fov_deg < 179.0:
                raise ValueError(f"fov_deg must be in (0, 179), got {fov_deg}")
            if len(self._rays) >= 16:  # sessions come and go with different sizes; keep the cache small
                self._rays.clear()
            self._rays[key] = _make_rays(*key)
        return self._rays[key]

    def render(self, c2w: np.ndarray, width: int, height: int, fov_deg: float) -> np.ndarray:
        """(H, W, 3) uint8 RGB, first row at the top, for one (4, 4) camera-to-world."""
        return self.render_batch(np.asarray(c2w)[None], width, height, fov_deg)[0]

    def render_batch(self, c2w: np.ndarray, width: int, height: int, fov_deg: float) -> np.ndarray:
        """(B, H, W, 3) uint8 for (B, 4, 4) camera-to-world poses; each view is exactly what render gives."""
        c2w = _check_c2w(c2w)
        rays = self.rays(width, height, fov_deg)
        n = self.level.size
        x, y, z = c2w[:, 0, 3], c2w[:, 1, 3], c2w[:, 2, 3]
        fast = (y > -1.0) & (y < 0.0) & (x >= 0) & (x < n) & (z >= 0) & (z < n)
        out = np.empty((len(c2w), rays.height * rays.width, 3), dtype=np.uint8)
        views = np.flatnonzero(fast)
        # Chunks of about 32k pixels keep the per-pixel arrays in cache; batching beyond that only costs.
        chunk = max(1, CHUNK_PIXELS // (rays.height * rays.width))
        for k in range(0, views.size, chunk):
            out[views[k : k + chunk]] = self._render_fast(c2w[views[k : k + chunk]], rays)
        for b in np.flatnonzero(~fast):
            out[b] = self._render_reference(c2w[b], rays)
        return out.reshape(len(c2w), rays.height, rays.width, 3)

    def surfaces(self, c2w: np.ndarray, width: int, height: int, fov_deg: float) -> Surfaces:
        """What every pixel of a view sees, from the exact per-pixel tracer: for evaluation (masks, depth)
        and tests. Slower than render (a few ms at 128x128)."""
        c2w = _check_c2w(np.asarray(c2w)[None])[0]
        rays = self.rays(width, height, fov_deg)
        kind, depth, ids = self._trace(c2w, rays)
        material = np.where(kind >= WALL, ids.astype(np.int16) - ID_MATERIAL0, -1).astype(np.int16)
        shape = (rays.height, rays.width)
        return Surfaces(kind.reshape(shape), depth.reshape(shape), material.reshape(shape))

    def guidance(self, c2w: np.ndarray, width: int, height: int, fov_deg: float) -> Guidance:
        """Guidance buffers of one (4, 4) camera-to-world: ids, flat colour and depth (module docstring). The
        same geometry as surfaces; the level's look does not change them."""
        g = self.guidance_batch(np.asarray(c2w)[None], width, height, fov_deg)
        return Guidance(g.colour[0], g.depth[0], g.ids[0])

    def guidance_batch(self, c2w: np.ndarray, width: int, height: int, fov_deg: float) -> Guidance:
        """Guidance of (B, 4, 4) poses: colour (B, H, W, 3) uint8, depth (B, H, W) float32, ids (B, H, W)
        uint16; each view is exactly what guidance gives."""
        c2w = _check_c2w(c2w)
        rays = self.rays(width, height, fov_deg)
        nv, npx = len(c2w), rays.height * rays.width
        ids = np.empty((nv, npx), dtype=np.uint16)
        depth = np.empty((nv, npx), dtype=np.float32)
        for b in range(nv):
            _, depth[b], ids[b] = self._trace(c2w[b], rays)
        shape = (nv, rays.height, rays.width)
        return Guidance(self.textures.albedo[ids].reshape(shape + (3,)), depth.reshape(shape), ids.reshape(shape))

    def _trace(self, c2w: np.ndarray, rays: PixelRays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact per-pixel (kind int8, depth float32, guidance id uint16) of one checked (4, 4) pose, flat (P,)."""
        w = c2w[:3, :3] @ np.stack([rays.a, rays.b, np.ones_like(rays.a)]).astype(np.float64)  # (3, P)
        kind, s, _, ci, cj = _trace_reference(self._solid, c2w[:3, 3], w)
        ids = np.where(kind == SKY, ID_SKY, np.where(kind == WALL_TOP, ID_WALL_TOP, self._cell_ids[ci, cj]))
        depth = np.where(kind != SKY, s * rays.norm, np.inf).astype(np.float32)
        return kind, depth, ids.astype(np.uint16)

    # -- eye between floor and wall top, inside the grid: angle bins ---------------------------------------------

    def _render_fast(self, c2w: np.ndarray, rays: PixelRays) -> np.ndarray:
        nv = len(c2w)
        rot = c2w[:, :3, :3].astype(np.float32)
        pos = c2w[:, :3, 3]
        wx, wy, wz = (rot[:, k, 0, None] * rays.a + rot[:, k, 1, None] * rays.b + rot[:, k, 2, None] for k in range(3))

        # Horizontal angle of every pixel relative to a reference azimuth inside the view, so that the angles a
        # view covers form one interval unless the view contains the vertical (then it is the full circle).
        ref = np.where(np.hypot(c2w[:, 0, 2], c2w[:, 2, 2])[:, None] > 1e-3, c2w[:, [0, 2], 2], c2w[:, [0, 2], 1])
        theta0 = np.arctan2(ref[:, 0], ref[:, 1])  # (V,)
        s0, c0 = np.sin(theta0).astype(np.float32)[:, None], np.cos(theta0).astype(np.float32)[:, None]
        rel = np.arctan2(wx * c0 - wz * s0, wz * c0 + wx * s0)  # (V, P)
        lo, hi = rel.min(axis=1), rel.max(axis=1)

        # Bin width: a fraction of the smallest per-pixel change of angle, so a bin is far below a pixel wide.
        h, w = rays.height, rays.width
        if h > 1 and w > 1:
            g = rel.reshape(nv, h, w)
            gu, gv = np.diff(g, axis=2)[:, :-1, :], np.diff(g, axis=1)[:, :, :-1]
            step = np.sqrt(gu * gu + gv * gv).reshape(nv, -1).min(axis=1).astype(np.float64)
        else:
            step = np.full(nv, 0.5 / rays.f)
        span = (hi - lo).astype(np.float64)
        nbins = np.clip(np.ceil(span * BIN_OVERSAMPLE / np.maximum(step, 1e-7)), 1, MAX_BINS).astype(np.int64)
        width_bin = np.where(span > 0, span / nbins, 1.0)
        first = np.concatenate([[0], np.cumsum(nbins)[:-1]])
        view = np.repeat(np.arange(nv), nbins)  # (M,) which view each bin belongs to
        local = np.arange(view.size) - first[view]
        theta = theta0[view] + lo[view] + (local + 0.5) * width_bin[view]
        dist, face, ci, cj = _cast_bins(self._solid, pos[view, 0], pos[view, 2], np.sin(theta), np.cos(theta))

        # Every pixel: its bin's face plane, intersected exactly with the pixel's own ray.
        inv = (1.0 / width_bin).astype(np.float32)[:, None]
        pbin = np.minimum(((rel - lo[:, None]) * inv).astype(np.int32), (nbins - 1).astype(np.int32)[:, None])
        pbin += first.astype(np.int32)[:, None]  # (V, P) global bin index
        pface = face[pbin]
        on_z = pface >= 2
        w_ax = np.where(on_z, wz, wx)
        px, py, pz = (pos[:, k, None].astype(np.float32) for k in range(3))
        with np.errstate(divide="ignore", invalid="ignore"):
            s_wall = dist.astype(np.float32)[pbin] / w_ax
            hy = py + s_wall * wy
            wall = (hy >= -1.0) & (hy <= 0.0) & (s_wall > 0)
            floor = ~wall & (wy > 0)
            s = np.where(wall, s_wall, np.where(floor, -py / wy, np.float32(0.0)))
        hx, hz = px + s * wx, pz + s * wz
        hy = py + s * wy
        along = np.where(on_z, hx, hz) * _FACE_USIGN[pface]
        return self._shade(
            wall=wall,
            floor=floor,
            t=s * rays.norm,
            wall_u=along - np.floor(along),
            wall_v=hy + 1.0,
            wall_mat=self._material[ci, cj][pbin],
            wall_shade=self.textures.face_shade[pface],
            wall_cos=np.abs(w_ax) / rays.norm,
            hx=hx,
            hz=hz,
            azimuth=rel + theta0.astype(np.float32)[:, None],
            sin_elev=-wy / rays.norm,
            f=rays.f,
        )

    # -- any other eye: per-pixel grid walk ----------------------------------------------------------------------

    def _render_reference(self, c2w: np.ndarray, rays: PixelRays) -> np.ndarray:
        rot, pos = c2w[:3, :3], c2w[:3, 3]
        a, b, norm = rays.a.astype(np.float64), rays.b.astype(np.float64), rays.norm
        w = rot[:, 0, None] * a + rot[:, 1, None] * b + rot[:, 2, None]  # (3, P)
        kind, s, face, ci, cj = _trace_reference(self._solid, pos, w)
        hx, hy, hz = (pos[k] + s * w[k] for k in range(3))
        side, top = kind == WALL, kind == WALL_TOP
        on_z = face >= 2
        along = np.where(on_z, hx, hz) * _FACE_USIGN[face]
        # Tops are paved with the block's own material, laid out in (x, z); sides use the usual (u, v).
        u = np.where(top, hx - np.floor(hx), along - np.floor(along))
        v = np.where(top, hz - np.floor(hz), hy + 1.0)
        f32 = np.float32
        return self._shade(
            wall=(side | top)[None],
            floor=(kind == FLOOR)[None],
            t=(s * norm).astype(f32)[None],
            wall_u=u.astype(f32)[None],
            wall_v=v.astype(f32)[None],
            wall_mat=self._material[ci, cj][None],
            wall_shade=np.where(top, f32(1.0), self.textures.face_shade[face])[None],
            wall_cos=np.where(top, np.abs(w[1]), np.abs(np.where(on_z, w[2], w[0]))).astype(f32)[None] / norm,
            hx=hx.astype(f32)[None],
            hz=hz.astype(f32)[None],
            azimuth=np.arctan2(w[0], w[2]).astype(f32)[None],
            sin_elev=(-w[1] / norm).astype(f32)[None],
            f=rays.f,
        )[0]

    # -- texturing, shared by both paths -------------------------------------------------------------------------

    def _shade(
        self,
        *,
        wall: np.ndarray,  # (V, P) bool
        floor: np.ndarray,  # (V, P) bool; neither wall nor floor = sky
        t: np.ndarray,  # (V, P) distance to the hit (0 for sky)
        wall_u: np.ndarray,  # (V, P) in [0, 1): across the face, left to right
        wall_v: np.ndarray,  # (V, P) in [0, 1]: top to bottom
        wall_mat: np.ndarray,  # (V, P) material index
        wall_shade: np.ndarray,  # (V, P) sun shading of the face
        wall_cos: np.ndarray,  # (V, P) |cos| between the ray and the face normal (texture foreshortening)
        hx: np.ndarray,  # (V, P) floor hit x
        hz: np.ndarray,  # (V, P) floor hit z
        azimuth: np.ndarray,  # (V, P) radians clockwise from north
        sin_elev: np.ndarray,  # (V, P) sine of the ray's elevation
        f: float,
    ) -> np.ndarray:
        tex = self.textures
        nt = self.level.size * FLOOR_TEX
        i32, f32 = np.int32, np.float32
        # Mip level from the texel footprint of one pixel: distance / focal length, stretched at grazing angles
        # (the geometric mean of the two axes: sharper than the max, calmer than the min).
        foot = t / f32(f)
        lw = np.frexp(foot * f32(WALL_TEX) / np.sqrt(np.maximum(wall_cos, 0.02)))[1] - 1
        lw = np.clip(lw, 0, WALL_LEVELS - 1)
        lf = np.frexp(foot * f32(FLOOR_TEX) / np.sqrt(np.maximum(-sin_elev, 0.02)))[1] - 1
        lf = np.clip(lf, 0, FLOOR_LEVELS - 1)
        # Bilinear taps: (u, v) in texels of the chosen level for walls, (x, z) for the floor. Walls tile along
        # u (wrap), everything else clamps.
        on_floor = ~wall
        res = np.where(wall, WALL_TEX >> lw, FLOOR_TEX >> lf)  # (V, P) texels per unit at the chosen level
        side = np.where(wall, res, nt >> lf)  # texture side length at that level
        resf = res.astype(f32)
        tu = np.where(wall, wall_u, hx) * resf - f32(0.5)
        tv = np.where(wall, wall_v, hz) * resf - f32(0.5)
        iu, iv = np.floor(tu), np.floor(tv)
        wu = ((tu - iu) * f32(16) + f32(0.5)).astype(i32)  # 0..16
        wv = ((tv - iv) * f32(16) + f32(0.5)).astype(i32)
        iu, iv = iu.astype(i32), iv.astype(i32)
        top = side - 1
        iu1 = iu + 1
        iu0 = np.where(on_floor, np.clip(iu, 0, top), iu & top)
        iu1 = np.where(on_floor, np.clip(iu1, 0, top), iu1 & top)
        iv0, iv1 = np.clip(iv, 0, top), np.clip(iv + 1, 0, top)
        base = np.where(wall, tex.wall_base[wall_mat * WALL_LEVELS + lw], tex.floor_base[lf])
        row0, row1 = base + iv0 * side, base + iv1 * side
        # The sky is smooth and already finer than a pixel: one tap, all weight on it.
        col = np.floor(azimuth * f32(SKY_W / (2 * math.pi))).astype(i32) % SKY_W
        row = np.clip(((1.0 - sin_elev) * f32(SKY_H / (1.0 - SKY_SIN_MIN))).astype(i32), 0, SKY_H - 1)
        sky = ~wall & ~floor
        i00 = np.where(sky, tex.sky_base + row * SKY_W + col, row0 + iu0)
        wu, wv = np.where(sky, 0, wu), np.where(sky, 0, wv)
        a = tex.atlas
        acc = a[i00] * ((16 - wu) * (16 - wv))  # (V, P) filtered RGB * 256, 16-bit lanes
        acc += a[row0 + iu1] * (wu * (16 - wv))
        acc += a[row1 + iu0] * ((16 - wu) * wv)
        acc += a[row1 + iu1] * (wu * wv)
        fog = 1.0 - np.exp(f32(-tex.fog_density) * t)  # (V, P); 0 for sky since t = 0
        gain = np.where(wall, wall_shade, f32(1.0)) * (1.0 - fog) * f32(1 / 256)
        out = np.empty(acc.shape + (3,), dtype=np.uint8)
        for c in range(3):
            chan = ((acc >> (16 * c)) & 0xFFFF).astype(f32)
            out[..., c] = chan * gain + (fog * tex.fog[c] + f32(0.5))
        return out

"""The guided world model (issue: the engine owns the state, the model renders): guidance features, the guided
transformer's cache, a guided model extended from an unguided one, training one end to end, and the guided
evaluation on unseen levels."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from guided_tiny import tiny_guided_config

from runtime.camera import c2w_from_yaw_pitch
from runtime.eval.guided import evaluate_guided, scores
from runtime.guidance import FEATURES, POSITION, Guidance, features, nearness, position
from runtime.maze.render import FLOOR, SKY, WALL
from runtime.neural.checkpoint import build_models, init_checkpoint, load_checkpoint, read_config, save_checkpoint
from runtime.neural.dit import DiT, DiTConfig
from runtime.neural.generate import generate_cached, generate_recompute
from runtime.neural.kv_cache import KVCache
from runtime.neural.sampler import timesteps
from runtime.neural.world import NeuralWorld
from runtime.training.stages import extend_from
from runtime.world import Action, Frame, World

ROOT = Path(__file__).resolve().parents[1]


def random_guidance(rng: np.random.Generator, size: int) -> Guidance:
    depth = rng.uniform(0.5, 12, (size, size)).astype(np.float32)
    depth[: size // 4] = np.inf  # sky
    return Guidance(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), depth,
                    rng.integers(0, 17, (size, size), dtype=np.uint16))


def test_features_channels_sizes_and_absence() -> None:
    g = random_guidance(np.random.default_rng(0), 8)
    f = features(g, 8, 8)
    assert f.shape == (FEATURES, 8, 8) and f.dtype == np.float32
    assert np.allclose(f[:3], np.moveaxis(g.colour, -1, 0) / 127.5 - 1)
    assert np.all(f[3, :2] == -1) and np.all(f[3, 2:] > -1)  # sky is "far": nearness 0 -> -1
    assert np.all(f[4] == 1)
    assert nearness(np.array([0.0, -1.0, np.nan, np.inf])).tolist() == [0.0, 0.0, 0.0, 0.0]
    half = Guidance(g.colour[::2, ::2], g.depth[::2, ::2])
    assert np.array_equal(features(half, 8, 8)[:, ::2, ::2], features(half, 4, 4))  # nearest repeat up
    assert not features(None, 8, 8).any() and not features(Guidance(colour=g.colour), 8, 8).any()
    batch = features(Guidance(np.stack([g.colour] * 3), np.stack([g.depth] * 3)), 8, 8)
    assert batch.shape == (3, FEATURES, 8, 8) and np.array_equal(batch[2], f)


def test_position_features_place_the_maze_surfaces_in_the_world() -> None:
    from runtime.maze.world import MazeWorld

    maze = MazeWorld(level_seed=1000, style="varied")
    maze.reset(0, 1, 64, 64)
    pose = maze.pose_of(0)
    g = maze.renderer.guidance(pose, 64, 64, 60.0)
    f = position(g.depth, pose, 60.0, 64, 64)
    assert f.shape == (POSITION, 64, 64) and f.dtype == np.float32
    kind = maze.renderer.surfaces(pose, 64, 64, 60.0).kind
    floor, wall, sky = kind == FLOOR, kind == WALL, kind == SKY
    assert floor.any() and wall.any() and sky.any()
    phase = [np.arctan2(f[3 + 2 * a], f[4 + 2 * a]) / (2 * np.pi) % 1.0 for a in range(3)]  # 1 cycle per unit
    near_int = [np.minimum(p, 1 - p) for p in phase]
    assert np.percentile(near_int[1][floor], 99) < 1e-3  # the floor is the plane y = 0
    assert np.percentile(np.minimum(near_int[0], near_int[2])[wall], 99) < 1e-3  # walls: integer x or z
    assert np.abs(f[:3, floor].mean(1) - [0, -1, 0]).max() < 0.05  # normal towards the eye (y down)
    rays = f[:3, sky].T  # the sky gets its ray's direction: up (y < 0) from an eye that looks up at it
    assert np.allclose(np.linalg.norm(rays, axis=1), 1, atol=1e-5) and (rays[:, 1] < 0).all()
    assert not f[3:, sky].any()
    near, far = g.depth < 0.5, np.isfinite(g.depth) & (g.depth > 1.4)  # the highest frequency is damped on
    assert near.any() and far.any()  # far surfaces, as a mip-map would
    assert np.abs(f[-2:, far]).mean() < 0.5 * np.abs(f[-2:, near]).mean()
    crop = position(g.depth, pose, 60.0, 64, 64, (16, 32, 32))
    assert np.allclose(crop[:, 1:-1, 1:-1], f[:, 17:47, 33:63], atol=1e-5)
    assert not position(None, pose, 60.0, 64, 64).any() and not position(g.depth, None, 60.0, 64, 64).any()


def test_configs_written_before_guidance_load_unguided() -> None:
    cfg = read_config(ROOT / "models/default/config.yaml")
    assert cfg.dit.guidance == 0 and cfg.autoencoder.guidance == 0
    assert read_config(ROOT / "runtime/configs/guided.yaml").dit.guidance == FEATURES
    assert cfg.autoencoder.look == 0 and read_config(ROOT / "models/guided-memory/config.yaml").autoencoder.look == 0


def test_shipped_guided_model_is_its_recipe() -> None:
    """models/guided has the architecture of runtime/configs/guided_look.yaml: a decoder with a look code that
    reads the guidance and the position features, a transformer that reads the guidance."""
    recipe = read_config(ROOT / "runtime/configs/guided_look.yaml")
    shipped = read_config(ROOT / "models/guided/config.yaml")
    assert shipped.autoencoder.guidance == FEATURES + POSITION and shipped.autoencoder.look > 0
    assert shipped.dit.guidance == FEATURES
    for part in ("autoencoder", "dit"):
        a, b = ({k: v for k, v in getattr(c, part).__dict__.items() if k != "latent_scale"} for c in (recipe, shipped))
        assert a == b


@torch.no_grad()
def test_guided_cache_matches_recomputation_and_guidance_matters() -> None:
    torch.manual_seed(0)
    cfg = DiTConfig(patch=1, dim=32, depth=2, heads=2, mlp_ratio=2.0, buttons=1, sinks=1, window=2,
                    guidance=FEATURES, guidance_res=2)
    model = DiT(cfg, 4, (2, 2), zero_init=False).eval()
    frames, schedule = 7, timesteps(2)
    g = torch.Generator().manual_seed(1)
    action = torch.randn(frames, cfg.action_dim, generator=g)
    rays = torch.randn(frames, model.tokens, 6, generator=g)
    has_pose = torch.ones(frames, dtype=torch.bool)
    guide = torch.randn(frames, FEATURES, 8, 8, generator=g)  # at 2x the pooled size: the model pools it
    noise = torch.randn(frames, 1, 4, 2, 2, generator=g)
    cache = KVCache(cfg.depth, model.tokens, cfg.heads, model.head_dim, cfg.sinks, cfg.window, capacity=1)
    history = torch.zeros(1, 0, 4, 2, 2)
    for i in range(frames):
        now = (action[i : i + 1], rays[i : i + 1], has_pose[i : i + 1])
        cached = generate_cached(model, cache, [0], noise[i], *now, schedule, guide=guide[i : i + 1])
        full = generate_recompute(model, history, noise[i], action[None, : i + 1], rays[None, : i + 1],
                                  has_pose[None, : i + 1], schedule, guide[None, : i + 1])
        assert ((cached - full).norm() / full.norm()) < 1e-4, f"frame {i}"
        history = torch.cat([history, full[:, None]], dim=1)
    unguided = generate_recompute(model, history[:, :-1], noise[-1], action[None], rays[None], has_pose[None],
                                  schedule)
    assert (unguided - full).abs().max() > 1e-2


def test_extended_model_starts_as_the_one_it_extends(tmp_path: Path) -> None:
    base = tmp_path / "base"
    init_checkpoint(base, ROOT / "runtime/configs/tiny.yaml", seed=3)
    cfg = read_config(tiny_guided_config(tmp_path))
    ae, dit = build_models(cfg)
    extend_from(str(base), cfg, ae, dit)
    save_checkpoint(tmp_path / "guided", cfg, ae, dit, None)
    worlds = {"base": NeuralWorld(base), "guided": NeuralWorld(tmp_path / "guided")}
    assert "guidance" in worlds["guided"].capabilities and "guidance" not in worlds["base"].capabilities
    g = random_guidance(np.random.default_rng(1), 32)
    frames = {}
    for name, world in worlds.items():
        world.reset(0, 5, 32, 32)
        frames[name] = [world.step({0: Action(move=(0, 1), guidance=g)})[0].pixels for _ in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(frames["base"], frames["guided"]))
    with pytest.raises(ValueError, match="does not fit"):  # the other way round is refused
        extend_from(str(tmp_path / "guided"), read_config(ROOT / "runtime/configs/tiny.yaml"),
                    *build_models(read_config(ROOT / "runtime/configs/tiny.yaml")))


def test_guided_model_reads_guidance_of_a_fraction_of_its_size(tmp_path: Path) -> None:
    path = tmp_path / "m"
    init_checkpoint(path, tiny_guided_config(tmp_path), seed=1)
    world = NeuralWorld(path)
    g = random_guidance(np.random.default_rng(2), 32)
    out = {}
    for name, guidance in {"full": g, "half": Guidance(g.colour[::2, ::2], g.depth[::2, ::2]), "none": None}.items():
        world.reset(0, 7, 32, 32)
        out[name] = world.step({0: Action(guidance=guidance)})[0].pixels
    assert not np.array_equal(out["full"], out["none"]) and not np.array_equal(out["half"], out["none"])
    world.reset(0, 7, 32, 32)
    assert np.array_equal(world.step({0: Action()})[0].pixels, out["none"])  # deterministic per seed
    with pytest.raises(ValueError, match="has guidance or memory"):
        NeuralWorld(path, backend="onnx", export_dir=tmp_path / "onnx")


def test_train_a_guided_model_end_to_end(tmp_path: Path) -> None:
    def cli(*args: str) -> str:
        r = subprocess.run([sys.executable, "-m", "bridge.tools.cli", *args], capture_output=True, text=True,
                           cwd=ROOT, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        return r.stdout

    data = tmp_path / "data"
    cli("data", "generate", "--levels", "1-3", "--style", "varied", "--guidance", "--depth-dtype", "float16",
        "--episodes", "3", "--frames", "12", "--size", "32", "--out", str(data))
    base = tmp_path / "base"
    init_checkpoint(base, ROOT / "runtime/configs/tiny.yaml", seed=2)
    train = {
        "model": str(tiny_guided_config(tmp_path)), "data": str(data), "out": str(tmp_path / "run"),
        "extend": str(base), "holdout": 1, "threads": 1,
        "autoencoder": {"steps": 4, "batch": 4, "crop": 16, "warmup": 1, "log_every": 2},
        "teacher": {"steps": 4, "batch": 2, "warmup": 1, "log_every": 2},
        "student": {"steps": 2, "batch": 2, "warmup": 1, "log_every": 1, "teacher_steps": 2, "rollout": 4},
        "decoder": {"steps": 3, "batch": 4, "crop": 16, "warmup": 1, "log_every": 1},
    }
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(train))
    model = Path(json.loads(cli("train", str(tmp_path / "train.yaml")).strip().splitlines()[-1])["model"])
    world = NeuralWorld(model)
    assert "guidance" in world.capabilities and world.config.dit.guidance == FEATURES
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert {r["stage"] for r in logged if "held_out_psnr" in r} == {"autoencoder", "decoder"}
    assert max(r.get("step", 0) for r in logged if r["stage"] == "decoder") == 3
    g = random_guidance(np.random.default_rng(3), 32)
    world.reset(0, 1, 32, 32)
    guided = world.step({0: Action(guidance=g)})[0].pixels
    world.reset(0, 1, 32, 32)
    assert not np.array_equal(guided, world.step({0: Action()})[0].pixels)  # the trained decoder reads it
    # an unguided dataset cannot train a guided model: a clear error, not a crash mid-run
    plain = tmp_path / "plain"
    cli("data", "generate", "--episodes", "2", "--frames", "8", "--size", "32", "--out", str(plain))
    train.update(data=str(plain), out=str(tmp_path / "run2"))
    (tmp_path / "train2.yaml").write_text(yaml.safe_dump(train))
    r = subprocess.run([sys.executable, "-m", "bridge.tools.cli", "train", str(tmp_path / "train2.yaml")],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode != 0 and "--guidance" in r.stderr


def test_look_decoder_extends_a_guided_model_and_reads_the_start_frame(tmp_path: Path) -> None:
    """The second part of the guided recipe (train_guided_look.yaml): a decoder with a look code and the position
    features trained on top of a guided model, the transformer kept; served, each episode's look comes from its
    start frame, and the position features from the guidance's depth and the engine pose."""
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "bridge.tools.cli", "data", "generate", "--levels", "1-3", "--style",
                    "varied", "--guidance", "--episodes", "3", "--frames", "12", "--size", "32", "--out", str(data)],
                   check=True, capture_output=True, cwd=ROOT, timeout=600)
    base = tmp_path / "base"
    init_checkpoint(base, tiny_guided_config(tmp_path), seed=2)
    trained = load_checkpoint(base, "cpu")  # a guided decoder that reads its guidance, as a trained one does
    for conv in trained.autoencoder.decoder.guide_in:
        torch.nn.init.normal_(conv.weight, std=0.3)
    save_checkpoint(base, trained.config, trained.autoencoder, trained.dit, trained.start_frames)
    raw = yaml.safe_load(tiny_guided_config(tmp_path).read_text())
    raw["autoencoder"].update(look=4, guidance=FEATURES + POSITION)  # and the position features
    (tmp_path / "look.yaml").write_text(yaml.safe_dump(raw))
    train = {
        "model": str(tmp_path / "look.yaml"), "data": str(data), "out": str(tmp_path / "run"), "extend": str(base),
        "holdout": 1, "threads": 1, "autoencoder": {"steps": 0}, "teacher": {"steps": 0}, "student": {"steps": 0},
        "decoder": {"steps": 3, "batch": 4, "crop": 16, "warmup": 1, "log_every": 1, "swap": 0.5, "shift": 1.0},
    }
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(train))
    r = subprocess.run([sys.executable, "-m", "bridge.tools.cli", "train", str(tmp_path / "train.yaml")],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert {r["stage"] for r in logged if "stage" in r} == {"decoder"}  # nothing else trained
    assert max(r.get("step", 0) for r in logged) == 3
    world, before = NeuralWorld(tmp_path / "run" / "model"), NeuralWorld(base)
    assert all(torch.equal(a, b) for a, b in zip(world.dit.state_dict().values(), before.dit.state_dict().values()))
    rng = np.random.default_rng(4)
    images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(2)]
    for key, image in enumerate(images):
        world.reset(key, 1, 32, 32, image=image)
    ae = world.autoencoder
    with torch.inference_mode():
        looks = [ae.look(world._image_to_model(image)) for image in images]
        assert torch.allclose(world._episodes[0].look, looks[0]) and torch.allclose(world._episodes[1].look, looks[1])
        z = torch.randn(1, *world.latent_shape)
        guide = world._guidance([Action(pose=np.eye(4), guidance=random_guidance(rng, 32))])  # (1, G, 32, 32)
        assert not torch.equal(ae.decode(z, guide, looks[0]), ae.decode(z, guide, looks[1]))  # trained: it reads it
    world.step({0: Action(guidance=random_guidance(rng, 32)), 1: Action()})  # both ways through a batch
    g, made = random_guidance(rng, 32), []
    for x in (0.0, 0.3):  # the same guidance from another place: only the position features differ
        world.reset(0, 1, 32, 32, image=images[0])
        made.append(world.step({0: Action(pose=c2w_from_yaw_pitch(np.array([x, -0.5, 0.0]), 0, 0), guidance=g)})[0])
    assert not np.array_equal(made[0].pixels, made[1].pixels)
    stem = world.autoencoder.decoder.pyramid.stem.weight
    assert stem.shape[1] == FEATURES + POSITION and stem[:, FEATURES:].abs().sum() > 0  # new inputs trained


def test_transformer_retrains_from_a_guided_model_with_a_level_mixed_in(tmp_path: Path) -> None:
    """The third part of the guided recipe (train_guided_tune.yaml): from a trained guided model (init), the
    transformer trains again, teacher then student, on varied levels with another dataset (level 0) mixed in;
    the autoencoder is kept. A mixed dataset that does not fit is a clear error before any training."""
    def generate(out: Path, *args: str, frames: str = "12") -> None:
        subprocess.run([sys.executable, "-m", "bridge.tools.cli", "data", "generate", *args, "--episodes", "2",
                        "--frames", frames, "--size", "32", "--out", str(out)],
                       check=True, capture_output=True, cwd=ROOT, timeout=600)

    data, level0, short, plain = (tmp_path / n for n in ("data", "level0", "short", "plain"))
    generate(data, "--levels", "1-2", "--style", "varied", "--guidance")
    generate(level0, "--guidance")
    generate(short, "--guidance", frames="8")
    generate(plain)
    base = tmp_path / "base"
    init_checkpoint(base, tiny_guided_config(tmp_path), seed=2)

    def train(mix: Path, out: str) -> subprocess.CompletedProcess:
        cfg = {
            "model": str(tiny_guided_config(tmp_path)), "data": str(data), "mix": [str(mix)],
            "out": str(tmp_path / out), "init": str(base), "holdout": 1, "threads": 1,
            "autoencoder": {"steps": 0}, "decoder": {"steps": 0},
            "teacher": {"steps": 2, "batch": 2, "warmup": 1, "log_every": 1},
            "student": {"steps": 1, "batch": 2, "warmup": 1, "log_every": 1, "teacher_steps": 2, "rollout": 4},
        }
        (tmp_path / f"{out}.yaml").write_text(yaml.safe_dump(cfg))
        return subprocess.run([sys.executable, "-m", "bridge.tools.cli", "train", str(tmp_path / f"{out}.yaml")],
                              capture_output=True, text=True, cwd=ROOT, timeout=600)

    r = train(level0, "run")
    assert r.returncode == 0, r.stderr[-3000:]
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert {r["stage"] for r in logged if "step" in r} == {"teacher", "student"}
    tuned, before = load_checkpoint(tmp_path / "run" / "model", "cpu"), load_checkpoint(base, "cpu")
    assert all(torch.equal(a, b) for a, b in zip(tuned.autoencoder.state_dict().values(),
                                                 before.autoencoder.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(tuned.dit.state_dict().values(),
                                                     before.dit.state_dict().values()))
    r = train(short, "run2")
    assert r.returncode != 0 and "same episode length" in r.stderr
    r = train(plain, "run3")
    assert r.returncode != 0 and "--guidance" in r.stderr


class GuidanceEcho(World):
    """Renders exactly the guidance's flat colour (grey without it): a world whose score the evaluation must see
    depend on guidance."""

    name, capabilities = "echo", ("pose", "guidance")

    def frame_size(self, width: int, height: int) -> tuple[int, int]:
        return 32, 32

    def reset(self, key, seed, width, height, pose=None, image=None) -> None:
        pass

    def step(self, actions: dict) -> dict:
        return {k: Frame(a.guidance.colour.copy() if a.guidance is not None else np.full((32, 32, 3), 128, np.uint8),
                         np.eye(4)) for k, a in actions.items()}

    def close(self, key) -> None:
        pass


def test_guided_evaluation_scores_what_the_world_renders(tmp_path: Path) -> None:
    report = evaluate_guided(GuidanceEcho(), tmp_path, levels=(1000, 1001), frames=9, minutes=0.02,
                             baseline=NeuralWorld(init_checkpoint_path(tmp_path)))
    assert report["baseline"]["world"] == "tiny" and report["baseline"]["psnr"] < 100
    assert report["levels"] == [1000, 1001] and report["frame_size"] == 32
    guided, dreamed = report["guided"], report["without_guidance"]
    assert guided["psnr"] > dreamed["psnr"] + 1  # flat colours resemble the truth more than grey does
    assert dreamed["flicker"]["model"] == 0 and guided["flicker"]["model"] > 0
    assert len(guided["psnr_by_quarter"]) == 4 and report["long_run"]["frames"] == 19
    with pytest.raises(ValueError, match="guidance"):
        evaluate_guided(NeuralWorld(init_checkpoint_path(tmp_path)), tmp_path)
    same = [np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)]
    s = scores(same, same)
    assert s["psnr"] == 100.0 and s["flicker"]["error"] == 0 and s["ssim"] == pytest.approx(1.0)


def init_checkpoint_path(tmp_path: Path) -> Path:
    init_checkpoint(tmp_path / "plain", ROOT / "runtime/configs/tiny.yaml")
    return tmp_path / "plain"


def test_daemon_serves_a_guided_model_to_a_client_that_sends_guidance(tmp_path: Path) -> None:
    from bridge.client import ServerError
    from bridge.tools.connect import open_world

    path = tmp_path / "m"
    init_checkpoint(path, tiny_guided_config(tmp_path), seed=4)
    g = random_guidance(np.random.default_rng(5), 32)
    with open_world(str(path), width=32, height=32, seed=3) as conn:
        c = conn.client
        assert "guidance" in c.welcome["capabilities"]
        assert c.guidance_offer == {"buffers": ["colour", "depth"], "width": 32, "height": 32, "scales": [1, 2, 4]}

        def frame(guidance) -> np.ndarray:
            c.reset(3)
            c.send_input((0.0, 1.0), guidance=guidance)
            c.grant(1)
            return c.recv_frame().image

        guided, dreamed = frame(g), frame(None)
        assert not np.array_equal(guided, dreamed)
        assert np.array_equal(frame(g), guided)  # the same episode seed and guidance: the same frame
        assert not np.array_equal(frame(Guidance(g.colour[::2, ::2], g.depth[::2, ::2])), dreamed)  # a half size
        c.send_input(guidance=Guidance(g.colour[:24, :24], g.depth[:24, :24]))  # 24x24 is not an offered size
        with pytest.raises(ServerError) as e:
            c.grant(1)
            c.recv_frame()
        assert e.value.code == 422 and "guidance" in str(e.value)


def test_demo_drives_a_guided_model_as_an_engine(tmp_path: Path) -> None:
    path = tmp_path / "m"
    init_checkpoint(path, tiny_guided_config(tmp_path), seed=6)
    gif = tmp_path / "demo.gif"
    r = subprocess.run([sys.executable, "-m", "bridge.tools.cli", "demo", "--world", str(path), "--frames", "12",
                        "--out", str(gif)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["frames"] == 12 and report["engine_level"] == 1003 and 5 < report["psnr_vs_truth"] < 100
    from PIL import Image

    with Image.open(gif) as im:
        assert im.size == ((3 * 32 + 8) * 8, 32 * 8)  # guidance | model | truth, upscaled to 256 high


def test_bench_sends_guidance_to_a_guided_world(tmp_path: Path) -> None:
    path = tmp_path / "m"
    init_checkpoint(path, tiny_guided_config(tmp_path), seed=7)
    r = subprocess.run([sys.executable, "-m", "bridge.tools.cli", "bench", "--world", str(path), "--frames", "12",
                        "--sessions", "1", "--backends", "", "--json"], capture_output=True, text=True, cwd=ROOT,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["guidance"] is True and report["frames"] == 12

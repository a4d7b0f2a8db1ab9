"""The `worldbridge` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib
import re
import signal
import sys

from bridge.protocol.messages import Limits
from bridge.server.worlds import BACKENDS, default_world
from bridge.tools.errors import UserError
from runtime.precision import DTYPE_CHOICES
from runtime.world import FPS

EXAMPLES = {
    "serve": """examples:
  worldbridge serve                                  # the default model on tcp://127.0.0.1:5557
  worldbridge serve --world maze                     # the procedural ground-truth maze
  worldbridge serve --world runs/mymodel --device cuda
  worldbridge serve --record-dir recordings            # clients may record their own frames (docs/finetune.md)
  worldbridge serve --backend onnx-int8               # ONNX Runtime, int8 weights (exported on first use)
  WORLDBRIDGE_TOKEN=s3cret worldbridge serve --bind tcp://0.0.0.0:5557   # LAN needs a token
  worldbridge serve --world maze --replicas 2         # two replicas (Ray actors) behind one endpoint
  worldbridge serve --world lingbot-fast:/models/lingbot-fast --device cuda --replicas 8 --ray-address auto
  torchrun --nproc_per_node 4 -m bridge.tools.cli serve --world lingbot-fast:/models/lingbot-fast --device cuda \
      --sequence-parallel                            # one session's DiT split over 4 GPUs (Ulysses)
(replicas: docs/scaling.md; needs pip install 'worldbridge[cluster]')""",
    "export-onnx": """examples:
  worldbridge export-onnx default                    # -> models/default/onnx (what serve --backend onnx uses)
  worldbridge export-onnx runs/x/model --quantize int8 --out /tmp/x-int8
graphs and their inputs/outputs: runtime/neural/onnx.py""",
    "demo": """examples:
  worldbridge demo                                   # guided model on an unseen level -> out/demo.gif
  worldbridge demo --world default                   # the default model dreaming from the controller alone
  worldbridge demo --world maze --frames 64 --out /tmp/maze.gif""",
    "data": """examples:
  worldbridge data generate --world maze --episodes 200 --out data/maze
  worldbridge data generate --world maze:3 --episodes 8 --frames 64 --size 64 --out /tmp/small
  worldbridge data generate --levels 0-31 --style varied --guidance --episodes 256 --out data/maze32
  worldbridge data generate --levels 0,4,9 --guidance --depth-dtype float16 --episodes 6 --out /tmp/g
(--levels: a range A-B or a comma list, e.g. 0-7,12; the episodes are split evenly over the levels in order;
 --guidance stores per frame the flat colour, ids (uint16) and depth; format: docs/dataset.md)""",
    "train": """examples:
  worldbridge train runtime/configs/train_default.yaml                 # all stages; run again to resume
  worldbridge train runtime/configs/train_default.yaml --until teacher --device cuda
  torchrun --nproc_per_node 2 -m bridge.tools.cli train CONFIG.yaml          # data-parallel (gloo on CPU, nccl on GPU)
  worldbridge train CONFIG.yaml --data recordings/mylevel --init default --out runs/mylevel   # fine-tune
  worldbridge train runtime/configs/finetune.yaml --init guided --data recordings/NAME --out runs/mystyle""",
    "eval": """examples:
  worldbridge eval --world default --json                       # the shipped model, all metrics
  worldbridge eval --world runs/default/model --teacher runs/default/teacher --stability-minutes 10
  worldbridge eval --world runs/x/model --trajectories 2 --frames 65 --stability-minutes 0.5
  worldbridge eval --loops --world default                      # loop closure: revisits, spins, standing still
  worldbridge eval --loops --world memory --no-memory           # the memory model with its memory slots empty
  worldbridge eval --loops --world guided-memory --level 1000 --style varied   # guided, on an unseen level
  worldbridge eval --guided --baseline default                  # the guided model on 8 unseen levels, 10 min run
  worldbridge eval --guided --world runs/guided/model --frames 65 --stability-minutes 0.5
  worldbridge eval --loops --world lingbot-fast:ckpt/lingbot-fast --device cuda --revisits 30 --size 480
loop closure (--loops) scores any world, each frame against its own first visit and against the maze""",
    "bench": """examples:
  worldbridge bench --world maze --json
  worldbridge bench --world default --out out/bench.json       # every figure: backends, cache, sessions
  worldbridge bench --world default --backend onnx-int8 --backends '' --format jpeg""",
    "play": """examples:
  worldbridge play --world maze                      # start a maze daemon, open a window; Esc quits
  worldbridge play --world default --width 128 --height 128
  worldbridge play --connect tcp://127.0.0.1:5557    # a daemon that is already running
keys: W A S D move, mouse or arrow keys look, Shift runs, F12 or P screenshot, R new episode,
      Tab frees the mouse, Esc quits""",
    "rollout": """examples:
  worldbridge rollout --world maze --actions examples/walk_loop.yaml --out out/walk.gif
  worldbridge rollout --world default --actions examples/walk_loop.yaml --out out/walk.gif --compare maze
  worldbridge rollout --world maze --actions out/lingbot_ep0 --out out/frames/ --json   # LingBot-World dir
(action script format: docs/rollout.md)""",
    "export-lingbot": """examples:
  worldbridge export-lingbot --data data/maze --episode 0 --out out/lingbot_ep0
  worldbridge export-lingbot --data recordings/mylevel --episode 3 --frames 161 --out out/path3""",
}


def _serve(args: argparse.Namespace) -> int:
    from bridge.server.daemon import Daemon, DaemonConfig
    from bridge.server.recorder import RecordConfig
    from bridge.server.worlds import load_world

    limits = Limits(max_sessions=args.max_sessions, idle_timeout_s=args.idle_timeout,
                    max_message_bytes=args.max_message_bytes)
    caps = {"max_frames": args.record_max_frames, "max_bytes": args.record_max_bytes}
    record = RecordConfig(args.record_dir, **{k: v for k, v in caps.items() if v}) if args.record_dir else None
    world = None
    try:
        if args.sequence_parallel:  # under torchrun (docs/scaling.md): rank 0 serves, the other ranks follow it
            from bridge.server.worlds import load_parallel_world

            if args.replicas:
                raise ValueError("--sequence-parallel and --replicas do not combine")
            world = load_parallel_world(args.world, device=args.device, steps=args.steps, dtype=args.dtype,
                                        backend=args.backend)
            if world is None:  # a rank > 0: it ran rank 0's DiT work until rank 0 stopped
                return 0
        elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ValueError(f"started as {os.environ['WORLD_SIZE']} processes (torchrun): add --sequence-parallel "
                             "to split one world over them, or start one serve")
        elif args.replicas:  # Ray actors behind this one endpoint (docs/scaling.md)
            from bridge.server.replicas import ReplicaPool

            gb = args.replica_memory_gb
            world = ReplicaPool(args.world, args.replicas, device=args.device, steps=args.steps, dtype=args.dtype,
                                backend=args.backend, memory_bytes=None if gb is None else int(gb * 2**30),
                                address=args.ray_address)
        elif args.ray_address or args.replica_memory_gb is not None:
            raise ValueError("--ray-address and --replica-memory-gb go with --replicas N")
        else:
            world = load_world(args.world, device=args.device, steps=args.steps, dtype=args.dtype,
                               backend=args.backend)
        # the secret key comes from a file the operator controls, never from the command line (ps shows it)
        curve = pathlib.Path(args.curve_secret_file).read_text().strip() if args.curve_secret_file else ""
        daemon = Daemon(world, DaemonConfig(args.bind, limits, args.token, record, curve_secret=curve))
    except Exception as e:  # bad world spec, corrupt checkpoint, port in use, refused bind, no Ray
        if hasattr(world, "shutdown"):  # replicas that started
            world.shutdown()
        print(f"worldbridge serve: {e}", file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: daemon.request_stop())
    print(f"worldbridge: serving {world.name} on {daemon.address}", flush=True)
    if daemon.curve_public_key:
        print(f"worldbridge: CurveZMQ public key {daemon.curve_public_key}", flush=True)
    try:
        daemon.serve_forever()
    finally:
        if hasattr(world, "shutdown"):
            world.shutdown()
    logging.getLogger("worldbridge").info("stopped after forwarding %d messages", daemon.messages_forwarded)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from bridge.tools import bench

    serve_args = ["--device", args.device, "--dtype", args.dtype, "--backend", args.backend]
    sessions = [int(n) for n in args.sessions.split(",") if n]
    backends = [b for b in args.backends.split(",") if b]
    if backends:
        from runtime.eval.bench import VARIANTS

        unknown = [b for b in backends if b not in VARIANTS]
        if unknown:
            raise UserError(f"--backends: unknown {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    with tqdm(total=args.frames, desc="bench", unit="frame", disable=args.json or not sys.stderr.isatty()) as bar:
        result = bench.run(args.world, args.frames, args.width, args.height, args.format, serve_args, bar.update,
                           sessions, backends, args.long)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result) if args.json else bench.table(result))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from bridge.tools import demo

    with tqdm(total=args.frames, desc=f"demo ({args.world})", unit="frame") as bar:
        result = demo.run(args.world, args.frames, args.size, Path(args.out), bar.update, args.level)
    print(json.dumps(result))
    return 0


def _data(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from bridge.server.worlds import maze_level
    from runtime.data.generate import generate
    from runtime.maze.world import MazeWorld

    def fail(message: str) -> int:
        print(f"worldbridge data generate: {message}", file=sys.stderr)
        return 2

    try:
        level = maze_level(args.world)
    except ValueError as e:
        return fail(str(e))
    if level is None:  # the explorers plan their walks on the maze's map
        return fail(f"--world must be the maze (maze or maze:SEED), got {args.world}")
    levels = None
    if args.levels is not None:
        if args.world != "maze":
            return fail(f"give either --world {args.world} or --levels, not both")
        try:
            levels = parse_levels(args.levels)
        except ValueError as e:
            return fail(f"--levels {args.levels}: {e}")
        if len(levels) > args.episodes:
            return fail(f"--levels names {len(levels)} levels but --episodes is {args.episodes}: "
                        "every level needs at least one episode")
    world = MazeWorld(level_seed=level if levels is None else levels[0], style=args.style)
    out = Path(args.out)
    if (out / "meta.json").exists() and not args.overwrite:
        return fail(f"{out} already holds a dataset (use --overwrite)")
    with tqdm(total=args.episodes * args.frames, desc="generate", unit="frame") as bar:
        generate(world, out, args.episodes, args.frames, args.size, args.seed, progress=bar.update, levels=levels,
                 guidance=args.guidance, depth_dtype=args.depth_dtype)
    result = {"out": str(out), "episodes": args.episodes, "frames": args.episodes * args.frames}
    if levels is not None:
        result["levels"] = len(levels)
    print(json.dumps(result))
    return 0


MAX_LEVELS = 100_000


def parse_levels(spec: str) -> list[int]:
    """Level seeds from "A-B" (inclusive), "A,B,C" or a mix ("0-7,12"); ValueError says what is wrong."""
    seeds: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        m = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", part)
        if m is None:
            raise ValueError(f"{part!r} is not a level seed N or a range A-B (non-negative integers)")
        lo = int(m[1])
        hi = int(m[2]) if m[2] is not None else lo
        if hi < lo:
            raise ValueError(f"range {part} runs backwards (want A <= B)")
        if len(seeds) + hi - lo + 1 > MAX_LEVELS:
            raise ValueError(f"more than {MAX_LEVELS} levels")
        seeds.extend(range(lo, hi + 1))
    if len(set(seeds)) != len(seeds):
        raise ValueError("names a level more than once")
    return seeds


def _train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from bridge.server.worlds import model_path
    from runtime.training.config import TrainConfig
    from runtime.training.stages import run

    init = args.init and str(model_path(args.init))
    if init and not (pathlib.Path(init) / "config.yaml").is_file():  # fail before loading data, naming it
        print(f"worldbridge train: --init {args.init}: {init} is not a model directory (no config.yaml)",
              file=sys.stderr)
        return 2
    try:
        cfg = TrainConfig.load(args.config, device=args.device, out=args.out, data=args.data, init=init,
                               precision=args.precision)
    except (OSError, ValueError) as e:
        print(f"worldbridge train: {e}", file=sys.stderr)
        return 2
    bars: dict[str, tqdm] = {}
    main_rank = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 reports

    def progress(stage: str, step: int, total: int, record: dict) -> None:
        if stage not in bars:
            # initial=step: a resumed run's rate counts only the steps done now
            bars[stage] = tqdm(total=total, initial=step, desc=stage, unit="step", disable=not main_rank)
        bar = bars[stage]
        bar.update(step - bar.n)
        bar.set_postfix(loss=record["loss"])

    model = run(cfg, args.until, progress)
    for bar in bars.values():
        bar.close()
    if main_rank:
        print(json.dumps({"model": str(model)}))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bridge.server.worlds import model_path
    from runtime.eval.evaluate import evaluate

    if args.loops:
        return _loops(args)
    if args.guided:
        return _eval_guided(args)
    model = model_path(args.world)
    teacher = args.teacher or (model.parent / "teacher" if (model.parent / "teacher").is_dir() else None)
    out = Path(args.out)
    report = evaluate(model, teacher, out, args.trajectories, args.frames, args.stability_minutes, args.gifs,
                      args.device, args.backend,
                      progress=lambda what: print(f"eval: {what}", file=sys.stderr, flush=True))
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report) if args.json else json.dumps(report, indent=1))
    return 0


def _eval_guided(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bridge.server.worlds import load_world
    from runtime.eval.guided import evaluate_guided

    world_spec = "guided" if args.world == "default" else args.world
    try:
        world = load_world(world_spec, device=args.device, dtype=args.dtype, backend="torch")
        baseline = load_world(args.baseline, device=args.device, dtype=args.dtype) if args.baseline else None
        report = evaluate_guided(world, Path(args.out), parse_levels(args.levels), args.frames,
                                 args.stability_minutes,
                                 progress=lambda what: print(f"eval: {what}", file=sys.stderr, flush=True),
                                 baseline=baseline)
    except ValueError as e:
        raise UserError(str(e)) from e
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "guided.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report) if args.json else json.dumps(report, indent=1))
    return 0


def _loops(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bridge.server.worlds import load_world
    from runtime.eval.loops import loop_closure
    from runtime.maze.world import MazeWorld

    try:
        revisits = tuple(float(s) for s in args.revisits.split(",") if s.strip())
    except ValueError as e:
        raise UserError(f"--revisits takes seconds separated by commas, e.g. 30,180 ({e})") from e
    try:
        world = load_world(args.world, device=args.device, dtype=args.dtype, backend=args.backend,
                           memory=not args.no_memory)
    except ValueError as e:
        raise UserError(str(e)) from e
    report = loop_closure(world, MazeWorld(level_seed=args.level, style=args.style), args.starts, args.size, revisits,
                          args.still_frames, progress=lambda what: print(f"eval: {what}", file=sys.stderr, flush=True))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "loops.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report) if args.json else json.dumps(report, indent=1))
    return 0


def _play(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bridge.tools.play import play

    world = args.world or (None if args.connect else default_world())
    result = play(world, args.connect, width=args.width, height=args.height, token=args.token,
                  serve_args=("--device", args.device, "--dtype", args.dtype), fps=args.fps,
                  scale=args.scale, screenshot_dir=Path(args.screenshot_dir), max_frames=args.frames)
    print(json.dumps(result) if args.json else
          f"worldbridge: played {result.get('frames', 0)} frames of {result['world']}")
    return 0


def _rollout(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from bridge.tools.rollout import rollout

    size = (args.width, args.height) if args.width or args.height else None
    if size and not (args.width and args.height):
        raise UserError("give both --width and --height, or neither")
    with tqdm(desc="rollout", unit="frame", disable=args.json) as bar:
        report = rollout(args.world, Path(args.actions), Path(args.out), connect=args.connect,
                         compare=args.compare, size=size, scale=args.scale, token=args.token,
                         serve_args=("--device", args.device, "--dtype", args.dtype), progress=bar.update,
                         on_total=lambda n: setattr(bar, "total", n))
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"worldbridge: {report['frames']} frames of {report['world']} -> {report['out']}")
    if "compare" in report:
        cmp = report["compare"]
        print(f"PSNR against {cmp['world']}: mean {cmp['psnr_mean']} dB, min {cmp['psnr_min']} dB "
              f"(per frame in {report['report']})")
    return 0


def _export_onnx(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bridge.server.worlds import model_path
    from runtime.neural.onnx import export_onnx

    model = model_path(args.model)
    if not (model / "config.yaml").is_file():
        raise UserError(f"{model}: not a model directory (no config.yaml)")
    out = Path(args.out) if args.out else model / ("onnx" if args.quantize is None else f"onnx-{args.quantize}")
    export_onnx(model, out, args.steps, args.quantize)
    print(json.dumps({"out": str(out), "files": sorted(f.name for f in out.iterdir())}))
    return 0


def _export_lingbot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from runtime.lingbot import directory as lingbot

    try:
        result = lingbot.export_episode(Path(args.data), args.episode, Path(args.out), args.frames)
    except (OSError, ValueError, IndexError) as e:
        raise UserError(str(e)) from None
    print(json.dumps(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="worldbridge", description="Serve interactive world models to game engines.")
    p.add_argument("--log-level", default=os.environ.get("WORLDBRIDGE_LOG", "INFO"))
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, epilog=EXAMPLES.get(name),
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    s = command("serve", "Run the world daemon (ZeroMQ ROUTER, protocol in docs/protocol.md).")
    s.add_argument("--world", default=default_world(),
                   help="maze, maze:LEVEL_SEED, default (the shipped model), guided, memory, guided-memory (the other "
                   "shipped models, models/), or a model directory")
    s.add_argument("--bind", default="tcp://127.0.0.1:5557", help="ZeroMQ endpoint (loopback unless --token)")
    s.add_argument("--token", default=os.environ.get("WORLDBRIDGE_TOKEN", ""), help="required in every hello")
    s.add_argument("--curve-secret-file", help="encrypt every connection with CurveZMQ (Python clients): a file "
                   "holding the daemon's z85 secret key; its public key is printed at start")
    s.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 (neural worlds)")
    s.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES,
                   help="neural worlds on torch: compute precision; auto = bfloat16 on CUDA, else the faster of "
                   "float32 and bfloat16 measured here (bfloat16 only where native: AVX-512 BF16, AMX)")
    s.add_argument("--steps", type=int, help="neural worlds: denoising steps per frame (default: the model's)")
    s.add_argument("--backend", default="torch", choices=BACKENDS,
                   help="neural worlds: torch, ONNX Runtime (float32, or int8 transformer weights), or auto: the "
                        "fastest measured on this machine, cached (runtime/neural/calibrate.py)")
    s.add_argument("--max-sessions", type=int, default=Limits.max_sessions)
    s.add_argument("--idle-timeout", type=float, default=Limits.idle_timeout_s, help="seconds")
    s.add_argument("--max-message-bytes", type=int, default=Limits.max_message_bytes)
    s.add_argument("--record-dir", help="let clients record their rendered frames into datasets here "
                   "(default: recording is refused)")
    s.add_argument("--record-max-frames", type=int, help="frames per recording (default 36000)")
    s.add_argument("--record-max-bytes", type=int,
                   help="bytes the recording directory may hold, frames counted uncompressed (default 4 GiB)")
    r = s.add_argument_group("replicas (docs/scaling.md; pip install 'worldbridge[cluster]')")
    r.add_argument("--replicas", type=int, default=0, help="serve N copies of the world as Ray actors behind this "
                   "endpoint, each session placed on the one with the most free memory (0: one world, in process)")
    r.add_argument("--ray-address", help="the Ray cluster to join: auto (the one this machine is in) or HOST:PORT; "
                   "default: start Ray on this machine")
    r.add_argument("--replica-memory-gb", type=float, help="memory each replica gives its sessions (default: its "
                   "GPU's free memory after loading, less 10%%; on CPU the host's available memory)")
    s.add_argument("--sequence-parallel", action="store_true", help="lingbot-fast under torchrun --nproc_per_node "
                   "N: split each chunk's tokens over the N processes (Ulysses; gloo on cpu, nccl on cuda, rank r "
                   "on cuda:r); rank 0 serves (docs/scaling.md)")
    s.set_defaults(func=_serve)

    d = command("demo", "Serve a world, walk a scripted route through it over the protocol, save a GIF.")
    d.add_argument("--world", default=default_world(guided=True),
                   help="default: the shipped guided model (else the default model, else the maze)")
    d.add_argument("--level", type=int, default=1003, help="a guided world: the engine's maze level (style varied; "
                   "the guided model never saw 1000-1007)")
    d.add_argument("--frames", type=int, default=160)
    d.add_argument("--size", type=int, default=128, help="requested frame width and height")
    d.add_argument("--out", default="out/demo.gif")
    d.set_defaults(func=_demo)

    g = sub.add_parser("data", help="Datasets for training.").add_subparsers(dest="data_command", required=True)
    gen = g.add_parser("generate", help="Explore the maze with scripted players and write a dataset.",
                       description="Explore the maze with scripted players and write a dataset (docs/dataset.md).",
                       epilog=EXAMPLES["data"], formatter_class=argparse.RawDescriptionHelpFormatter)
    gen.add_argument("--world", default="maze", help="maze or maze:LEVEL_SEED (one level; or use --levels)")
    gen.add_argument("--levels", help="several level seeds: a range A-B or a comma list (0-31, 0,4,9, 0-7,12); "
                     "episodes are split evenly over them, in order")
    gen.add_argument("--style", default="default", choices=["default", "varied"],
                     help="the levels' look: default (what the shipped model knows) or varied (palette, fog, sun "
                     "per level seed)")
    gen.add_argument("--guidance", action="store_true",
                     help="also store per frame the guidance buffers: flat colour, ids (uint16) and depth")
    gen.add_argument("--depth-dtype", default="float32", choices=["float32", "float16"],
                     help="with --guidance: float16 halves depth's size (about 3 significant digits)")
    gen.add_argument("--episodes", type=int, default=100)
    gen.add_argument("--frames", type=int, default=256, help="frames per episode (16 per second)")
    gen.add_argument("--size", type=int, default=128)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--out", required=True)
    gen.add_argument("--overwrite", action="store_true")
    gen.set_defaults(func=_data)

    t = command("train", "Train a world model (autoencoder, diffusion-forcing teacher, self-rollout student).")
    t.add_argument("config", help="training YAML (see runtime/configs/train_default.yaml)")
    t.add_argument("--until", default="decoder", choices=["autoencoder", "teacher", "student", "decoder"],
                   help="the last stage to train (decoder: a guided model's decoder on corrupted latents, when "
                   "its config gives it steps)")
    t.add_argument("--device", help="override the config: cpu, cuda, cuda:1")
    t.add_argument("--precision", choices=["float32", "bfloat16", "float16"], help="override the config")
    t.add_argument("--out", help="override the config's run directory")
    t.add_argument("--data", help="override the config's dataset directory")
    t.add_argument("--init", help="start from a trained model directory ('default', 'guided' = the shipped "
                   "models; a guided one fine-tunes on recordings with guidance)")
    t.set_defaults(func=_train)

    e = command("eval", "Score a model against the maze's ground truth (PSNR/SSIM, baselines, stability).")
    e.add_argument("--world", default="default", help="model directory, or 'default' (any world with --loops)")
    e.add_argument("--teacher", help="many-step teacher to compare with (default: <model>/../teacher if any)")
    e.add_argument("--trajectories", type=int, default=8)
    e.add_argument("--frames", type=int, default=257, help="frames per trajectory (start + rollout)")
    e.add_argument("--stability-minutes", type=float, default=10.0)
    e.add_argument("--gifs", type=int, default=3, help="side-by-side GIFs to write")
    e.add_argument("--out", default="out/eval")
    e.add_argument("--device", default="cpu")
    e.add_argument("--backend", default="torch", choices=BACKENDS, help="what the model and teacher run on")
    e.add_argument("--json", action="store_true", help="one line of JSON")
    lc = e.add_argument_group("loop closure (--loops)")
    lc.add_argument("--loops", action="store_true", help="score revisits instead: spin, out and back, square, "
                    "revisits after --revisits seconds, standing still; writes OUT/loops.json")
    lc.add_argument("--starts", type=int, default=4, help="start positions, stepped as one batch")
    lc.add_argument("--revisits", default="30,180", help="seconds between first visit and return, comma-separated")
    lc.add_argument("--still-frames", type=int, default=2000, help="frames of standing still (0: skip)")
    lc.add_argument("--size", type=int, default=128, help="frame size asked of the world")
    lc.add_argument("--level", type=int, default=0, help="maze level the trajectories are walked in")
    lc.add_argument("--style", default="default", choices=["default", "varied"],
                    help="that level's look (varied: the guided models' levels, e.g. --level 1000 --style varied)")
    lc.add_argument("--no-memory", action="store_true", help="a model with memory slots, served without "
                    "retrieving (the same weights without memory: the with/without comparison)")
    lc.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES, help="neural worlds on torch")
    gd = e.add_argument_group("guided rendering (--guided)")
    gd.add_argument("--guided", action="store_true", help="score a guided model (default: the shipped 'guided') on "
                    "unseen levels from engine guidance: PSNR/SSIM vs the truth over --frames, flicker, without "
                    "guidance, copy-last; a --stability-minutes guided run; writes OUT/guided.json")
    gd.add_argument("--baseline", help="a world without guidance scored on the same trajectories (e.g. default)")
    gd.add_argument("--levels", default="1000-1007", help="held-out maze level seeds, one trajectory each (the "
                    "guided model trained on 1-256)")
    e.set_defaults(func=_eval)

    b = command("bench", "Start a daemon and measure it through the real protocol on loopback.")
    b.add_argument("--world", default=default_world())
    b.add_argument("--frames", type=int, default=1000)
    b.add_argument("--width", type=int, default=128)
    b.add_argument("--height", type=int, default=128)
    b.add_argument("--format", default="rgb8", choices=["rgb8", "rgba8", "jpeg"])
    b.add_argument("--device", default="cpu")
    b.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES, help="neural worlds on torch (auto: as serve)")
    b.add_argument("--backend", default="torch", choices=BACKENDS, help="what the daemon serves with")
    b.add_argument("--sessions", default="1,2,4", help="concurrent session counts to measure")
    b.add_argument("--backends", default="torch-fp32,torch-bf16,onnx-fp32,onnx-int8",
                   help="neural worlds: in-process step time and quality by backend ('' skips)")
    b.add_argument("--long", type=int, default=2000, help="neural worlds: frame index compared with frame 50")
    b.add_argument("--out", help="also write the JSON report to this file")
    b.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    b.set_defaults(func=_bench)

    pl = command("play", "Drive a world live in a window: W A S D + mouse, HUD with fps and latency.")
    where = pl.add_mutually_exclusive_group()
    where.add_argument("--world", help="start a daemon for this world (stopped on exit); default: "
                       f"{default_world()}")
    where.add_argument("--connect", metavar="ADDR", help="use a running daemon, e.g. tcp://127.0.0.1:5557")
    pl.add_argument("--width", type=int, default=256, help="requested frame width (a model may use its own)")
    pl.add_argument("--height", type=int, default=256)
    pl.add_argument("--fps", type=float, default=FPS, help="pace the world: 16 is real time (worlds step 1/16 s "
                    "per frame); 0 = as fast as the world goes")
    pl.add_argument("--scale", type=int, help="window pixels per frame pixel (default: a window about 512 wide)")
    pl.add_argument("--screenshot-dir", default="out/screenshots", help="where F12 / P save frames")
    pl.add_argument("--frames", type=int, help="quit after this many frames (scripted runs, tests)")
    pl.add_argument("--token", default=os.environ.get("WORLDBRIDGE_TOKEN", ""), help="for --connect")
    pl.add_argument("--device", default="cpu", help="with --world: cpu, cuda (neural worlds)")
    pl.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES, help="neural worlds on torch (auto: as serve)")
    pl.add_argument("--json", action="store_true", help="print a JSON summary on exit")
    pl.set_defaults(func=_play)

    r = command("rollout", "Play an action script (YAML or a LingBot-World action directory) through a world.")
    where = r.add_mutually_exclusive_group(required=True)
    where.add_argument("--world", help="start a daemon for this world: maze, maze:SEED, default, a model dir")
    where.add_argument("--connect", metavar="ADDR", help="use a running daemon instead")
    r.add_argument("--actions", required=True, help="a .yaml action script or a LingBot-World action directory")
    r.add_argument("--out", required=True, help="out.gif, out.mp4 (needs ffmpeg) or a directory for PNGs")
    r.add_argument("--compare", metavar="WORLD", help="also run the script in this world (maze = ground truth): "
                   "side-by-side output and PSNR per frame")
    r.add_argument("--width", type=int, help="frame size (default: the intrinsics' size, else 128)")
    r.add_argument("--height", type=int)
    r.add_argument("--scale", type=int, default=1, help="output pixels per frame pixel")
    r.add_argument("--token", default=os.environ.get("WORLDBRIDGE_TOKEN", ""), help="for --connect")
    r.add_argument("--device", default="cpu")
    r.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES, help="neural worlds on torch (auto: as serve)")
    r.add_argument("--json", action="store_true", help="print the report as one line of JSON")
    r.set_defaults(func=_rollout)

    x = command("export-lingbot", "Turn a dataset episode into a LingBot-World action directory.")
    x.add_argument("--data", required=True, help="dataset directory (generated or recorded, docs/dataset.md)")
    x.add_argument("--episode", type=int, default=0)
    x.add_argument("--frames", type=int, help="only the first N frames")
    x.add_argument("--out", required=True, help="directory for poses.npy, intrinsics.npy, action.npy, image.jpg")
    x.set_defaults(func=_export_lingbot)

    o = command("export-onnx", "Export a model to ONNX: the per-frame step with the KV cache as inputs/outputs.")
    o.add_argument("model", help="model directory, or 'default'")
    o.add_argument("--out", help="directory (default: MODEL/onnx, or MODEL/onnx-int8)")
    o.add_argument("--quantize", choices=["int8"], help="int8 weights for the transformer (dynamic quantization)")
    o.add_argument("--steps", type=int, help="denoising steps the export is made for (default: the model's)")
    o.set_defaults(func=_export_onnx)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return args.func(args)
    except UserError as e:  # the user's mistake: one line, no traceback
        print(f"worldbridge: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

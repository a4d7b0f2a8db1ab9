"""Action scripts for `worldbridge rollout`: readable YAML steps, or a LingBot-World action directory.

YAML (docs/rollout.md has the full reference):

    seed: 7                       # episode seed (where the maze starts you); default 0
    fov_deg: 60                   # optional, sent with every input
    steps:
      - wait: 0.5                 # stand still for 0.5 s
      - {walk: forward, seconds: 2}
      - {turn: right, degrees: 90}
      - {look: up, degrees: 20}
      - {strafe: left, seconds: 1, run: true}
      - {walk: forward, turn: left, degrees: 90, seconds: 2}    # an arc

Both kinds compile to one Action per frame (runtime/world.py), frame 0 first. Worlds step 1/16 s per frame
(the maze's tick, the frame rate the neural world was trained at), so "seconds" means 16 frames each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bridge.tools.errors import UserError
from runtime.lingbot import directory as lingbot
from runtime.world import BUTTON_RUN, FPS, Action

TURN_DEG_PER_S = 90.0  # how fast a turn or look goes when the step gives only degrees
LOOK_DEG_PER_S = 60.0

DIRECTIONS = {
    "walk": {"forward": (0.0, 1.0), "back": (0.0, -1.0), "backward": (0.0, -1.0)},
    "strafe": {"right": (1.0, 0.0), "left": (-1.0, 0.0)},
    "turn": {"right": (1.0, 0.0), "left": (-1.0, 0.0)},
    "look": {"up": (0.0, 1.0), "down": (0.0, -1.0)},
}
STEP_KEYS = {"walk", "strafe", "turn", "look", "wait", "seconds", "frames", "degrees", "run", "speed"}
TOP_KEYS = {"seed", "fov_deg", "steps"}


@dataclass
class Script:
    actions: list[Action]  # actions[t] makes frame t from frame t-1; actions[0] the start frame
    seed: int = 0
    size: tuple[int, int] | None = None  # frame size the script was made for (LingBot intrinsics)
    start_image: np.ndarray | None = None  # (H, W, 3) uint8 first frame, for worlds that start from one
    kind: str = "yaml"  # "yaml" or "lingbot"

    @property
    def has_poses(self) -> bool:
        return any(a.pose is not None for a in self.actions)


def load(path: str | Path) -> Script:
    """A YAML script file or a LingBot-World action directory; UserError for anything else."""
    path = Path(path)
    if path.is_dir():
        return from_lingbot(path)
    if not path.exists():
        raise UserError(f"--actions {path}: no such file or directory")
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise UserError(f"--actions {path}: expected a .yaml action script or a LingBot-World action directory")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    return parse(doc, str(path))


def from_lingbot(path: Path) -> Script:
    """Every frame's camera pose (OpenCV camera-to-world) and field of view; W/A/S/D as movement if given."""
    try:
        d = lingbot.read(path)
        fov = d.fov_deg()
        lingbot.check_fov(fov)
    except (OSError, ValueError) as e:
        raise UserError(str(e)) from None
    moves = lingbot.move_from_wasd(d.wasd) if d.wasd is not None else np.zeros((len(d), 2))
    actions = [Action(move=(float(m[0]), float(m[1])), pose=p, fov_deg=float(f))
               for m, p, f in zip(moves, d.poses, fov)]
    return Script(actions, size=d.size, start_image=d.image, kind="lingbot")


def parse(doc: Any, where: str = "script") -> Script:
    """A loaded YAML document (a mapping with `steps`, or just the list of steps) -> Script."""
    if isinstance(doc, list):
        doc = {"steps": doc}
    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list) or not doc["steps"]:
        raise UserError(f"{where}: expected a list of steps, or a mapping with `steps:` (see docs/rollout.md)")
    unknown = set(doc) - TOP_KEYS
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                        f"allowed: {', '.join(sorted(TOP_KEYS))}")
    seed = doc.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise UserError(f"{where}: seed must be an integer, got {seed!r}")
    fov = doc.get("fov_deg")
    if fov is not None and not (_is_number(fov) and 1 <= fov <= 170):
        raise UserError(f"{where}: fov_deg must be a number from 1 to 170, got {fov!r}")
    actions = [Action(fov_deg=fov)]  # frame 0: the start, no input (as in docs/dataset.md)
    for i, step in enumerate(doc["steps"], 1):
        try:
            actions += _compile(step, fov)
        except UserError as e:
            raise UserError(f"{where}: step {i} ({_show(step)}): {e}") from None
    return Script(actions, seed=seed)


def _compile(step: Any, fov: float | None) -> list[Action]:
    """One step -> its frames' Actions."""
    if not isinstance(step, dict):
        raise UserError("a step is a mapping such as {walk: forward, seconds: 2}")
    unknown = set(step) - STEP_KEYS
    if unknown:
        raise UserError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                        f"allowed: {', '.join(sorted(STEP_KEYS))}")
    verbs = [k for k in ("walk", "strafe", "turn", "look", "wait") if k in step]
    if not verbs:
        raise UserError("say what to do: walk, strafe, turn, look or wait")
    if "wait" in step and len(verbs) > 1:
        raise UserError("wait cannot be combined with other moves")
    if "turn" in step and "look" in step:
        raise UserError("one of turn or look per step (degrees would be ambiguous)")
    for verb in verbs:
        if verb != "wait" and step[verb] not in DIRECTIONS[verb]:
            raise UserError(f"{verb}: expected one of {', '.join(DIRECTIONS[verb])}, got {step[verb]!r}")
    for key in ("seconds", "degrees", "speed", "frames"):
        if key in step and not (_is_number(step[key]) and step[key] >= 0):
            raise UserError(f"{key} must be a number >= 0, got {step[key]!r}")
    if "frames" in step and (not isinstance(step["frames"], int) or step["frames"] < 1):
        raise UserError(f"frames must be a whole number >= 1, got {step['frames']!r}")
    if "wait" in step and not (_is_number(step["wait"]) and step["wait"] >= 0):
        raise UserError(f"wait takes seconds, e.g. `wait: 1`, got {step['wait']!r}")
    turning = "turn" if "turn" in step else "look" if "look" in step else None
    if turning and "degrees" not in step:
        raise UserError(f"{turning} needs degrees, e.g. {{{turning}: {step[turning]}, degrees: 30}}")
    if "degrees" in step and not turning:
        raise UserError("degrees belongs to a turn or look")
    speed = float(step.get("speed", 1.0))
    if speed > 1:
        raise UserError(f"speed is a fraction of walking speed, 0 to 1 (use run: true to go faster), got {speed}")

    if "frames" in step:
        n = step["frames"]
    elif "seconds" in step:
        n = round(step["seconds"] * FPS)
    elif "wait" in step:
        n = round(step["wait"] * FPS)
    elif turning:
        rate = TURN_DEG_PER_S if turning == "turn" else LOOK_DEG_PER_S
        n = math.ceil(step["degrees"] / rate * FPS)
    else:
        raise UserError("say how long: seconds: S or frames: N")
    n = max(1, n)

    move = [0.0, 0.0]
    for verb in ("walk", "strafe"):
        if verb in step:
            dx, dy = DIRECTIONS[verb][step[verb]]
            move[0] += dx * speed
            move[1] += dy * speed
    look = (0.0, 0.0)
    if turning:
        dx, dy = DIRECTIONS[turning][step[turning]]
        per = float(step["degrees"]) / n
        look = (dx * per, dy * per)
    buttons = BUTTON_RUN if step.get("run") else 0
    return [Action(move=(move[0], move[1]), look=look, buttons=buttons, fov_deg=fov)] * n


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _show(step: Any) -> str:
    if isinstance(step, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in step.items()) + "}"
    return repr(step)



"""The folder tree is the architecture: every import between rooms runs the way docs/architecture.md says,
and no module imports itself back through another (no cycles, lazy imports inside functions included)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = "runtime.core"  # runtime/*.py: the World contract, camera, motion, precision

# room -> the rooms it may import (besides itself)
ALLOWED = {
    "bridge.protocol": set(),
    "bridge.client": {"bridge.protocol"},
    "bridge.server": {"bridge.protocol", CORE, "runtime.data"},  # the recorder writes the dataset format
    "bridge.tools": {"bridge.protocol", "bridge.client", "bridge.server", CORE, "runtime.maze", "runtime.neural",
                     "runtime.lingbot", "runtime.data", "runtime.training", "runtime.eval"},
    CORE: set(),
    "runtime.maze": {CORE},
    "runtime.neural": {CORE},
    "runtime.lingbot": {CORE, "runtime.data"},
    "runtime.data": {CORE, "runtime.maze"},
    "runtime.training": {CORE, "runtime.neural", "runtime.data", "runtime.eval"},  # eval: its metrics
    "runtime.eval": {CORE, "runtime.maze", "runtime.neural", "runtime.data"},
}
# The world registry is the one place the daemon's side learns which worlds exist.
REGISTRY = "bridge.server.worlds"
REGISTRY_MAY_IMPORT = {"runtime.maze.world", "runtime.neural", "runtime.lingbot.fast.world"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "runtime" and (len(parts) == 1 or (ROOT / "runtime" / f"{parts[1]}.py").is_file()):
        return CORE
    return ".".join(parts[:2])


def imports(path: Path) -> set[str]:
    """First-party modules `path` imports anywhere in it (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from runtime.lingbot import directory` imports the module runtime.lingbot.directory
            subs = [f"{node.module}.{a.name}" for a in node.names]
            found |= {s for s in subs if module_file(s)} or {node.module}
    return {m for m in found if m.split(".")[0] in ("bridge", "runtime")}


def module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def graph() -> dict[str, set[str]]:
    files = [p for top in ("bridge", "runtime") for p in (ROOT / top).rglob("*.py")]
    return {module_name(p): imports(p) for p in files}


def violations(g: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, targets in g.items():
        for target in targets:
            here, there = room(module), room(target)
            if here == there or there in ALLOWED[here] or (module == REGISTRY and target in REGISTRY_MAY_IMPORT):
                continue
            wrong.append(f"{module} -> {target} ({here} may import {sorted(ALLOWED[here]) or 'nothing'})")
    return sorted(wrong)


def cycles(g: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    found = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in sorted(g.get(m, ())):
            if state.get(t) == 1:
                found.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state and t in g:
                visit(t, [*stack, t])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [m])
    return found


def test_every_import_runs_the_allowed_way():
    wrong = violations(graph())
    assert not wrong, "imports against the layout:\n" + "\n".join(wrong)


def test_rooms_are_known():
    unknown = {room(m) for m in graph()} - set(ALLOWED) - {"bridge"}
    assert not unknown, f"folders missing from docs/architecture.md and ALLOWED: {unknown}"


def test_no_import_cycles():
    found = cycles(graph())
    assert not found, "import cycles:\n" + "\n".join(found)


def test_the_checks_can_fail(tmp_path):
    """A lazy import inside a function counts; a wrong arrow and a cycle are both reported."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from bridge.server.daemon import Daemon\n"
                     "    from runtime.lingbot import directory\n")
    assert imports(probe) == {"bridge.server.daemon", "runtime.lingbot.directory"}
    assert violations({"runtime.neural.world": {"bridge.server.daemon", "runtime.maze.world"}}) == [
        "runtime.neural.world -> bridge.server.daemon (runtime.neural may import ['runtime.core'])",
        "runtime.neural.world -> runtime.maze.world (runtime.neural may import ['runtime.core'])",
    ]
    assert cycles({"runtime.neural.world": {"runtime.neural.onnx"}, "runtime.neural.onnx": {"runtime.neural.world"}})

"""The Godot addon (godot_addon/) checked outside Godot, as CI runs it.

- every .gd file parses and passes gdlint's default rules (gdtoolkit, Godot 4 grammar);
- plugin.cfg, project.godot and the demo scene name files that exist, and the InputMap actions the
  WorldModelView reads are bound to W/S/A/D/Shift;
- the vector files the GDScript self-test reads (addons/worldbridge/tests/vectors/) are byte-identical to
  tests/vectors/, and the self-test names every vector of tests/vectors/index.json;
- the GDScript message builders write their keys in the order bridge/protocol/messages.py's builders do (the order the
  vectors hold; the 1.3 guidance map as bridge/protocol/guidance.encode writes it), and the GDScript constants agree
  with bridge/protocol/messages.py;
- the WorldModelView's guidance (1.3) is one exported toggle, and its capture shader writes what the readback reads.

The self-test itself needs Godot 4 (`godot --headless --path godot_addon -s
res://addons/worldbridge/tests/test_vectors.gd`). After regenerating tests/vectors, refresh the addon's copies with
`python tests/test_godot_addon.py --sync`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "godot_addon"
ADDON = PROJECT / "addons" / "worldbridge"
SELF_TEST = ADDON / "tests" / "test_vectors.gd"
ADDON_VECTORS = ADDON / "tests" / "vectors"
VECTORS = ROOT / "tests" / "vectors"
ACTION_KEYS = {"wb_forward": 87, "wb_back": 83, "wb_left": 65, "wb_right": 68, "wb_run": 4194325}  # W S A D Shift


def gd_files() -> list[Path]:
    return sorted(PROJECT.rglob("*.gd"))


def tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        pytest.fail(f"`{name}` not found: install gdtoolkit (`pip install 'gdtoolkit>=4.2'`, in the dev extras)",
                    pytrace=False)
    return path


def run_tool(name: str, files: list[Path]) -> None:
    r = subprocess.run([tool(name), *map(str, files)], capture_output=True, text=True, timeout=120, cwd=PROJECT)
    if r.returncode != 0:
        pytest.fail(f"{name} failed:\n{r.stdout}{r.stderr}", pytrace=False)


def res_path(path: str, relative_to: Path) -> Path:
    """A Godot path (res://... or relative to the referring file) as a path on disk."""
    if path.startswith("res://"):
        return PROJECT / path[len("res://"):]
    return (relative_to.parent / path).resolve()


def sections(text: str) -> dict[str, str]:
    """An INI-style Godot file (project.godot, plugin.cfg) split into {section: body}."""
    parts = re.split(r"^\[([^\]]+)\]\s*$", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def settings(body: str) -> dict[str, str]:
    return dict(re.findall(r"^([\w/]+)=(.*)$", body, flags=re.M))


def named_vectors() -> list[str]:
    return sorted(set(re.findall(r'"([\w.]+\.(?:msgpack|bin))"', SELF_TEST.read_text())))


def gd_function(source: str, name: str) -> str:
    """The text of one `static func NAME(...)` up to the next top-level definition."""
    end = r"(?=^(?:static func|func|class|const|var|##)|\Z)"
    m = re.search(rf"^static func {name}\(.*?{end}", source, flags=re.M | re.S)
    assert m, f"protocol.gd has no static func {name}"
    return m.group(0)


def gd_keys(body: str) -> list[str]:
    """String keys a GDScript function writes, in source order: `"key": value` and `msg["key"] = value`."""
    return [m.group(1) or m.group(2) for m in re.finditer(r'"(\w+)"\s*:(?!=)|\[\s*"(\w+)"\s*\]\s*=(?!=)', body)]


# ------------------------------------------------------------------------------------------------- GDScript


def test_gdscript_parses():
    run_tool("gdparse", gd_files())


def test_gdscript_lints():
    run_tool("gdlint", gd_files())


def test_every_gd_file_is_godot4():
    godot3 = [r"^tool\b", r"^export\(", r"^onready ", r"\byield\(", r"\bPool\w+Array\b", r"\bFile\.new\(",
              r"\bis_connected_to_host\(", r"\.instance\(\)", r"ImageTexture\.new\(\)\.create"]
    for f in gd_files():
        text = f.read_text()
        for pattern in godot3:
            assert not re.search(pattern, text, flags=re.M), f"{f.relative_to(ROOT)}: Godot 3 form {pattern!r}"


# ------------------------------------------------------------------------------------------ plugin and project


def test_plugin_cfg():
    cfg = sections((ADDON / "plugin.cfg").read_text())
    plugin = {k: v.strip('"') for k, v in settings(cfg["plugin"]).items()}
    assert {"name", "description", "author", "version", "script"} <= set(plugin), plugin
    assert all(plugin.values()), plugin
    script = ADDON / plugin["script"]
    assert script.is_file(), script
    text = script.read_text()
    assert text.startswith("@tool\nextends EditorPlugin\n"), "the plugin script must be an @tool EditorPlugin"
    enter = text.split("func _enter_tree()")[1].split("\nfunc ")[0]
    leave = text.split("func _exit_tree()")[1].split("\nfunc ")[0]
    assert "add_custom_type(" in enter and "remove_custom_type(" in leave
    types = re.findall(r'\["(\w+)", "(\w+)", "([\w/.]+\.gd)", "([\w/.]+\.svg)"\]', text)
    assert [t[0] for t in types] == ["WorldModelView"], types
    for _name, _base, gd, svg in types:
        assert (ADDON / gd).is_file(), gd
        assert ET.parse(ADDON / svg).getroot().tag == "{http://www.w3.org/2000/svg}svg", svg
        # A class_name equal to the custom type's name would make Godot register the node twice.
        assert f"class_name {_name}" not in (ADDON / gd).read_text()


def test_project_godot():
    project = sections((PROJECT / "project.godot").read_text())
    app = settings(project["application"])
    assert app["run/main_scene"] == '"res://demo/demo.tscn"'
    assert res_path("res://demo/demo.tscn", PROJECT).is_file()
    assert "res://addons/worldbridge/plugin.cfg" in project["editor_plugins"]
    actions = dict(re.findall(r'^(\w+)=\{.*?"physical_keycode":(\d+)', project["input"], flags=re.M | re.S))
    assert {k: int(v) for k, v in actions.items()} == ACTION_KEYS
    view = (ADDON / "world_model_view.gd").read_text()
    used = set(re.findall(r'^const ACTION_\w+ := "(\w+)"', view, flags=re.M))
    assert used == set(ACTION_KEYS), "WorldModelView reads actions that project.godot does not define"


def test_referenced_files_exist():
    refs = []
    for f in PROJECT.rglob("*"):
        if f.suffix in (".gd", ".tscn", ".godot", ".cfg"):
            text = f.read_text()
            refs += [(f, p) for p in re.findall(r'(?:preload|load)\("([^"]+)"\)', text)]
            refs += [(f, p) for p in re.findall(r'path="(res://[^"]+)"', text)]
            refs += [(f, p) for p in re.findall(r'"(res://[^"]+)"', text) if not p.endswith("/")]
    assert len(refs) >= 8, refs
    missing = [f"{f.relative_to(ROOT)} -> {p}" for f, p in refs if not res_path(p, f).exists()]
    assert not missing, missing


def test_demo_scene():
    scene = (PROJECT / "demo" / "demo.tscn").read_text()
    assert scene.startswith("[gd_scene") and "format=3" in scene.splitlines()[0]
    ext = dict((i, p) for p, i in re.findall(r'\[ext_resource type="Script" path="([^"]+)" id="([^"]+)"\]', scene))
    nodes = re.findall(r'\[node name="(\w+)" type="(\w+)"[^\]]*\]\n(.*?)(?=\n\[|\Z)', scene, flags=re.S)
    by_name = {name: (kind, body) for name, kind, body in nodes}
    kind, body = by_name["WorldModelView"]
    assert kind == "TextureRect" and "anchor_right = 1.0" in body and "anchor_bottom = 1.0" in body
    assert ext[re.search(r'script = ExtResource\("([^"]+)"\)', body).group(1)].endswith("world_model_view.gd")
    assert by_name["HUD"][0] == "Label"
    demo = (PROJECT / "demo" / "demo.gd").read_text()
    for needed in ("MOUSE_MODE_CAPTURED", "MOUSE_MODE_VISIBLE", "KEY_ESCAPE", "view.fps", "view.latency_ms"):
        assert needed in demo, needed


# ---------------------------------------------------------------------------------------------------- vectors


def test_self_test_vectors_are_copies():
    names = named_vectors()
    assert len(names) >= 20, names
    stale = [n for n in names if not (ADDON_VECTORS / n).is_file()
             or (ADDON_VECTORS / n).read_bytes() != (VECTORS / n).read_bytes()]
    assert not stale, f"{stale} differ from tests/vectors/: run `python tests/test_godot_addon.py --sync`"
    extra = sorted({p.name for p in ADDON_VECTORS.iterdir()} - set(names))
    assert not extra, f"{extra} in {ADDON_VECTORS.relative_to(ROOT)} are not read by the self-test"


def test_self_test_covers_every_vector():
    index = json.loads((VECTORS / "index.json").read_text())
    wanted = {f for v in index for f in v["files"]}
    assert wanted <= set(named_vectors()), sorted(wanted - set(named_vectors()))
    text = SELF_TEST.read_text()
    assert text.startswith("extends SceneTree\n") and "quit(1 if _failed > 0 else 0)" in text


# ------------------------------------------------------------------------------------------- protocol agreement


def python_key_orders() -> dict[str, list[str]]:
    """Key order of every client message, from bridge/protocol/messages.py's builders given every optional field."""
    import numpy as np

    from bridge.protocol import guidance as g
    from bridge.protocol import messages as p

    pose = {"p": [0.0, 0.0, 0.0], "q": [0.0, 0.0, 0.0, 1.0]}
    reset_image = [(VECTORS / "reset_image.msgpack").read_bytes(), (VECTORS / "reset_image.payload.bin").read_bytes()]
    image = p.parse(reset_image)[0]["image"]
    guidance = g.encode(colour=np.zeros((2, 4, 3), np.uint8), depth=np.ones((2, 4), np.float32),
                        ids=np.zeros((2, 4), np.uint16), depth_format="f16", row_order="bottom_up")
    return {
        "hello": list(p.hello("c", "godot", 8, 8, token="t", prompt="p")),
        "input": list(p.input_msg(1, 0.0, pose=pose, fov_deg=60.0, image=image, guidance=guidance)),
        "credit": list(p.credit(1)),
        "reset": list(p.reset(0, pose=pose, image=image, prompt="p")),
        "record_start": list(p.record_start("x")),
        "record_stop": list(p.record_stop()),
        "ping": list(p.ping(0.0)),
        "bye": list(p.bye()),
        "pose_map": list(p.input_msg(1, 0.0, pose=pose)["pose"]),
        "image_spec": list(image),
        "guidance": list(guidance),
    }


def test_builders_write_documented_key_order():
    source = (ADDON / "protocol.gd").read_text()
    orders = python_key_orders()
    assert set(orders) >= {"hello", "input", "credit", "reset", "ping", "bye", "guidance"}
    assert orders["input"][-1] == "guidance" and orders["guidance"][-1] == "ids"
    for name, keys in orders.items():
        assert gd_keys(gd_function(source, name)) == keys, f"protocol.gd {name}() key order"


def test_key_order_check_can_fail():
    swapped = 'static func bye() -> Dictionary:\n\tvar msg := {"seq": 1, "type": "bye"}\n\tmsg["pose"] = 1\n'
    assert gd_keys(gd_function(swapped, "bye")) == ["seq", "type", "pose"]


def test_constants_agree_with_python():
    from bridge.protocol import messages as p

    source = (ADDON / "protocol.gd").read_text()
    assert f"const MAJOR := {p.MAJOR}\n" in source and f"const MINOR := {p.MINOR}\n" in source
    assert f"const MAX_PROMPT_BYTES := {p.MAX_PROMPT_BYTES}\n" in source
    formats = re.search(r"^const FORMATS := \[(.*?)\]", source, flags=re.M).group(1)
    assert tuple(json.loads(f"[{formats}]")) == p.FORMATS
    buffers = re.search(r"^const GUIDANCE_BUFFERS := \[(.*?)\]", source, flags=re.M).group(1)
    assert tuple(json.loads(f"[{buffers}]")) == p.GUIDANCE_BUFFERS
    depth_formats = re.search(r"^const DEPTH_FORMATS := \[(.*?)\]", source, flags=re.M).group(1)
    assert tuple(json.loads(f"[{depth_formats}]")) == tuple(p.DEPTH_FORMATS)
    view = (ADDON / "world_model_view.gd").read_text()
    exported = re.search(r"@export_enum\((.*?)\) var format", view).group(1)
    assert tuple(json.loads(f"[{exported}]")) == p.FORMATS
    client = (ADDON / "worldbridge_client.gd").read_text()
    codes = {name: {int(c) for c in re.findall(r"\d+", re.search(rf"^const {name} := \[(.*?)\]", client,
                                                                   flags=re.M).group(1))}
             for name in ("FATAL_CODES", "RETRY_CODES", "NEW_SESSION_CODES")}
    E = p.ErrorCode
    assert codes == {"FATAL_CODES": {E.UNAUTHORIZED, E.VERSION}, "RETRY_CODES": {E.UNAVAILABLE},
                     "NEW_SESSION_CODES": {E.EXPIRED, E.NO_SESSION}}


def test_guidance_toggle_and_shader():
    from bridge.protocol import messages as p

    view = (ADDON / "world_model_view.gd").read_text()
    exported = re.findall(r"^@export\w*(?:\(.*?\))? var (\w*guidance\w*)", view, flags=re.M)
    assert exported == ["send_guidance"], f"guidance should be one exported toggle, found {exported}"
    assert re.search(r"^@export var send_guidance := false:$", view, flags=re.M)
    depth_format = re.search(r'^var guidance_depth_format := "(\w+)"', view, flags=re.M).group(1)
    assert depth_format in p.DEPTH_FORMATS
    assert 'preload("guidance_capture.gd")' in view
    capture = (ADDON / "guidance_capture.gd").read_text()
    shader = re.search(r'^const GEOMETRY_SHADER := """(.*?)"""', capture, flags=re.M | re.S).group(1)
    assert shader.startswith("shader_type spatial;\nrender_mode unshaded,")
    # R: the distance along the ray (VERTEX is in view space); G, B: the id's bytes as buffers_map reads them
    assert "ALBEDO = vec3(length(VERTEX), (low + 0.25) / 255.0, (high + 0.25) / 255.0);" in shader
    assert "Image.FORMAT_RGBAH" in capture and "convert(Image.FORMAT_RG8)" in capture
    assert "view.use_hdr_2d = hdr" in capture and "_make_view(true," in capture
    # the readback never blocks where Godot can do it asynchronously
    assert '"texture_get_data_async"' in capture and '"call_on_render_thread"' in capture


def gd_method(source: str, name: str) -> str:
    """The text of one `func NAME(...)` up to the next top-level definition."""
    m = re.search(rf"^func {name}\(.*?(?=^(?:static func|func|class|const|var|@export)|\Z)", source, flags=re.M | re.S)
    assert m, f"no func {name}"
    return m.group(0)


def test_recorded_input_pairs_image_pose_and_guidance():
    """While recording, an input's image, pose and guidance are of one frame: the input is kept until the frame
    it leads to has rendered (the next frame), then sent with that frame's image, the pose it was rendered from
    and the guidance capture started for it in the same frame, read before the guidance viewports render again."""
    view = (ADDON / "world_model_view.gd").read_text()
    capture = (ADDON / "guidance_capture.gd").read_text()
    process = gd_method(view, "_process")
    assert process.index("_send_recorded()") < process.index("_guidance.capture(send_now and _recording_now())")
    assert process.index("_guidance.capture(") < process.index("_send_input(capture_id)")
    send_input = gd_method(view, "_send_input")
    assert '"capture": capture_id' in send_input and "_recorded_job = {" in send_input
    # only _send_recorded sends an image; the other input carries none
    for call in re.findall(r"client\.send_input\(([^)]*)\)", view):
        assert call.split(", ")[5] in ("null", "image"), call
    assert "client.send_input(move, _look, buttons, pose, fov_deg, null, guidance)" in send_input
    recorded = gd_method(view, "_send_recorded")
    assert "_guidance.take_recorded(job[\"capture\"])" in recorded
    assert 'pose = captured["pose"]' in recorded and "image = null" in recorded
    assert "Engine.get_process_frames() == int(job[\"frame\"]) + 1" in recorded
    assert gd_method(view, "stop_recording").index("_send_recorded(false)") < \
        gd_method(view, "stop_recording").index("client.stop_recording()")
    assert "_send_recorded(false)" in gd_method(view, "reset_episode")
    # the capture side: a recorded frame's capture is kept (not read back asynchronously) and read with
    # get_image on the frame after it rendered
    assert re.search(r"^func capture\(for_record := false\) -> int:$", capture, flags=re.M)
    assert 'not job["record"]' in gd_method(capture, "capture")
    take = gd_method(capture, "take_recorded")
    assert "Engine.get_process_frames() != int(job[\"frame\"]) + 1" in take
    assert "get_texture().get_image()" in take and "buffers_map(" in take


def sync() -> None:
    """Copy the vector files the self-test names from tests/vectors/ into the addon."""
    ADDON_VECTORS.mkdir(parents=True, exist_ok=True)
    for stale in ADDON_VECTORS.iterdir():
        stale.unlink()
    for name in named_vectors():
        shutil.copyfile(VECTORS / name, ADDON_VECTORS / name)
    print(f"copied {len(named_vectors())} files to {ADDON_VECTORS.relative_to(ROOT)}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--sync"]:
        sync()
    else:
        sys.exit(pytest.main([__file__, "-q"]))

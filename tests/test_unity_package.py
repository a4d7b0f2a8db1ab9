"""The Unity package (unity_package/) checked outside Unity, as CI runs it.

- its plain C# core (Runtime/Core) compiled with mcs into a test program (Tests~/CoreTests) and run with mono
  against tests/vectors and against a real `worldbridge serve --world maze` daemon that this test starts, kills
  and restarts on the same port;
- its Unity-facing scripts (Runtime, Editor, the sample, the EditMode tests) compiled, as the asmdefs split them
  (Runtime/Core on its own as WorldBridge.Core, with no Unity assembly), against stand-ins of the Unity API they
  use (Tests~/UnityStubs), with the legacy Input Manager and with the Input System;
- its layout: package.json, asmdefs, and a .meta with a unique GUID for every asset Unity imports.

Needs Mono: `apt-get install mono-mcs mono-runtime` (as .ci/run does). Without it these tests fail, not skip.
"""

from __future__ import annotations

import json
import queue
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from bridge.client.launch import DaemonProcess

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "unity_package"
VECTORS = ROOT / "tests" / "vectors"
STUBS = PKG / "Tests~" / "UnityStubs"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` not found: the Unity package's C# tests need Mono; "
                    "install it with `apt-get install mono-mcs mono-runtime` (as .ci/run does)", pytrace=False)
    return path


def sources(*folders: str) -> list[str]:
    return sorted(str(p) for folder in folders for p in (PKG / folder).rglob("*.cs"))


def mcs(out: Path, srcs: list[str], *args: str) -> Path:
    """Compile with mcs as C# 7, warnings as errors; fails the test with the compiler's output."""
    cmd = [tool("mcs"), "-langversion:7", "-warnaserror+", "-nologo", "-debug", f"-out:{out}", *args, *srcs]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        pytest.fail(f"mcs failed for {out.name}:\n{r.stdout}{r.stderr}", pytrace=False)
    return out


def mono(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([tool("mono"), "--debug", *args], capture_output=True, text=True, timeout=timeout)


def check_runner(r: subprocess.CompletedProcess) -> None:
    out = r.stdout + r.stderr
    assert r.returncode == 0 and re.search(r"^\d+ passed, 0 failed$", r.stdout, re.M), out
    print(out)


def test_mono_is_installed() -> None:
    tool("mcs")
    tool("mono")


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("unity_package")
    # the core alone, with no Unity assembly around: it must not use any Unity API
    mcs(out / "CoreTests.exe", sources("Runtime/Core", "Tests~/CoreTests"), "-r:System.dll", "-r:System.Core.dll")
    return out


def test_core_matches_the_protocol_vectors(build: Path) -> None:
    check_runner(mono(str(build / "CoreTests.exe"), "vectors", str(VECTORS), timeout=60))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_core_against_a_live_daemon(build: Path) -> None:
    """Handshake, 100+ frames with inputs, 422/404 errors then more frames, reset, ping, the daemon killed
    (SIGKILL) and restarted on the same port, reconnect, and a stop that joins the client thread."""
    bind = f"tcp://127.0.0.1:{free_port()}"
    daemon = DaemonProcess("maze", bind=bind, timeout=60)
    proc = subprocess.Popen([tool("mono"), "--debug", str(build / "CoreTests.exe"), "live", bind],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    log: list[str] = []
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail("live C# tests timed out:\n" + "\n".join(log), pytrace=False)
            if line is None:
                break
            log.append(line)
            if line == "ACTION kill":
                daemon.proc.kill()  # no bye, no FIN from a clean shutdown: the socket just dies
                daemon.proc.wait(10)
                proc.stdin.write("ok\n")
                proc.stdin.flush()
            elif line == "ACTION start":
                time.sleep(0.3)  # let the client fail a reconnect attempt or two first
                daemon = DaemonProcess("maze", bind=bind, timeout=60)
                proc.stdin.write("ok\n")
                proc.stdin.flush()
        rc = proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        daemon.stop()
    out = "\n".join(log)
    print(out)
    daemon_log = "\n".join(daemon.log)
    assert rc == 0 and re.search(r"^\d+ passed, 0 failed$", out, re.M), f"{out}\n--- daemon log\n{daemon_log}"
    assert "PASS LiveTests.ReconnectsAfterTheDaemonIsKilledAndRestarted" in out


def test_unity_scripts_compile_against_the_unity_api(tmp_path: Path) -> None:
    """Runtime, Editor, the sample and the EditMode tests, as Unity's asmdefs split them, against stand-ins
    whose signatures follow the Unity scripting reference; once with the legacy Input Manager, once with the
    Input System. The NUnit tests then run on the stand-in NUnit."""
    stubs = mcs(tmp_path / "UnityStubs.dll", sources("Tests~/UnityStubs/Api"), "-target:library",
                "-nowarn:67,649,169,414")
    for variant, defines in (("legacy", []), ("inputsystem", ["-define:ENABLE_INPUT_SYSTEM;WORLDBRIDGE_INPUT_SYSTEM"])):
        out = tmp_path / variant
        out.mkdir()
        system = ["-r:System.dll", "-r:System.Core.dll"]
        core = mcs(out / "WorldBridge.Core.dll", sources("Runtime/Core"), "-target:library", *system)
        ref = [f"-r:{stubs}", *system, f"-r:{core}"]
        not_core = [s for s in sources("Runtime") if PKG / "Runtime" / "Core" not in Path(s).parents]
        runtime = mcs(out / "WorldBridge.Runtime.dll", not_core, "-target:library", *ref, *defines)
        mcs(out / "WorldBridge.Editor.dll", sources("Editor"), "-target:library", *ref, f"-r:{runtime}", *defines)
        mcs(out / "WorldBridge.Samples.BasicScene.dll", sources("Samples~"), "-target:library", *ref, f"-r:{runtime}")
        tests = mcs(out / "WorldBridge.Tests.exe", sources("Tests") + sources("Tests~/UnityStubs/NUnitRunner"),
                    *ref, f"-r:{runtime}")
        shutil.copy(stubs, out)
        check_runner(mono(str(tests), timeout=60))


def test_package_layout() -> None:
    manifest = json.loads((PKG / "package.json").read_text())
    assert manifest["name"] == "com.worldbridge.client"
    assert manifest["version"] == "0.1.0"
    assert manifest["unity"] == "2021.3"
    assert manifest["displayName"] and manifest["description"]
    for sample in manifest["samples"]:
        assert (PKG / sample["path"]).is_dir(), sample
    assert manifest["samples"][0]["path"] == "Samples~/BasicScene"
    for doc in ("README.md", "CHANGELOG.md", "LICENSE.md", "Documentation~/worldbridge.md"):
        assert (PKG / doc).is_file(), doc
    assert "MIT" in (PKG / "LICENSE.md").read_text()

    asmdefs = {p.relative_to(PKG).as_posix(): json.loads(p.read_text()) for p in PKG.rglob("*.asmdef")}
    runtime = asmdefs["Runtime/WorldBridge.Runtime.asmdef"]
    editor = asmdefs["Editor/WorldBridge.Editor.asmdef"]
    tests = asmdefs["Tests/WorldBridge.Tests.asmdef"]
    core = asmdefs["Runtime/Core/WorldBridge.Core.asmdef"]
    sample = asmdefs["Samples~/BasicScene/WorldBridge.Samples.BasicScene.asmdef"]
    assert core["name"] == "WorldBridge.Core" and core["noEngineReferences"] and not core["references"]
    for asmdef in (runtime, editor, tests, sample):  # asmdef references are not transitive: each names the core
        assert "WorldBridge.Core" in asmdef["references"], asmdef["name"]
    assert runtime["name"] == "WorldBridge.Runtime" and not runtime.get("includePlatforms")
    assert editor["includePlatforms"] == ["Editor"] and "WorldBridge.Runtime" in editor["references"]
    assert tests["includePlatforms"] == ["Editor"] and "WorldBridge.Runtime" in tests["references"]
    assert "nunit.framework.dll" in tests["precompiledReferences"]
    assert "UNITY_INCLUDE_TESTS" in tests["defineConstraints"]

    # The package is immutable once installed by git URL, so Unity cannot write .meta files: every file and
    # folder it imports (not those under a folder ending in ~, not hidden ones) needs one, each GUID unique.
    guids: dict[str, Path] = {}
    for path in sorted(PKG.rglob("*")):
        rel = path.relative_to(PKG)
        if any(part.endswith("~") or part.startswith(".") for part in rel.parts) or path.suffix == ".meta":
            continue
        meta = path.with_name(path.name + ".meta")
        assert meta.is_file(), f"{rel} has no .meta"
        text = meta.read_text()
        guid = re.search(r"^guid: ([0-9a-f]{32})$", text, re.M)
        assert guid, f"{meta} has no guid"
        assert guid[1] not in guids, f"{rel} and {guids.get(guid[1])} share a GUID"
        guids[guid[1]] = rel
        assert ("folderAsset: yes" in text) == path.is_dir(), meta
    for meta in PKG.rglob("*.meta"):
        if not any(part.endswith("~") for part in meta.relative_to(PKG).parts):
            assert meta.with_name(meta.name[: -len(".meta")]).exists(), f"orphan {meta}"
    # scripts the sample's scene setup refers to keep stable GUIDs when imported
    for script in (PKG / "Samples~").rglob("*.cs"):
        assert script.with_name(script.name + ".meta").is_file(), script

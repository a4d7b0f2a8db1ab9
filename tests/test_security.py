"""Security promises beyond the token and bind checks of test_daemon.py: CurveZMQ encryption, and a source
audit that nothing a client sends can reach pickle, eval or an unchecked loader."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import zmq

from bridge.client.client import Client
from bridge.client.launch import DaemonProcess
from bridge.protocol import messages as p
from bridge.server.daemon import Daemon, DaemonConfig, check_bind
from runtime.maze.world import MazeWorld

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def curve_daemon():
    public, secret = zmq.curve_keypair()
    d = Daemon(MazeWorld(), DaemonConfig("tcp://127.0.0.1:0", curve_secret=secret.decode())).start()
    yield d, public.decode()
    d.stop()


def test_curve_client_with_the_daemons_key_is_served(curve_daemon):
    d, public = curve_daemon
    assert d.curve_public_key == public
    with Client(d.address, width=16, height=16, curve_server_key=public) as c:
        c.send_input((0.0, 1.0))
        c.grant(1)
        assert c.recv_frame().image.shape == (16, 16, 3)


@pytest.mark.parametrize("who", ["plain", "wrong key"])
def test_curve_daemon_ignores_clients_without_its_key(curve_daemon, who):
    """A NULL-mechanism client (a raw ZMTP client, a sniffer's replay) or one expecting another daemon's key
    completes no handshake, so not even an error reaches it."""
    d, _ = curve_daemon
    other_public, _ = zmq.curve_keypair()
    with pytest.raises(TimeoutError):
        Client(d.address, width=16, height=16, timeout=1.5, curve_server_key="" if who == "plain"
               else other_public.decode())


def test_serve_reads_the_curve_secret_from_a_file(tmp_path):
    public, secret = zmq.curve_keypair()
    key = tmp_path / "server.key"
    key.write_bytes(secret)
    with DaemonProcess("maze", "--curve-secret-file", str(key)) as d:
        with Client(d.address, width=16, height=16, curve_server_key=public.decode()) as c:
            c.grant(1)
            c.recv_frame()
        assert any(public.decode() in line for line in d.log)  # printed for the operator to hand out
        assert not any(secret.decode() in line for line in d.log)


def test_curve_is_not_authentication():
    """Curve hides the traffic but lets in any client that knows the (public) key: the LAN still needs a token."""
    _, secret = zmq.curve_keypair()
    with pytest.raises(ValueError, match="loopback"):
        Daemon(MazeWorld(), DaemonConfig("tcp://0.0.0.0:0", curve_secret=secret.decode()))
    check_bind("tcp://0.0.0.0:0", "token")


def test_decoder_and_socket_limits_follow_the_configuration():
    d = Daemon(MazeWorld(), DaemonConfig("tcp://127.0.0.1:0", p.Limits(max_message_bytes=1000)))
    try:
        assert d._router.getsockopt(zmq.MAXMSGSIZE) == 2000
        assert d._router.getsockopt(zmq.SNDHWM) <= 1000 and d._router.getsockopt(zmq.RCVHWM) <= 1000
        with pytest.raises(p.ProtocolError) as e:
            p.parse([p.pack({**p.ping(0.0), "pad": "x" * 1000})], d.limits)
        assert e.value.code == 413
    finally:
        d._router.close(0)
        d._out_pull.close(0)
        d._out_push.close(0)
        d._ctx.term()


# ------------------------------------------------------------------------------------------- source audit

SOURCES = sorted(p for d in ("bridge", "runtime", "benchmarks") for p in (ROOT / d).rglob("*.py"))
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "marshal", "shelve", "cloudpickle", "joblib"}


def calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if not isinstance(f, (ast.Attribute, ast.Name)):
                continue
            name = f.attr if isinstance(f, ast.Attribute) else f.id
            owner = "" if isinstance(f, ast.Name) else f.value.id if isinstance(f.value, ast.Name) else "<expr>"
            yield node, owner, name


def kwarg(node: ast.Call, name: str):
    for k in node.keywords:
        if k.arg == name:
            return k.value.value if isinstance(k.value, ast.Constant) else "<expr>"
    return None


@pytest.mark.parametrize("path", SOURCES, ids=[str(s.relative_to(ROOT)) for s in SOURCES])
def test_no_unsafe_deserialization_or_eval(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            assert not {n.split(".")[0] for n in names if n} & UNSAFE_MODULES, f"{path}:{node.lineno} imports {names}"
    for node, owner, name in calls(tree):
        where = f"{path.relative_to(ROOT)}:{node.lineno}"
        assert name not in ("eval", "exec", "compile") or owner not in ("", "builtins"), f"{where}: {name}()"
        if owner == "torch" and name == "load":
            assert kwarg(node, "weights_only") is True, f"{where}: torch.load without weights_only=True"
        if owner in ("np", "numpy") and name == "load":
            assert kwarg(node, "allow_pickle") in (None, False), f"{where}: np.load(allow_pickle=True)"
        if owner == "yaml":
            assert name not in ("load", "unsafe_load", "full_load", "load_all"), f"{where}: yaml.{name}"


def test_the_token_is_compared_in_constant_time():
    tree = ast.parse((ROOT / "bridge" / "server" / "daemon.py").read_text())
    compares = [n for n in ast.walk(tree) if isinstance(n, ast.Compare)
                and any(isinstance(s, ast.Attribute) and s.attr == "token" for s in ast.walk(n))]
    assert not compares, "the token must only be checked with hmac.compare_digest"
    assert any(owner == "hmac" and name == "compare_digest" for _, owner, name in calls(tree))


def test_a_start_image_is_checked_against_its_header_before_decoding(monkeypatch):
    """A JPEG of a few megabytes can declare 12000x12000 pixels: no pixel is decoded unless the header matches
    the (size-limited) spec, and only the JPEG parser ever sees the bytes."""
    import io

    from PIL import Image, JpegImagePlugin

    from bridge.protocol.images import decode as decode_image

    decoded = []
    load = JpegImagePlugin.JpegImageFile.load
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", lambda self: decoded.append(self.size) or load(self))

    def encoded(size: tuple[int, int], fmt: str) -> bytes:
        buf = io.BytesIO()
        Image.new("RGB", size, (1, 2, 3)).save(buf, format=fmt)
        return buf.getvalue()

    spec = {"width": 8, "height": 8, "format": "jpeg", "row_order": "top_down"}
    for data in (encoded((64, 48), "JPEG"), encoded((8, 8), "PNG"), encoded((8, 8), "BMP")):
        with pytest.raises(p.ProtocolError) as e:
            decode_image(spec, data)
        assert e.value.code == 422
    assert decoded == []
    assert decode_image(spec, encoded((8, 8), "JPEG")).shape == (8, 8, 3) and set(decoded) == {(8, 8)}

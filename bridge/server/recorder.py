"""Recording what an engine renders into a training dataset (docs/protocol.md "Recording", docs/dataset.md).

While a session records, each `input` that carries an image (the engine's own rendered frame) becomes one row
of the dataset: the image, that input's controller state, its camera pose and field of view. The daemon picks
every path itself: a recording is the directory <record dir>/<sanitized name>[-N], never anything the client
spells out.

Guidance (1.3) is recorded too, so a guided model can be fine-tuned on the engine's own buffers and frames. The
rule (docs/protocol.md 4a): a recording stores guidance when its session's world takes guidance, or else when
guidance is in force (the input's own, or the session's held one) for its first recorded image. Every image of
such a recording then needs guidance with depth in force, or the whole input is refused (422 naming the field),
exactly like an image without its pose: every file of a dataset has the same arrays (training stacks them), and
a gap is the engine's mistake, told at once, not a silently weaker recording. Buffers the engine left out are
stored as zeros (colour black, id 0); buffers of a fraction of the size are repeated up (nearest neighbour).

Work is split so that nothing slow runs where it could stall other sessions:
- the socket thread only validates, reserves budget and queues the received bytes (no decoding, no I/O beyond
  creating the recording's directory);
- one writer thread decodes the images, assembles episodes and writes them with runtime/data/dataset.py, then
  sends `record_done` through its own inproc PUSH socket (only the socket thread touches the ROUTER).
The stepping thread never sees recordings at all.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from bridge.protocol import images, poses
from bridge.protocol import messages as protocol
from bridge.protocol.guidance import GuidanceBuffers
from bridge.protocol.messages import ErrorCode, ProtocolError
from bridge.server.session import SentGuidance, Session
from runtime.data.dataset import DatasetWriter
from runtime.guidance import resize

log = logging.getLogger("worldbridge.recorder")

MAX_NAME = 64
ROW_BYTES = 64  # what one row's inputs, pose and fov take besides its pixels, for the byte budget
DEPTH_DTYPES = {"f32": "float32", "f16": "float16"}  # wire depth_format -> the stored array's dtype
GUIDANCE_PIXEL_BYTES = 3 + 2  # stored colour (rgb8) and ids (uint16) per pixel, besides depth's 2 or 4


def sanitize(name: str) -> str:
    """Keep only [A-Za-z0-9_-], at most MAX_NAME characters; "recording" when nothing is left."""
    return re.sub(r"[^A-Za-z0-9_-]", "", name)[:MAX_NAME] or "recording"


@dataclass(frozen=True)
class RecordConfig:
    dir: Path  # every recording lands in a new directory inside this one
    max_frames: int = 36_000  # per recording (10 minutes at 60 frames/s)
    max_bytes: int = 4 << 30  # the whole directory: what was there at start + every frame since, uncompressed
    episode_frames: int = 128  # frames per episode file
    max_pending_bytes: int = 256 << 20  # images received but not yet written, all recordings together


@dataclass
class _Row:
    image: dict[str, Any]  # the input's image spec
    payload: bytes
    move: tuple[float, float]
    look: tuple[float, float]
    buttons: int
    pose: np.ndarray  # (4, 4) canonical camera-to-world
    fov_deg: float
    t: float
    guidance: GuidanceBuffers | None = None  # in a recording that stores guidance: what was in force
    depth_dtype: str = ""  # the recording's stored depth dtype, with `guidance`
    pending: int = 0  # bytes counted in Recorder._pending for this row


@dataclass
class _Recording:
    # socket thread
    name: str
    path: Path
    identity: bytes
    sid: str
    width: int
    height: int
    frames: int = 0  # images accepted
    guided: bool | None = None  # stores guidance; None: decided by the first recorded image
    depth_dtype: str = ""  # float16 / float32: the first recorded guidance's depth_format decides
    look: tuple[float, float] = (0.0, 0.0)  # look of inputs since the last recorded image
    reported: set[int] = field(default_factory=set)  # error codes already sent (once each, not per frame)
    # writer thread
    writer: DatasetWriter | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)  # the episode being filled
    prev: list[dict[str, Any]] = field(default_factory=list)  # the last episode written
    times: list[float] = field(default_factory=list)
    written: int = 0  # distinct frames in the files
    failed: bool = False


class Recorder:
    """All recordings of one daemon. start/add/stop/end are called from the socket thread only."""

    def __init__(self, config: RecordConfig, ctx: zmq.Context, endpoint: str, fov_deg: float = 60.0):
        self.config, self.fov_deg = config, fov_deg
        self.root = Path(config.dir).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.used = sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file() and not f.is_symlink())
        self._active: dict[bytes, _Recording] = {}
        self._pending = 0  # bytes queued for the writer
        self._pending_lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue()
        self._ctx, self._endpoint = ctx, endpoint
        self._thread = threading.Thread(target=self._write_loop, name="wb-record", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------------------------------- socket thread

    def start(self, s: Session, wish: str) -> dict[str, Any]:
        """record_start: create the recording's directory; returns record_ok."""
        if s.identity in self._active:
            raise ProtocolError(ErrorCode.RECORD_STATE, "already recording; send record_stop first", "record_start")
        base = sanitize(wish)
        for n in range(1, 1000):
            name = base if n == 1 else f"{base}-{n}"
            path = self.root / name
            try:
                path.mkdir()  # atomic: two sessions asking for one name get different directories
                break
            except FileExistsError:
                continue
        else:
            raise ProtocolError(ErrorCode.RECORD_STATE, f"too many recordings named {base!r}", "record_start")
        if path.resolve().parent != self.root:  # cannot happen with a sanitized name; refuse if it ever does
            raise ProtocolError(ErrorCode.RECORD_STATE, "recording path escapes the directory", "record_start")
        rec = _Recording(name, path, s.identity, s.sid, s.width, s.height)
        if s.guidance_offer is not None:  # a guided world's recording stores guidance from its first image on
            rec.guided = True
        self._active[s.identity] = rec
        self._queue.put(("open", rec, f"{s.engine}:{name}"))
        log.info("session %s records into %s", s.sid, path)
        remaining = max(0, self.config.max_bytes - self.used)
        return protocol.record_ok(name, s.width, s.height, self.config.max_frames, remaining)

    def add(self, s: Session, msg: dict[str, Any], payload: bytes | None,
            sent: SentGuidance | None = None) -> dict[str, Any] | None:
        """An input of session `s`, before it is applied; `sent`: its own guidance (else the session's held one
        is in force). Raises ProtocolError when its image cannot be taken (the whole input is refused); returns
        an error to send when the image is dropped but the input stands (limits reached, writer behind); None
        otherwise."""
        rec = self._active.get(s.identity)
        image = msg["image"]
        if image is None:
            if rec is not None:  # look between recorded images adds up, as it does for the world
                rec.look = (rec.look[0] + msg["look"][0], rec.look[1] + msg["look"][1])
            return None
        if rec is None:
            raise ProtocolError(ErrorCode.RECORD_STATE, "an input carries an image but the session is not "
                                "recording; send record_start first", "input")
        if msg["pose"] is None:
            raise ProtocolError(ErrorCode.BAD_FIELD, 'an input with an image needs "pose" (the camera that '
                                "rendered it)", "input")
        if (image["width"], image["height"]) != (rec.width, rec.height):
            raise ProtocolError(ErrorCode.BAD_FIELD, f'"image" is {image["width"]}x{image["height"]}; this '
                                f"session records {rec.width}x{rec.height} (the welcome's size)", "input")
        if image["format"] == "jpeg":
            images.check_jpeg(image, payload)
        force = sent if sent is not None else s.sent_guidance  # the guidance in force for this image
        guided = rec.guided if rec.guided is not None else force is not None
        if guided:
            self._check_guidance(rec, force)
        depth_dtype = (rec.depth_dtype or DEPTH_DTYPES[force.depth_format]) if guided else ""
        look = (rec.look[0] + msg["look"][0], rec.look[1] + msg["look"][1])
        pixels = rec.width * rec.height
        cost = pixels * 3 + ROW_BYTES  # what the files hold of this row, uncompressed
        if guided:
            cost += pixels * (GUIDANCE_PIXEL_BYTES + np.dtype(depth_dtype).itemsize)
        if rec.frames >= self.config.max_frames or self.used + cost > self.config.max_bytes:
            rec.look = look
            return self._once(rec, ErrorCode.RECORD_FULL, (
                f"recording {rec.name} is full ({rec.frames} frames; limits: {self.config.max_frames} frames, "
                f"{self.config.max_bytes} bytes in the directory): later images are not recorded; "
                "record_stop saves what was recorded"))
        buffers = force.buffers if guided else None
        # what the queue holds for this row: the image's bytes and the guidance's arrays (a held guidance is
        # counted with every row that refers to it: an upper bound, never an underestimate)
        queued = len(payload)
        if buffers is not None:
            queued += sum(b.nbytes for b in (buffers.colour, buffers.depth, buffers.ids) if b is not None)
        with self._pending_lock:
            busy = self._pending + queued > self.config.max_pending_bytes
            if not busy:
                self._pending += queued
        if busy:
            rec.look = look
            return self._once(rec, ErrorCode.RECORD_BUSY, "the recording writer is behind: images are dropped "
                              "until it catches up (send smaller or fewer images)")
        rec.reported.discard(ErrorCode.RECORD_BUSY)
        if rec.guided is None or (guided and not rec.depth_dtype):  # decided by the first image recorded
            log.info("recording %s %s guidance", rec.name, "stores" if guided else "stores no")
        rec.guided, rec.depth_dtype = guided, depth_dtype
        rec.frames += 1
        rec.look = (0.0, 0.0)
        self.used += cost
        pose = poses.to_canonical(s.engine, msg["pose"]["p"], msg["pose"]["q"])
        fov = msg["fov_deg"] if msg["fov_deg"] is not None else (s.fov_deg or self.fov_deg)
        move = tuple(max(-1.0, min(1.0, v)) for v in msg["move"])
        self._queue.put(("row", rec, _Row(image, payload, move, look, msg["buttons"], pose, fov, msg["t"],
                                          buffers, depth_dtype, queued)))
        return None

    @staticmethod
    def _check_guidance(rec: _Recording, force: SentGuidance | None) -> None:
        """In a recording that stores guidance, an image needs guidance with depth in force (the model's nearness
        feature has no stand-in): else the whole input is refused, as an image without its pose is."""
        if force is None:
            raise ProtocolError(ErrorCode.BAD_FIELD, f'"guidance" is required: recording {rec.name} stores '
                                "guidance (its world takes guidance, or its first image had some), so every image "
                                "needs guidance in force; send it with the image or before it (it is held until a "
                                "reset)", "input")
        if force.buffers.depth is None:
            raise ProtocolError(ErrorCode.BAD_FIELD, f'"guidance.depth" is required: recording {rec.name} stores '
                                "guidance, which needs the depth of every image", "input")

    def stop(self, s: Session) -> None:
        """record_stop: the writer finishes the files, then sends record_done."""
        rec = self._active.pop(s.identity, None)
        if rec is None:
            raise ProtocolError(ErrorCode.RECORD_STATE, "not recording", "record_stop")
        self._queue.put(("finish", rec, True))

    def end(self, identity: bytes) -> None:
        """The session is gone (bye, expiry, a new hello): keep what it recorded."""
        rec = self._active.pop(identity, None)
        if rec is not None:
            self._queue.put(("finish", rec, False))

    def close(self, timeout: float = 30.0) -> None:
        """Finish every recording and stop the writer (after the socket thread has stopped)."""
        for identity in list(self._active):
            self.end(identity)
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the recording writer did not finish within %.0f s", timeout)

    @staticmethod
    def _once(rec: _Recording, code: ErrorCode, message: str) -> dict[str, Any] | None:
        if code in rec.reported:
            return None
        rec.reported.add(code)
        return protocol.error(code, message, "input")

    # ---------------------------------------------------------------------------------------- writer thread

    def _write_loop(self) -> None:
        push = self._ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.connect(self._endpoint)
        try:
            while (item := self._queue.get()) is not None:
                kind, rec, arg = item
                try:
                    if kind == "open":
                        rec.writer = DatasetWriter(rec.path, arg, rec.width, rec.height, 16, self.fov_deg,
                                                   source="recording")
                        rec.writer.save_meta()
                    elif kind == "row":
                        self._take(rec, arg)
                    else:
                        self._finish(rec, arg, push)
                except Exception as e:  # disk full, directory removed: this recording stops, others go on
                    self._fail(rec, e, push)
        finally:
            push.close(0)

    def _take(self, rec: _Recording, row: _Row) -> None:
        with self._pending_lock:
            self._pending -= row.pending
        if rec.failed:
            return
        try:
            pixels = images.decode(row.image, row.payload, "input")
        except ProtocolError as e:  # a JPEG whose header was fine but whose data is not
            log.warning("recording %s: frame skipped: %s", rec.name, e.message)
            return
        entry = {"frames": pixels, "move": row.move, "look": row.look, "buttons": row.buttons,
                 "poses": row.pose, "fov_deg": row.fov_deg}
        if row.guidance is not None:
            entry.update(self._guidance_arrays(rec, row.guidance, row.depth_dtype))
            if "guidance" not in rec.writer.meta:
                self._guidance_meta(rec, row.depth_dtype)
        rec.rows.append(entry)
        rec.times.append(row.t)
        if len(rec.rows) == self.config.episode_frames:
            self._write(rec, rec.rows)
            rec.written += len(rec.rows)
            rec.prev, rec.rows = rec.rows, []

    @staticmethod
    def _guidance_arrays(rec: _Recording, g: GuidanceBuffers, depth_dtype: str) -> dict[str, np.ndarray]:
        """One row's stored guidance at the recording's size: nearest neighbour (ids and depth must not blend
        across edges), absent colour and ids as zeros (every file has the same arrays), depth as the recording
        stores it (f16: finite depths beyond 65504 become +inf, no surface, as on the wire)."""
        w, h = rec.width, rec.height
        colour = resize(g.colour, w, h, 3) if g.colour is not None else np.zeros((h, w, 3), np.uint8)
        ids = resize(g.ids, w, h, 2) if g.ids is not None else np.zeros((h, w), np.uint16)
        with np.errstate(over="ignore"):
            depth = resize(g.depth, w, h, 2).astype(depth_dtype)
        return {"colour": colour, "depth": depth, "ids": ids}

    @staticmethod
    def _guidance_meta(rec: _Recording, depth_dtype: str) -> None:
        """meta "guidance" (Dataset.has_guidance), before "episodes" as generated datasets have it."""
        meta = rec.writer.meta
        episodes = meta.pop("episodes")
        meta["guidance"] = {"ids": "uint16", "depth": depth_dtype, "colour": "stored", "source": "engine"}
        meta["episodes"] = episodes
        rec.writer.save_meta()

    def _finish(self, rec: _Recording, reply: bool, push: zmq.Socket) -> None:
        if rec.rows and not rec.failed:
            # All episodes of a recording have the same length (training stacks them): the last one takes
            # the frames it lacks from the end of the one before, when there is one.
            missing = self.config.episode_frames - len(rec.rows)
            try:
                self._write(rec, rec.prev[len(rec.prev) - missing:] + rec.rows if rec.prev else rec.rows)
                rec.written += len(rec.rows)
            except Exception as e:
                self._fail(rec, e, push)
        rec.rows, rec.prev = [], []
        episodes = len(rec.writer.meta["episodes"]) if rec.writer else 0
        log.info("recording %s done: %d frames in %d episodes", rec.path, rec.written, episodes)
        if reply:
            self._send(push, rec, protocol.record_done(rec.name, str(rec.path), rec.written, episodes))

    def _write(self, rec: _Recording, rows: list[dict[str, Any]]) -> None:
        episode = {k: np.stack([np.asarray(r[k]) for r in rows]) for k in rows[0]}
        for k in ("move", "look", "buttons"):  # row 0 is the episode's start frame: no action led to it
            episode[k][0] = 0
        dt = np.diff(rec.times)
        dt = dt[dt > 0]
        if len(dt):
            rec.writer.meta["fps"] = round(float(1.0 / np.median(dt)), 2)
        rec.writer.add(episode)

    def _fail(self, rec: _Recording, e: Exception, push: zmq.Socket) -> None:
        log.error("recording %s: %s", rec.path, e)
        if not rec.failed:
            rec.failed = True
            self._send(push, rec, protocol.error(ErrorCode.RECORD_FULL, f"writing failed: {e}; later images "
                                                 "are not recorded", "input"))

    @staticmethod
    def _send(push: zmq.Socket, rec: _Recording, msg: dict[str, Any]) -> None:
        try:  # the daemon's socket thread routes it, and drops it if the session has ended meanwhile
            push.send_multipart([rec.identity, rec.sid.encode(), protocol.pack(msg)], zmq.NOBLOCK)
        except zmq.Again:
            log.debug("dropped a %s for session %s at shutdown", msg["type"], rec.sid)

"""The world daemon: a ZeroMQ ROUTER serving many sessions of one world.

Two threads:
- the socket thread owns the ROUTER; it decodes and validates messages, updates sessions (newest input wins,
  credits), answers handshakes, pings and errors at once, and forwards finished frames to their clients;
- the stepping thread waits until some session holds a credit, steps all such sessions in one batch through
  the world, encodes each frame as its client asked, and hands the messages to the socket thread over an
  inproc socket (ZeroMQ sockets are not thread-safe, so only one thread touches the ROUTER).

A session is stepped only against a credit and never twice at once, so nothing queues anywhere.

A world that loses the host of some episodes (runtime.world.EpisodesLost: a replica of bridge/server/replicas.py
died) ends just those sessions, with error 503; the others get their frames from the same step.

Every read and write of a session's mutable fields happens under `self._lock` (see bridge/server/session.py).
The stepping thread takes what a step needs as a Job (under the lock), steps, resets and encodes from the Job
and the session's fixed handshake fields without the lock, and writes back (frame_seq, in_flight) under it.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq

from bridge.protocol import guidance, images, poses
from bridge.protocol import messages as protocol
from bridge.protocol.messages import ErrorCode, Limits, ProtocolError
from bridge.server.recorder import RecordConfig, Recorder
from bridge.server.session import PendingReset, SentGuidance, Session
from runtime.guidance import Guidance
from runtime.world import Action, EpisodesLost, Frame, World

log = logging.getLogger("worldbridge.daemon")

HEARTBEAT_IVL_MS = 10_000
HEARTBEAT_TIMEOUT_MS = 60_000
GOODBYE_LINGER_MS = 500  # the most shutdown waits for queued goodbyes to leave
ENDS = "ends:"  # before a session id on the inproc socket: the session's last message (Daemon._end_lost)


@dataclass(frozen=True)
class DaemonConfig:
    bind: str = "tcp://127.0.0.1:5557"
    limits: Limits = Limits()
    token: str = ""  # required in hello when set; required for non-loopback binds
    record: RecordConfig | None = None  # where record_start may write; None: recording is refused (403)
    # CurveZMQ secret key (z85, 40 characters): every connection is encrypted and clients can verify the daemon
    # by its public key. Only pyzmq clients speak CURVE; the token still authenticates clients.
    curve_secret: str = ""


def check_bind(bind: str, token: str) -> None:
    """Refuse to listen beyond this machine without authentication."""
    if bind.startswith(("ipc://", "inproc://")):
        return
    if not bind.startswith("tcp://"):
        raise ValueError(f"unsupported bind address {bind!r}: use tcp://HOST:PORT")
    host = bind[len("tcp://"):].rsplit(":", 1)[0].strip("[]")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False  # an interface name or "*"
    if not loopback and not token:
        raise ValueError(
            f"refusing to bind {bind}: only loopback addresses are allowed without authentication "
            "(set a token with --token or WORLDBRIDGE_TOKEN)"
        )


class Daemon:
    """Serve `world` on `config.bind` until stop() is called. Use serve_forever() or start()/stop()."""

    def __init__(self, world: World, config: DaemonConfig = DaemonConfig()):
        check_bind(config.bind, config.token)
        self.world, self.config, self.limits = world, config, config.limits
        self._sessions: dict[bytes, Session] = {}
        self._closing: list[bytes] = []  # episodes the stepping thread must close in the world
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._ctx = zmq.Context()
        self._router = self._ctx.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.LINGER, 0)
        self._router.setsockopt(zmq.MAXMSGSIZE, 2 * self.limits.max_message_bytes)
        # Bounded queues per peer. Out: a client that grants credits but never reads holds at most this many
        # messages here (then ROUTER drops them); libzmq's default of 1000 frames could hold gigabytes.
        # In: a client that floods us backs up into its own TCP stream instead of our memory.
        self._router.setsockopt(zmq.SNDHWM, max(64, 4 * self.limits.max_credits))
        self._router.setsockopt(zmq.RCVHWM, 64)
        self.curve_public_key = ""
        if config.curve_secret:
            self.curve_public_key = zmq.curve_public(config.curve_secret.encode()).decode()
            self._router.curve_server = True
            self._router.curve_secretkey = config.curve_secret.encode()
        self._router.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
        self._router.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
        self._router.setsockopt(zmq.HEARTBEAT_TTL, HEARTBEAT_TIMEOUT_MS)
        self._router.bind(config.bind)
        self.address = self._router.getsockopt_string(zmq.LAST_ENDPOINT)
        inproc = f"inproc://frames-{id(self)}"
        self._out_pull = self._ctx.socket(zmq.PULL)
        self._out_pull.bind(inproc)
        self._out_push = self._ctx.socket(zmq.PUSH)
        self._out_push.setsockopt(zmq.SNDTIMEO, 1000)  # never block the stepper on a socket thread that is gone
        self._out_push.connect(inproc)
        self._threads: list[threading.Thread] = []
        self.messages_forwarded = 0
        # recordings are written by their own thread, which reports through the same inproc endpoint
        self._recorder = Recorder(config.record, self._ctx, inproc, world.fov_deg) if config.record else None

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> Daemon:
        """Serve from two background threads (tests, embedding in another program)."""
        self._spawn(self._socket_loop, "wb-socket")
        self._spawn(self._step_loop, "wb-step")
        log.info("serving %s on %s", self.world.name, self.address)
        return self

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def request_stop(self) -> None:
        """Ask the threads to finish (safe from a signal handler); stop() or serve_forever() joins them."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        for t in self._threads:
            t.join(timeout)
        stuck = [t.name for t in self._threads if t.is_alive()]
        self._threads.clear()
        if self._recorder is not None and not stuck:  # the socket thread is done: no more recorder calls
            self._recorder.close()
        if stuck:
            log.warning("threads did not stop within %.0f s: %s", timeout, ", ".join(stuck))
        else:
            self._ctx.term()

    def serve_forever(self) -> None:
        """Serve until request_stop(), stepping the world on the calling thread. Call it from the thread that
        loaded the world: torch keeps its OpenMP thread team per thread, and the default model stepped from
        another thread ran 1.4-1.9x slower on this 2-core machine (42 -> 59 ms float32, 30 -> 57 ms bfloat16)."""
        self._spawn(self._socket_loop, "wb-socket")
        log.info("serving %s on %s", self.world.name, self.address)
        try:
            self._step_loop()
        finally:
            self.stop()

    # ------------------------------------------------------------------------------------ socket thread

    def _socket_loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._out_pull, zmq.POLLIN)
        next_reap = time.monotonic() + 1.0
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(100))
                if self._out_pull in events:
                    for _ in range(64):  # forward what the stepper finished, without starving input
                        try:
                            identity, sid, *parts = self._out_pull.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        tag = sid.bytes.decode()
                        ends = tag.startswith(ENDS)
                        with self._lock:
                            current = self._sessions.get(identity.bytes)
                            if current is not None and current.sid != tag.removeprefix(ENDS):
                                current = None
                            if current is not None and ends:  # the world lost its episode: its error, then gone
                                self._drop(identity.bytes)
                                self._lock.notify_all()
                        if current is not None:
                            self._router.send_multipart([identity, *parts], copy=False)
                            self.messages_forwarded += 1
                        # else: the session ended (bye, expiry, a new hello) while this was being made
                if self._router in events:
                    for _ in range(256):
                        try:
                            parts = self._router.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._on_message(parts[0], parts[1:])
                if time.monotonic() >= next_reap:
                    self._reap_idle()
                    next_reap = time.monotonic() + 1.0
            self._say_goodbye()
        finally:
            # LINGER is 0 so dead peers never hold up shutdown; the goodbyes just queued get a bounded moment to
            # reach live ones (without it, a client sometimes never saw its bye)
            self._router.close(linger=GOODBYE_LINGER_MS)
            self._out_pull.close(0)

    def _send(self, identity: bytes, msg: dict[str, Any], payload: bytes | None = None) -> None:
        frames = [identity, protocol.pack(msg)] + ([payload] if payload is not None else [])
        self._router.send_multipart(frames)

    def _on_message(self, identity: bytes, frames: list[bytes]) -> None:
        try:
            msg, payload = protocol.parse(frames, self.limits)
            if msg["type"] == "hello":
                self._on_hello(identity, msg)
                return
            with self._lock:
                session = self._sessions.get(identity)
                if session is None:
                    raise ProtocolError(ErrorCode.NO_SESSION, "send hello first", msg["type"])
                session.last_seen = time.monotonic()
                reply = self._on_session_message(session, msg, payload)
                self._lock.notify_all()
            if reply is not None:
                self._send(identity, reply)
        except ProtocolError as e:
            log.info("client %s: %s", identity.hex(), e)
            self._send(identity, protocol.error(e.code, e.message, e.ref))
        except Exception as e:  # a bug (in a world's frame_size, say) costs this message, not the socket thread
            log.exception("client %s: failed handling a message", identity.hex())
            self._send(identity, protocol.error(ErrorCode.WORLD_ERROR, f"internal error: {e}"))

    def _on_hello(self, identity: bytes, msg: dict[str, Any]) -> None:
        if msg["major"] != protocol.MAJOR:
            raise ProtocolError(
                ErrorCode.VERSION, f"daemon speaks protocol {protocol.MAJOR}.{protocol.MINOR}, "
                f"client {msg['major']}.{msg['minor']}", "hello")
        if self.config.token and not hmac.compare_digest(msg["token"].encode(), self.config.token.encode()):
            raise ProtocolError(ErrorCode.UNAUTHORIZED, "missing or wrong token", "hello")
        if self._stop.is_set():
            raise ProtocolError(ErrorCode.UNAVAILABLE, "daemon is shutting down", "hello")
        width, height = self.world.frame_size(msg["width"], msg["height"])
        row_order = "top_down" if msg["format"] == "jpeg" else msg["row_order"]
        with self._lock:
            if identity in self._sessions:  # a second hello replaces the session
                self._drop(identity)
            if len(self._sessions) >= self.limits.max_sessions:
                raise ProtocolError(ErrorCode.UNAVAILABLE, f"{self.limits.max_sessions} sessions already", "hello")
            session = Session(
                identity, os.urandom(4).hex(), msg["client"], msg["engine"], width, height, msg["format"],
                row_order, msg["jpeg_quality"], guidance_offer=self._guidance_offer(width, height),
                credits=msg["credits"], reset=PendingReset(msg["seed"], reply=False), prompt=msg["prompt"],
            )
            self._sessions[identity] = session
            count = len(self._sessions)
            self._lock.notify_all()
        log.info("session %s opened: %s engine=%s %dx%d %s (%d sessions)", session.sid, session.client,
                 session.engine, width, height, session.format, count)
        self._send(identity, protocol.welcome(session.sid, self.world.name, width, height, session.format,
                                              row_order, session.jpeg_quality, self.world.fov_deg,
                                              [*self.world.capabilities, "jpeg",
                                               *(["record"] if self._recorder else [])], self.limits,
                                              session.guidance_offer))

    def _guidance_offer(self, width: int, height: int) -> dict[str, Any] | None:
        """1.3: the welcome's guidance map for a session of frames (width, height); None for unguided worlds."""
        if "guidance" not in self.world.capabilities:
            return None
        return guidance.offer(self.world.guidance_buffers, width, height, self.world.guidance_scales)

    @staticmethod
    def _guidance(session: Session, msg: dict[str, Any]) -> tuple[Guidance | None, SentGuidance | None]:
        """An input's guidance, checked against what the session's world takes (ProtocolError 422 before any of
        the input is applied): (what the world reads, None when it carries none or its world ignores guidance;
        everything it carries, for the recorder, None when it carries none)."""
        if msg["guidance"] is None:
            return None, None
        offer = session.guidance_offer
        buffers = guidance.decode(msg["guidance"], offer)  # a few copies of at most a frame's size: cheap
        sent = SentGuidance(buffers, msg["guidance"]["depth_format"])
        if offer is None:
            return None, sent
        read = set(offer["buffers"])  # a buffer the world does not read is checked and dropped (not recorded)
        return Guidance(colour=buffers.colour if "colour" in read else None,
                        depth=buffers.depth if "depth" in read else None,
                        ids=buffers.ids if "ids" in read else None), sent

    def _on_session_message(self, session: Session, msg: dict[str, Any], payload: bytes | None) -> dict | None:
        """Handle a validated message of a handshaken session (lock held). Returns a direct reply or None."""
        kind = msg["type"]
        if kind == "input":
            held, sent = self._guidance(session, msg)  # first: a refused guidance refuses the whole input
            notice = self._record_input(session, msg, payload, sent)
            # the whole guidance is held only where a recording may store it (held per session until a reset)
            session.apply_input(msg, held, sent if self._recorder is not None else None)
            if notice is not None:
                return notice
        elif kind == "credit":
            session.credits = min(self.limits.max_credits, session.credits + msg["n"])
        elif kind == "reset":
            pose = poses.to_canonical(session.engine, msg["pose"]["p"], msg["pose"]["q"]) if msg["pose"] else None
            image = images.decode(msg["image"], payload) if msg["image"] else None
            session.reset = PendingReset(msg["seed"], pose, image, reply=True)
            session.prompt = msg["prompt"] or session.prompt  # 1.2: a reset without one keeps the session's
            session.pose = None  # a new episode starts from its start pose, not the last engine pose
            session.guidance = None  # 1.3: nor from the old episode's guidance, until new guidance comes
            session.sent_guidance = None  # nor does a recording store it with the new episode's images
        elif kind == "ping":
            return protocol.pong(msg["t"], time.time())
        elif kind in ("record_start", "record_stop"):
            if self._recorder is None:
                raise ProtocolError(ErrorCode.RECORD_DISABLED, "this daemon does not record (start it with "
                                    "--record-dir DIR)", kind)
            if kind == "record_start":
                return self._recorder.start(session, msg["name"])
            self._recorder.stop(session)  # record_done follows once the files are written
        elif kind == "bye":
            self._drop(session.identity)
            log.info("session %s closed by client", session.sid)
            return protocol.bye()
        return None

    def _record_input(self, session: Session, msg: dict[str, Any], payload: bytes | None,
                      sent: SentGuidance | None) -> dict | None:
        """Hand an input to the recorder (cheap: it only queues), with its own guidance (`sent`; the recorder
        falls back to the session's held one); refuses images when nothing records."""
        if self._recorder is not None:
            return self._recorder.add(session, msg, payload, sent)
        if msg["image"] is not None:
            raise ProtocolError(ErrorCode.RECORD_DISABLED, "this daemon does not record; an input carries no "
                                "image here", "input")
        return None

    def _drop(self, identity: bytes) -> None:
        """Remove a session (lock held); the stepping thread closes its episode in the world."""
        if self._sessions.pop(identity, None) is not None:
            self._closing.append(identity)
            if self._recorder is not None:
                self._recorder.end(identity)  # what it recorded is kept

    def _reap_idle(self) -> None:
        deadline = time.monotonic() - self.limits.idle_timeout_s
        with self._lock:
            idle = [s for s in self._sessions.values() if s.last_seen < deadline]
            for s in idle:
                self._drop(s.identity)
            self._lock.notify_all()
        for s in idle:
            log.info("session %s expired after %.0f s idle", s.sid, self.limits.idle_timeout_s)
            self._send(s.identity, protocol.error(ErrorCode.EXPIRED, "session idle too long; send hello again"))

    def _say_goodbye(self) -> None:
        with self._lock:
            identities = list(self._sessions)
        for identity in identities:
            self._send(identity, protocol.bye())

    # ---------------------------------------------------------------------------------- stepping thread

    def _step_loop(self) -> None:
        try:
            while not self._stop.is_set():
                with self._lock:
                    while not self._stop.is_set() and not self._closing and not self._ready():
                        self._lock.wait(0.5)
                    closing, self._closing = self._closing, []
                    jobs = [Job.take(s) for s in self._ready()]
                for identity in closing:
                    try:
                        self.world.close(identity)
                    except Exception:  # the session is gone either way; keep stepping the others
                        log.exception("world failed closing an episode")
                if jobs:
                    try:
                        self._step(jobs)
                    except Exception as e:  # last resort: a bug must not stop every session's frames
                        log.exception("stepping failed")
                        self._finish(jobs)
                        for job in jobs:
                            self._push(job.session, protocol.error(ErrorCode.WORLD_ERROR, f"step failed: {e}"))
        finally:
            self._out_push.close(0)

    def _ready(self) -> list[Session]:
        """Sessions with work for the world: a frame to make (a credit) or a reset to apply."""
        return [s for s in self._sessions.values() if not s.in_flight and (s.credits > 0 or s.reset)]

    def _step(self, jobs: list[Job]) -> None:
        started, everything = time.monotonic(), jobs
        for job in jobs:
            if job.reset is not None:
                self._reset_world(job)
        jobs = [job for job in jobs if job.action is not None]
        try:
            frames = self.world.step({job.session.identity: job.action for job in jobs}) if jobs else {}
        except EpisodesLost as e:  # the host of some episodes is gone; the others' frames came
            frames = e.frames
            self._end_lost([job.session for job in jobs], e.lost)
        except Exception:
            frames = self._step_one_by_one(jobs)
        step_ms = (time.monotonic() - started) * 1e3
        for job in jobs:
            frame = frames.get(job.session.identity)
            if frame is None:
                continue
            try:
                self._emit(job, frame, started, step_ms)
                job.emitted = True
            except Exception as e:  # a frame this client's format cannot hold: only this client hears of it
                log.exception("failed encoding a frame of session %s", job.session.sid)
                self._push(job.session, protocol.error(ErrorCode.WORLD_ERROR, f"frame encoding failed: {e}"))
        self._finish(everything)

    def _finish(self, jobs: list[Job]) -> None:
        """Write a batch's results back into its sessions (under the lock) and free them for the next step."""
        with self._lock:
            for job in jobs:
                if job.emitted:
                    job.session.frame_seq += 1
                job.session.in_flight = False
            self._lock.notify_all()

    def _step_one_by_one(self, jobs: list[Job]) -> dict[bytes, Frame]:
        """A batch failed: step each session alone so only the culprit's client hears of it."""
        frames = {}
        for job in jobs:
            s = job.session
            try:
                frames.update(self.world.step({s.identity: job.action}))
            except EpisodesLost as e:
                frames.update(e.frames)
                self._end_lost([s], e.lost)
            except Exception as e:
                log.exception("world failed stepping session %s", s.sid)
                self._push(s, protocol.error(ErrorCode.WORLD_ERROR, f"world step failed: {e}; episode reset"))
                with self._lock:
                    s.reset = s.reset or PendingReset(0)
        return frames

    def _end_lost(self, sessions: list[Session], lost: dict) -> None:
        """End the sessions whose episodes the world lost (EpisodesLost: their host died) with error 503. The
        socket thread drops each session as it sends that error (the recorder and the ROUTER stay on that
        thread). The client may send hello again: a new session and episode, placed on a live host."""
        for s in sessions:
            if s.identity not in lost:
                continue
            log.warning("session %s lost its world host: %s", s.sid, lost[s.identity])
            with self._lock:
                s.credits, s.reset = 0, None  # nothing more to make for it before it is dropped
            self._push(s, protocol.error(ErrorCode.UNAVAILABLE, f"world host lost: {lost[s.identity]}; send hello "
                                         "again for a new session"), ends=True)

    def _reset_world(self, job: Job) -> None:
        s, reset = job.session, job.reset
        started = True
        try:
            self.world.reset(s.identity, reset.seed, s.width, s.height, reset.pose, reset.image)
        except EpisodesLost as e:  # no host for its episode (all replicas lost or full): the session ends
            self._end_lost([s], e.lost or {s.identity: str(e)})
            job.action = None  # nothing to step
            return
        except Exception as e:
            log.exception("world failed resetting session %s", s.sid)
            self._push(s, protocol.error(ErrorCode.WORLD_ERROR, f"reset failed: {e}; started from seed 0", "reset"))
            try:
                self.world.reset(s.identity, 0, s.width, s.height)
            except Exception:  # no episode at all: this session's steps fail and say so, others go on
                started = False
                log.exception("world failed resetting session %s from seed 0", s.sid)
        if started:
            self._set_prompt(job)
        if reset.reply:
            self._push(s, protocol.reset_ok(job.episode, reset.seed))

    def _set_prompt(self, job: Job) -> None:
        """After each reset, the session's prompt (1.2) for its new episode; only worlds that take one."""
        s = job.session
        if not job.prompt or "prompt" not in self.world.capabilities:
            return  # "": the world's default; other worlds ignore prompts
        try:
            self.world.set_prompt(s.identity, job.prompt)
        except Exception as e:  # the episode goes on with the prompt it had
            log.exception("world failed setting the prompt of session %s", s.sid)
            self._push(s, protocol.error(ErrorCode.WORLD_ERROR, f"prompt failed: {e}",
                                         "reset" if job.reset.reply else "hello"))

    def _emit(self, job: Job, frame: Frame, started: float, step_ms: float) -> None:
        s = job.session
        t0 = time.monotonic()
        if frame.pixels.ndim != 3 or frame.pixels.shape[2] != 3 or frame.pixels.dtype != "uint8":
            # a world bug: never send a client bytes that do not match the frame header
            raise ValueError(f"world made {frame.pixels.dtype} pixels of shape {frame.pixels.shape}, "
                             "not (H, W, 3) uint8")
        pixels = s.encode(frame.pixels)
        encode_ms = (time.monotonic() - t0) * 1e3
        queue_ms = max(0.0, (started - job.input_arrived) * 1e3) if job.input_seq >= 0 else 0.0
        h, w = frame.pixels.shape[:2]
        header = protocol.frame(
            job.frame_seq, job.input_seq, job.input_t, job.episode, w, h, s.format, s.row_order,
            s.wire_pose(frame.pose), {"queue_ms": queue_ms, "step_ms": step_ms, "encode_ms": encode_ms},
        )
        self._push(s, header, pixels)

    def _push(self, s: Session, msg: dict, payload: bytes | memoryview | None = None, ends: bool = False) -> None:
        """Hand a message to the socket thread, which sends it only if session `s` still owns the connection;
        `ends`: the session's last message (the socket thread drops the session as it sends it)."""
        tag = ENDS + s.sid if ends else s.sid
        frames = [s.identity, tag.encode(), protocol.pack(msg)] + ([payload] if payload is not None else [])
        try:
            self._out_push.send_multipart(frames, copy=False)
        except zmq.Again:  # only when the socket thread has already stopped: the daemon is going away
            log.debug("dropped a %s for session %s at shutdown", msg["type"], s.sid)


@dataclass
class Job:
    """One session's share of a batch, snapshotted under the lock so the socket thread can go on: the stepping
    thread reads this (and the session's fixed handshake fields), never the session's mutable fields without it."""

    session: Session
    reset: PendingReset | None
    action: Action | None  # None: only the reset, no credit for a frame
    input_seq: int
    input_t: float
    input_arrived: float
    episode: int  # the episode its frame (and reset_ok) belongs to, counting this job's reset
    frame_seq: int  # its frame's seq; the session's counter advances in Daemon._finish once the frame is sent
    emitted: bool = False  # its frame was handed to the socket thread
    prompt: str = ""  # the session's prompt when the job was taken: set in the world after the job's reset

    @staticmethod
    def take(s: Session) -> Job:
        """Take a session's work for one step (lock held); it stays in flight until Daemon._finish."""
        s.in_flight = True
        reset, s.reset = s.reset, None
        if reset is not None and reset.reply:
            s.episode += 1  # a reset that answers reset_ok starts a new episode number, even if the world fails
        action = None
        if s.credits > 0:
            s.credits -= 1
            action = s.take_action()
        return Job(s, reset, action, s.input_seq, s.input_t, s.input_arrived, s.episode, s.frame_seq,
                   prompt=s.prompt)
